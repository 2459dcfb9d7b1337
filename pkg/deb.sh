#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# pkg/deb.sh: `make deb`. Builds the Debian packages with Debian's tooling (dpkg-buildpackage,
# debhelper, dh-dkms) from the repository's tracked files as they are in the work tree:
#   fullnat-ipvs-dkms   kmod/ and patches/ under /usr/src/fullnat-ipvs-<version>, dkms.conf
#   toa-dkms            kmod/toa under /usr/src/toa-<version>, /usr/lib/modules-load.d/toa.conf
#   fullnat-ipvsadm     cmd/ipvsadm as /usr/sbin/ipvsadm (replaces Debian's ipvsadm), ipvsadm-save,
#                       ipvsadm-restore, /etc/init.d/ipvsadm, man pages, bash completion; cmd/lvsctl as
#                       /usr/sbin/lvsctl (JSON listings, Prometheus exporter) with its man page and completion
#   keepalived          Debian's keepalived with patches/keepalived/<version>/ in debian/patches,
#                       version <Debian's>+fullnatN (pkg/keepalived-deb.sh): the host's release's,
#                       2.2.7 on bookworm, 2.3.3 on trixie; KEEPALIVED_DEB=all both (the other in an
#                       mmdebstrap chroot of its release: a package links to the libraries of the
#                       release it is built on, trixie's are the t64 ones), KEEPALIVED_DEB=0 none
# into out/deb/, then runs lintian on them (pkg/debian/*.lintian-overrides explain what remains).
# The packages are architecture "all" but for ipvsadm and lvsctl (amd64, static Go binaries) and install on
# Debian 12 (bookworm) and 13 (trixie) alike.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/out/deb
log() { echo "pkg/deb: $*" >&2; }

"$top/pkg/deps.sh"

ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/kmod/dkms.conf")
toa_ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/kmod/toa/dkms.conf")
deb_ver=$(dpkg-parsechangelog -l "$top/pkg/debian/changelog" -S Version)
# One version everywhere: the package, the dkms modules and their MODULE_VERSION.
[ "$ver" = "$deb_ver" ] && [ "$toa_ver" = "$deb_ver" ] ||
	{ log "versions differ: pkg/debian/changelog $deb_ver, kmod/dkms.conf $ver, kmod/toa/dkms.conf $toa_ver"; exit 1; }
grep -q "^MODULE_VERSION(\"$toa_ver\");" "$top/kmod/toa/toa.c" ||
	{ log "kmod/toa/toa.c's MODULE_VERSION is not $toa_ver"; exit 1; }

stage=$out/build/fullnat-$ver
rm -rf "$out/build"
mkdir -p "$stage"
(cd "$top" && git ls-files -z --cached -- . ':!:pkg/debian' | xargs -0 tar -cf - --no-recursion) | tar -xf - -C "$stage"
cp -r "$top/pkg/debian" "$stage/debian"

log "dpkg-buildpackage in $stage"
(cd "$stage" && nice -n 10 dpkg-buildpackage -b -us -uc -j"$(nproc)" >"$out/build/build.log" 2>&1) ||
	{ tail -n 40 "$out/build/build.log" >&2; log "dpkg-buildpackage failed (whole log: $out/build/build.log)"; exit 1; }
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mv "$out/build"/*.deb "$out/build"/*.changes "$out/build"/*.buildinfo "$out/"
# the staging tree is a copy of the repository: keep only the log
mv "$out/build/build.log" "$out/build.log"
rm -rf "$out/build"

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
case "${KEEPALIVED_DEB:-host}:$codename" in
0:*) ;;
all:*) for v in 2.2.7 2.3.3; do "$top/pkg/keepalived-deb.sh" "$v" "$out" >/dev/null; done ;;
*:bookworm) "$top/pkg/keepalived-deb.sh" 2.2.7 "$out" >/dev/null ;;
*:trixie) "$top/pkg/keepalived-deb.sh" 2.3.3 "$out" >/dev/null ;;
*) log "no keepalived package on ${codename:-this system} (bookworm: 2.2.7, trixie: 2.3.3; KEEPALIVED_DEB=all: both)" ;;
esac

log "lintian"
if ! lintian --fail-on error,warning --info "$out"/*.changes >"$out/lintian.log" 2>&1; then
	cat "$out/lintian.log" >&2
	log "lintian found problems ($out/lintian.log)"
	exit 1
fi
cat "$out/lintian.log" >&2
ls -l "$out"/*.deb >&2
