#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# pkg/keepalived-deb.sh VERSION OUTDIR: Debian's keepalived source package with our series
# (patches/keepalived/VERSION/) added to debian/patches, built with dpkg-buildpackage as
# keepalived <Debian version>+fullnatN, which apt prefers to Debian's and which upgrades it in place.
# Run by pkg/deb.sh (make deb). The .deb, .changes and .buildinfo go to OUTDIR.
#
#   2.2.7  bookworm. The mirror has bookworm's 2.2.7-1 .dsc and upstream tarball but not its
#          keepalived_2.2.7-1.debian.tar.xz (404), so the packaging is trixie's 2.3.3-1 debian/
#          less what its changelog says came after 2.2.7-1 (2.3.1-1: --enable-log-file; 2.3.3's
#          --enable-reproducible-build, which 2.2.7's configure does not know). Its maintscript's
#          removal of the old /etc/dbus-1 conffile (the file is under /usr/share/dbus-1) is kept,
#          with this package's version.
#   2.3.3  trixie: its own source package.
# On a host of the package's release, dpkg-buildpackage runs on the host (the build dependencies
# installed with apt); for the other release in a chroot of that release made by mmdebstrap.
set -euo pipefail

version=${1:?usage: keepalived-deb.sh VERSION OUTDIR}
outdir=${2:?usage: keepalived-deb.sh VERSION OUTDIR}
top=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "pkg/keepalived-deb: $*" >&2; }

# Our local revision: bump it when patches/keepalived/ changes (3: 0008 and 0009, reloads of groups and vip_bind_dev).
rev=3
case $version in
2.2.7) debver=1:2.2.7-1 dist=bookworm ;;
2.3.3) debver=1:2.3.3-1 dist=trixie ;;
*) log "unknown keepalived version $version (have: 2.2.7 2.3.3)"; exit 1 ;;
esac
newver=$debver+fullnat$rev
patchdir=$top/patches/keepalived/$version
[ -f "$patchdir/series" ] || { log "no $patchdir/series"; exit 1; }

dsc=$("$top/rig/keepalived.sh" --source-only "$version")
srcdir=$(dirname "$dsc")
upver=${debver#*:}
upver=${upver%-*}
# The packaging: the version's own debian.tar, or trixie's for 2.2.7 (see above).
debtar=$(ls "$srcdir/keepalived_${debver#*:}".debian.tar.* 2>/dev/null | head -n 1 || true)
if [ -z "$debtar" ]; then
	[ "$version" = 2.2.7 ] || { log "no debian.tar for keepalived $debver in $srcdir"; exit 1; }
	tdsc=$("$top/rig/keepalived.sh" --source-only 2.3.3)
	debtar=$(ls "$(dirname "$tdsc")"/keepalived_2.3.3-1.debian.tar.* | head -n 1)
	log "bookworm's keepalived_2.2.7-1.debian.tar is not on the mirror: packaging from $(basename "$debtar")"
fi

work=$outdir/keepalived-build
rm -rf "$work"
mkdir -p "$work"
cp "$srcdir/keepalived_$upver.orig.tar.gz" "$work/"
tar -xzf "$work/keepalived_$upver.orig.tar.gz" -C "$work"
src=$work/keepalived-$upver
rm -rf "$src/debian"
tar -xf "$debtar" -C "$src"
if [ "$version" = 2.2.7 ] && ! grep -q '^keepalived (1:2.2.7-1)' <(head -n 1 "$src/debian/changelog"); then
	# Back to 2.2.7-1: the changelog from that entry on, the configure options it had.
	sed -i -n '/^keepalived (1:2.2.7-1)/,$p' "$src/debian/changelog"
	sed -i -e '/--enable-log-file/d' -e '/--enable-reproducible-build/d' "$src/debian/rules"
	sed -i "s|^rm_conffile /etc/dbus-1/system.d/org.keepalived.Vrrp1.conf .*|rm_conffile /etc/dbus-1/system.d/org.keepalived.Vrrp1.conf $newver~|" \
		"$src/debian/keepalived.maintscript"
fi

# Our package: our maintainer field (debian/changelog keeps Debian's entries), and the one lintian tag.
sed -i 's/^Maintainer: .*/Maintainer: fullnat maintainers <maintainers@users.noreply.r-seed-376cf64e.example>/' \
	"$src/debian/control"
cat >"$src/debian/keepalived.lintian-overrides" <<'EOF'
# Upstream's keepalived.conf(5) has a line that starts with "'ip route add'": groff reads it as the
# request "ip". The text is upstream's (Debian's own package carries the same page); our series
# does not touch that paragraph.
groff-message *warning: macro 'ip' not defined [usr/share/man/man5/keepalived.conf.5.gz:*]
EOF

# Our series after Debian's own (quilt, applied by dpkg-source --before-build).
mkdir -p "$src/debian/patches"
touch "$src/debian/patches/series"
sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$patchdir/series" | while read -r p; do
	cp "$patchdir/$p" "$src/debian/patches/fullnat-$p"
	echo "fullnat-$p" >>"$src/debian/patches/series"
done
patches=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$patchdir/series" | sed 's/^/    fullnat-/')
{
	echo "keepalived ($newver) $dist; urgency=medium"
	echo
	echo "  * FULLNAT: lb_kind FNAT, local_address_group, syn_proxy and the"
	echo "    established timeout, vip_bind_dev (the fullnat project's series):"
	echo "$patches"
	echo
	echo " -- fullnat maintainers <maintainers@users.noreply.r-seed-376cf64e.example>  $(date -R -d @"${SOURCE_DATE_EPOCH:-$(git -C "$top" log -1 --format=%ct)}")"
	echo
	cat "$src/debian/changelog"
} >"$src/debian/changelog.new"
mv "$src/debian/changelog.new" "$src/debian/changelog"

host=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [ "$host" = "$dist" ]; then
	# Build dependencies from debian/control, as host packages (dpkg-checkbuilddeps names them).
	missing=$(cd "$src" && dpkg-checkbuilddeps 2>&1 | sed -n 's/.*Unmet build dependencies: //p' |
		sed -E 's/\([^)]*\)//g; s/\|[^ ]*//g' || true)
	if [ -n "$missing" ]; then
		log "installing the build dependencies: $missing"
		apt-get update -qq >&2
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
	fi
	log "dpkg-buildpackage keepalived $newver ($dist)"
	(cd "$src" && nice -n 10 dpkg-buildpackage -b -us -uc -j"$(nproc)" >"$work/build.log" 2>&1) ||
		{ tail -n 40 "$work/build.log" >&2; log "dpkg-buildpackage failed (whole log: $work/build.log)"; exit 1; }
else
	# Another release than the host's: a package links to the libraries of the release it is built
	# on (trixie's are the t64 ones), so build it in a $dist chroot that mmdebstrap makes with the
	# build dependencies (debian/control's Build-Depends) and removes again; nothing is cached.
	command -v mmdebstrap >/dev/null || "$top/pkg/deps.sh" --test
	mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
		grep -oE 'https?://[^ ]*/debian/?( |$)' | head -n 1 | tr -d ' ' || true)
	mirror=${mirror:-http://deb.debian.org/debian/}
	mirror=${mirror%/}
	deps=$(awk '/^Build-Depends:/ {f = 1; sub(/^Build-Depends:/, "")} f && /^[A-Z]/ && !/^Build-Depends:/ {f = 0} f' \
		"$src/debian/control" | tr -d '\n' | sed -E 's/\([^)]*\)//g; s/\|[^,]*//g; s/[[:space:]]//g; s/debhelper-compat/debhelper/; s/,+$//')
	deps="$deps,build-essential,fakeroot"
	log "dpkg-buildpackage keepalived $newver in a $dist chroot (mmdebstrap, $mirror; $deps)"
	nice -n 10 mmdebstrap --variant=buildd --components=main --include="$deps" \
		--customize-hook='mkdir -p "$1/build"' --customize-hook="copy-in $src /build" \
		--customize-hook="chroot \"\$1\" sh -c 'cd /build/keepalived-$upver && dpkg-buildpackage -b -us -uc -j$(nproc)'" \
		--customize-hook="sync-out /build $work" \
		"$dist" /dev/null "deb $mirror $dist main" >"$work/build.log" 2>&1 ||
		{ tail -n 40 "$work/build.log" >&2; log "the $dist chroot build failed (whole log: $work/build.log)"; exit 1; }
fi
rm -f "$outdir/keepalived_$upver"-* "$outdir/keepalived-dbgsym_$upver"-*
mv "$work/keepalived_$upver"-*.deb "$work/keepalived_$upver"-*.changes "$work/keepalived_$upver"-*.buildinfo "$outdir/"
mv "$work/keepalived-dbgsym_$upver"-*.deb "$outdir/" 2>/dev/null || true
rm -rf "$work"
ls "$outdir/keepalived_$upver"-*.changes
