#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# pkg/test-takeover.sh: `make test-takeover` (part of `make test`). fullnat-ipvsadm, as `make deb`
# builds it, replaces Debian's own ipvsadm on Debian 12 (bookworm: /sbin/ipvsadm) and 13 (trixie:
# /usr/sbin/ipvsadm and a systemd unit) without losing a file, whichever tool installs it. On a
# merged-/usr system /sbin/ipvsadm and /usr/sbin/ipvsadm are one file: dpkg -i of a package that
# ships one name over a package that ships the other deletes the new program (Debian's DEP 17).
# In a chroot of each release, made by mmdebstrap with Debian's ipvsadm (cached in
# $RIG_CACHE/pkgtest/), from scratch for each case:
#   dpkg -i, and apt-get install, of fullnat-ipvsadm over Debian's ipvsadm;
#   on bookworm, an upgrade from this package's earlier /sbin layout (made from the package);
# then: every program and the unit are the package's, no diversion is left, the administrator's
# /etc/ipvsadm.rules and /etc/default/ipvsadm are kept; removing ours and installing Debian's
# ipvsadm again gives Debian's programs back. No VM. TAKEOVER_SUITES picks the releases.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
RIG_CACHE=${RIG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lvs-rig}
pt=$RIG_CACHE/pkgtest
log() { echo "test-takeover: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
. "$top/pkg/mirror.sh"

"$top/pkg/deps.sh" --test
KEEPALIVED_DEB=0 "$top/pkg/deb.sh" 2>/dev/null
ver=$(dpkg-parsechangelog -l "$top/pkg/debian/changelog" -S Version)
deb=$top/out/deb/fullnat-ipvsadm_${ver}_amd64.deb
[ -s "$deb" ] || fail "make deb made no $deb"

work=$(mktemp -d "${TMPDIR:-/tmp}/takeover.XXXXXX")
root=$work/root
drop_root() {
	for m in proc dev; do ! mountpoint -q "$root/$m" 2>/dev/null || umount -l "$root/$m"; done
	rm -rf "$root"
}
trap 'drop_root; rm -rf "$work"' EXIT
ref=$work/ref
dpkg-deb -x "$deb" "$ref"

# The same package in this package's layout before 0.3 (programs in /sbin), version 0.2.
old=$work/fullnat-ipvsadm_0.2_amd64.deb
dpkg-deb -R "$deb" "$work/old"
mkdir -p "$work/old/sbin"
for f in ipvsadm ipvsadm-save ipvsadm-restore; do mv "$work/old/usr/sbin/$f" "$work/old/sbin/"; done
sed -i 's/^Version: .*/Version: 0.2/' "$work/old/DEBIAN/control"
rm "$work/old/DEBIAN/preinst"
(cd "$work/old" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | xargs -0 md5sum >DEBIAN/md5sums)
dpkg-deb -b --root-owner-group "$work/old" "$old" >/dev/null

in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

fresh() { # fresh SUITE: the cached rootfs of SUITE, unpacked anew at $root
	local suite=$1 base
	base=$pt/takeover-$suite-$(echo "$mirror ipvsadm" | sha256sum | cut -c1-16).tar
	if [ ! -s "$base" ]; then
		mkdir -p "$pt"
		log "mmdebstrap $suite ($mirror)"
		rm -f "$pt/takeover-$suite"-*.tar
		# the package cache kept: Debian's ipvsadm is installed again from it at the end
		nice -n 10 mmdebstrap --variant=apt --components=main --include=ipvsadm --skip=cleanup/apt/cache \
			--format=tar "$suite" "$base.tmp" "deb $mirror $suite main" >"$pt/mmdebstrap-takeover-$suite.log" 2>&1 ||
			{ tail -n 20 "$pt/mmdebstrap-takeover-$suite.log" >&2; fail "mmdebstrap $suite"; }
		mv "$base.tmp" "$base"
	fi
	drop_root
	mkdir -p "$root"
	tar -xf "$base" -C "$root"
	mount -t proc proc "$root/proc"
	mount --bind /dev "$root/dev"
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod +x "$root/usr/sbin/policy-rc.d"
	[ "$(readlink -f "$root/sbin")" = "$root/usr/sbin" ] || fail "$suite: the rootfs's /sbin is not merged into /usr/sbin"
	in_root dpkg-query -W -f='${Status}' ipvsadm | grep -q 'install ok installed' || fail "$suite: no Debian ipvsadm in the rootfs"
	cp "$deb" "$old" "$root/tmp/"
	# the administrator's settings, which every step must keep
	echo '-A -t 192.0.2.1:80 -s wlc' >"$root/etc/ipvsadm.rules"
	sed -i 's/^AUTO=.*/AUTO="true"/' "$root/etc/default/ipvsadm"
	cp "$root/etc/ipvsadm.rules" "$root/etc/default/ipvsadm" "$work/"
}

check_ours() { # check_ours WHAT: the package's files are in place and whole after WHAT
	local what=$1 f
	for f in usr/sbin/ipvsadm usr/sbin/ipvsadm-save usr/sbin/ipvsadm-restore usr/sbin/lvsctl \
		usr/lib/systemd/system/ipvsadm.service etc/init.d/ipvsadm; do
		cmp -s "$root/$f" "$ref/$f" || fail "$what: /$f is not fullnat-ipvsadm's ($(ls -l "$root/$f" 2>&1))"
	done
	cmp -s "$root/sbin/ipvsadm" "$ref/usr/sbin/ipvsadm" || fail "$what: /sbin/ipvsadm is not fullnat-ipvsadm's"
	in_root dpkg-query -W -f='${Status}' fullnat-ipvsadm | grep -q 'install ok installed' || fail "$what: fullnat-ipvsadm is not installed"
	! in_root dpkg-query -W -f='${Status}' ipvsadm 2>/dev/null | grep -q 'install ok installed' || fail "$what: Debian's ipvsadm is still installed"
	[ -z "$(in_root dpkg-divert --list '/sbin/ipvsadm*')" ] || fail "$what: diversions left: $(in_root dpkg-divert --list '/sbin/ipvsadm*')"
	in_root dpkg --verify fullnat-ipvsadm || fail "$what: dpkg --verify fullnat-ipvsadm"
	cmp -s "$root/etc/ipvsadm.rules" "$work/ipvsadm.rules" || fail "$what: /etc/ipvsadm.rules changed"
	cmp -s "$root/etc/default/ipvsadm" "$work/ipvsadm" || fail "$what: /etc/default/ipvsadm changed"
	# ipvsadm-save's usage (exit status 1, as 1.31's script) shows the shell script runs
	case "$(in_root ipvsadm-save -h 2>&1 || true)" in
	*'Script to save the IPVS table'*) ;;
	*) fail "$what: ipvsadm-save does not run" ;;
	esac
	log "$what: ipvsadm, ipvsadm-save, ipvsadm-restore, lvsctl, the unit and the init script are ours; rules and settings kept; no diversion left"
}

for suite in ${TAKEOVER_SUITES:-bookworm trixie}; do
	fresh "$suite"
	in_root dpkg -i "/tmp/$(basename "$deb")" >"$work/log" 2>&1 || { cat "$work/log" >&2; fail "$suite: dpkg -i"; }
	check_ours "$suite: dpkg -i over Debian's ipvsadm"

	# back to Debian's: ours removed, Debian's installed again from the package cache
	in_root dpkg -r fullnat-ipvsadm >"$work/log" 2>&1 || { cat "$work/log" >&2; fail "$suite: dpkg -r fullnat-ipvsadm"; }
	[ ! -e "$root/usr/sbin/ipvsadm" ] || fail "$suite: /usr/sbin/ipvsadm left after dpkg -r fullnat-ipvsadm"
	cmp -s "$root/etc/ipvsadm.rules" "$work/ipvsadm.rules" || fail "$suite: dpkg -r removed or changed /etc/ipvsadm.rules"
	debian=$(ls "$root"/var/cache/apt/archives/ipvsadm_*.deb | head -n 1)
	in_root dpkg -i "/var/cache/apt/archives/$(basename "$debian")" >"$work/log" 2>&1 ||
		{ cat "$work/log" >&2; fail "$suite: dpkg -i Debian's ipvsadm after ours"; }
	dpkg-deb -x "$debian" "$work/debian"
	d=usr/sbin/ipvsadm
	[ -e "$work/debian/$d" ] || d=sbin/ipvsadm
	cmp -s "$root/usr/sbin/ipvsadm" "$work/debian/$d" || fail "$suite: Debian's ipvsadm is not back after ours"
	log "$suite: dpkg -r fullnat-ipvsadm, then Debian's ipvsadm again: Debian's /$d is back, the rules file kept"
	rm -rf "$work/debian"

	fresh "$suite"
	in_root apt-get install -y -q "/tmp/$(basename "$deb")" >"$work/log" 2>&1 || { cat "$work/log" >&2; fail "$suite: apt-get install"; }
	check_ours "$suite: apt-get install over Debian's ipvsadm"

	if [ "$suite" = bookworm ]; then
		fresh "$suite"
		in_root dpkg -i "/tmp/$(basename "$old")" >"$work/log" 2>&1 || { cat "$work/log" >&2; fail "$suite: dpkg -i of the /sbin layout"; }
		in_root dpkg -i "/tmp/$(basename "$deb")" >"$work/log" 2>&1 || { cat "$work/log" >&2; fail "$suite: dpkg -i upgrade from the /sbin layout"; }
		check_ours "$suite: upgrade from this package's /sbin layout (0.2)"
	fi
done
log "PASS"
