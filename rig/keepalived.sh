#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Build Debian's keepalived with our patch series (patches/keepalived/<version>/series):
#   - gets the Debian source package from the mirror the host already uses, with its own sources list
#     and package lists under $RIG_CACHE (the host's apt configuration is not changed);
#   - installs the -dev packages the build needs;
#   - unpacks it, applies Debian's own patches when the mirror has the Debian tarball, then our series;
#   - configures like Debian's build (netlink libipvs, libnl-3), without SNMP and D-Bus (we do not use
#     them and they would pull large build dependencies and libraries into the test VM), and builds.
# The binary lands in out/keepalived/<version>/keepalived. Cached in $RIG_CACHE/keepalived/ keyed by the
# source package, this script and the patch contents: a second run only copies the binary.
#
#   rig/keepalived.sh [VERSION]     VERSION: 2.2.7 (bookworm), the default, or 2.3.3 (trixie)
#   rig/keepalived.sh --source-only VERSION   only fetch and verify the source package (pkg/keepalived-deb.sh);
#                                   prints its .dsc
set -euo pipefail

RIG_CACHE=${RIG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lvs-rig}
root=$(cd "$(dirname "$0")/.." && pwd)
source_only=0
if [ "${1:-}" = --source-only ]; then
	source_only=1
	shift
fi
version=${1:-2.2.7}
log() { echo "rig/keepalived: $*" >&2; }
# series FILE: the patch names in a quilt series file (no comments, no blank lines).
series() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$1"; }

case $version in
2.2.7) suite=bookworm debver=1:2.2.7-1 extra_opts=() ;;
2.3.3) suite=trixie debver=1:2.3.3-1 extra_opts=(--enable-log-file) ;;
*) log "unknown keepalived version $version (have: 2.2.7 2.3.3)"; exit 1 ;;
esac

patchdir=$root/patches/keepalived/$version
[ -f "$patchdir/series" ] || { log "no $patchdir/series"; exit 1; }
outdir=$root/out/keepalived/$version

# Debian's configure options (keepalived --version of the bookworm package, debian/rules of trixie's,
# which adds extra_opts), less SNMP and D-Bus, and less trixie's --enable-reproducible-build: that
# binary reads its build options from a file the package installs and refuses to run without it.
configure_opts=(--prefix=/usr --sysconfdir=/etc --localstatedir=/var --runstatedir=/run
	--disable-dependency-tracking --enable-sha1 --enable-json --enable-bfd --enable-regex
	--with-init=systemd "${extra_opts[@]}")
build_deps=(gcc make patch pkg-config libssl-dev libnl-3-dev libnl-genl-3-dev libnftnl-dev libmnl-dev
	libpcre2-dev)

key=$( {
	echo "keepalived $debver"
	cat "$0"
	cat "$patchdir/series"
	series "$patchdir/series" | while read -r p; do cat "$patchdir/$p"; done
} | sha256sum | cut -c1-16)
cache=$RIG_CACHE/keepalived/$version-$key

install_out() {
	mkdir -p "$outdir"
	cp "$cache/keepalived" "$outdir/keepalived.tmp"
	mv "$outdir/keepalived.tmp" "$outdir/keepalived"
	echo "$outdir/keepalived"
}

if [ "$source_only" = 0 ] && [ -x "$cache/keepalived" ]; then
	install_out
	exit 0
fi

# Build dependencies, as host packages.
need=()
for p in "${build_deps[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ "$source_only" = 0 ] && [ "${#need[@]}" -gt 0 ]; then
	log "installing ${need[*]}"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# The source package, from the Debian mirror the host's apt uses, with our own lists.
srcdir=$RIG_CACHE/keepalived/src/$suite
aptdir=$RIG_CACHE/keepalived/apt/$suite
upver=${debver#*:}
upver=${upver%-*}
orig=$srcdir/keepalived_$upver.orig.tar.gz
dsc=$srcdir/keepalived_${debver#*:}.dsc
if [ ! -f "$orig" ] || [ ! -f "$dsc" ]; then
	mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk 'BEGIN{RS=""} /Types:[^\n]*deb/ && /Suites:[^\n]*'"$suite"'([ \n]|$)/ && !/security/ {
			for (i = 1; i <= NF; i++) if ($i == "URIs:") { print $(i + 1); exit } }')
	[ -n "$mirror" ] || mirror=$(grep -hE "^deb [^ ]+ $suite " /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '{ print $2; exit }' || true)
	# A suite the host does not use (trixie on this bookworm host): the host's Debian mirror all the same,
	# as rig/fetch.sh does for its trixie view.
	[ -n "$mirror" ] || mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
		grep -oE 'https?://[^ ]*/debian/?( |$)' | head -n 1 | tr -d ' ' || true)
	[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
	mirror=${mirror%/}
	log "source package keepalived=$debver from $mirror ($suite)"
	mkdir -p "$aptdir/lists/partial" "$srcdir"
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$aptdir/sources.list"
	aptopts=(-o "Dir::Etc::sourcelist=$aptdir/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$aptdir/lists"
		-o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
	apt-get -qq "${aptopts[@]}" update >&2
	# apt checks every file it gets against the signed index. Some mirrors lack the Debian tarball
	# (404): then the upstream tarball and the .dsc are still there, and the build goes on without
	# Debian's packaging (neither 2.2.7-1 nor 2.3.3-1 carries source patches).
	(cd "$srcdir" && apt-get -qq "${aptopts[@]}" source --download-only "keepalived=$debver" >&2) ||
		log "apt-get source did not get every file (see above); continuing with what it verified"
fi
[ -f "$orig" ] && [ -f "$dsc" ] || { log "no $orig or $dsc"; exit 1; }
want=$(awk '/^Checksums-Sha256:/{f=1; next} /^[^ ]/{f=0} f && $3 == "'"$(basename "$orig")"'" {print $1}' "$dsc")
have=$(sha256sum "$orig" | cut -d' ' -f1)
[ -n "$want" ] && [ "$want" = "$have" ] || { log "$orig: sha256 $have, the .dsc says $want"; exit 1; }
if [ "$source_only" = 1 ]; then
	echo "$dsc"
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/keepalived-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$orig" -C "$work"
src=$work/keepalived-$upver
debtar=$(ls "$srcdir"/keepalived_"${debver#*:}".debian.tar.* 2>/dev/null | head -n 1 || true)
if [ -n "$debtar" ]; then
	tar -xf "$debtar" -C "$src"
	if [ -f "$src/debian/patches/series" ]; then
		series "$src/debian/patches/series" | while read -r p; do
			log "Debian patch $p"
			patch -d "$src" -p1 -s --no-backup-if-mismatch <"$src/debian/patches/$p"
		done
	fi
fi
series "$patchdir/series" | while read -r p; do
	log "patch $p"
	patch -d "$src" -p1 -s --no-backup-if-mismatch <"$patchdir/$p"
done

log "configure and build ($(nproc) jobs)"
(cd "$src" && ./configure "${configure_opts[@]}" >"$work/configure.log" 2>&1) ||
	{ tail -n 30 "$work/configure.log" >&2; exit 1; }
grep -q 'LIBIPVS_NETLINK' "$src/lib/config.h" 2>/dev/null || grep -q 'define LIBIPVS_USE_NL' "$src/lib/config.h" ||
	{ log "configure did not choose netlink libipvs"; exit 1; }
make -C "$src" -j"$(nproc)" >"$work/make.log" 2>&1 || { grep -E 'error|Error' "$work/make.log" | head -n 30 >&2; exit 1; }

mkdir -p "$cache.tmp"
cp "$src/keepalived/keepalived" "$cache.tmp/keepalived"
strip --strip-debug "$cache.tmp/keepalived"
rm -rf "$cache"
mv "$cache.tmp" "$cache"
# Builds of older patch series are of no more use.
for old in "$RIG_CACHE/keepalived/$version"-*; do
	[ "$old" = "$cache" ] || rm -rf "$old"
done
install_out
