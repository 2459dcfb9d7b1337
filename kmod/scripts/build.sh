#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# build.sh RELEASE: build the patched IPVS modules for one kernel release.
# build.sh --apply-only VERSION: steps 2 and 3 only, for $TARBALL (or $KSRC) of kernel VERSION
#   (6.1.170, 6.12.117-1~deb12u1: the line is its first two numbers) in $BUILD_DIR (default
#   build/VERSION): check the source is that version and that the series applies; no headers needed.
#   kmod/scripts/pointreleases.sh runs it for every linux-source the mirror offers.
#
# 1. find Debian's linux-source tarball for the release's line (or use $KSRC, a kernel tree, or
#    $TARBALL), running ../rig/fetch.sh when the cache lacks it;
# 2. extract net/netfilter/ipvs and the two ip_vs.h headers once into build/RELEASE/pristine;
# 3. apply patches/<line>/series (or patches/series) to a fresh copy, and copy into
#    build/RELEASE/src only the files whose content changed, so kbuild rebuilds only those;
# 4. link our own sources from kmod/ into the module directory and build with kbuild against
#    the release's headers ($KDIR overrides);
# 5. copy every module, debug info stripped, into out/RELEASE/.
#
# Environment: KSRC, KDIR, TARBALL, PATCHES (default ../patches), BUILD_DIR override the defaults.
set -euo pipefail

apply_only=0
if [ "${1:-}" = --apply-only ]; then
	apply_only=1
	shift
fi
rel=${1:?usage: build.sh [--apply-only] RELEASE}
here=$(cd "$(dirname "$0")/.." && pwd)
top=$(cd "$here/.." && pwd)
cache=${RIG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lvs-rig}

# The line is the release's first two numbers (6.1.0-57-cloud-amd64: 6.1, 7.3.4+deb13-cloud-amd64:
# 7.3); a line is supported when patches/<line>/ exists.
line=$(echo "$rel" | cut -d. -f1-2)
if [ -z "${PATCHES:-}" ] && [ ! -d "$top/patches/$line" ]; then
	echo "build.sh: unsupported release $rel (lines: $(cd "$top/patches" && ls -d */ | tr -d / | tr '\n' ' '))" >&2
	exit 2
fi

log() { echo "kmod[$rel]: $*" >&2; }

root=$cache/kernels/$rel
kdir=${KDIR:-$root/usr/src/linux-headers-$rel}
tarball=${TARBALL:-$root/usr/src/linux-source-$line.tar.xz}
# On a real machine (dkms): Debian's linux-source-<line> package.
[ -f "$tarball" ] || [ ! -f "/usr/src/linux-source-$line.tar.xz" ] || tarball=/usr/src/linux-source-$line.tar.xz
# A kernel built here from Debian's source (the rig's sanitizer kernel, KDIR=its build tree):
# the source of the same line that rig/fetch.sh unpacked.
if [ ! -f "$tarball" ] && [ -z "${TARBALL:-}" ] && [ -n "${KDIR:-}" ]; then
	for t in "$cache"/kernels/$line.*/usr/src/linux-source-$line.tar.xz; do
		[ -f "$t" ] && tarball=$t
	done
fi
if [ "$apply_only" = 1 ]; then
	[ -n "${KSRC:-}" ] || [ -f "$tarball" ] || { log "--apply-only: no source (TARBALL=$tarball, KSRC unset)"; exit 1; }
elif [ ! -d "$kdir" ] || { [ -z "${KSRC:-}" ] && [ ! -f "$tarball" ]; }; then
	if [ ! -x "$top/rig/fetch.sh" ]; then
		log "need the headers at $kdir and linux-source-$line (apt-get install linux-source-$line), or KSRC=<kernel tree>"
		exit 1
	fi
	log "fetching kernel packages"
	"$top/rig/fetch.sh" >/dev/null
fi
[ "$apply_only" = 1 ] || [ -d "$kdir" ] || { log "no headers at $kdir"; exit 1; }

b=${BUILD_DIR:-$here/build/$rel}
mkdir -p "$b"

# 2. pristine sources, extracted once per source.
# xt_ipvs (iptables -m ipvs) is the one in-tree module outside ipvs/ that imports ip_vs symbols:
# their versions change with our structures, so it is rebuilt with ours or it no longer loads.
# The top Makefile too: its VERSION, PATCHLEVEL and SUBLEVEL are checked against the headers'.
files=(net/netfilter/ipvs net/netfilter/xt_ipvs.c include/net/ip_vs.h include/uapi/linux/ip_vs.h)
if [ -n "${KSRC:-}" ]; then
	origin="tree $(cd "$KSRC" && pwd) ${files[*]} Makefile"
else
	origin="tarball $tarball $(stat -c %Y "$tarball") ${files[*]} Makefile"
fi
if [ ! -f "$b/pristine.stamp" ] || [ "$(cat "$b/pristine.stamp")" != "$origin" ]; then
	log "extracting ipvs sources ($origin)"
	rm -rf "$b/pristine" "$b/pristine.tmp"
	mkdir -p "$b/pristine.tmp"
	if [ -n "${KSRC:-}" ]; then
		(cd "$KSRC" && tar -cf - "${files[@]}" Makefile) | tar -xf - -C "$b/pristine.tmp"
	else
		tar -xJf "$tarball" -C "$b/pristine.tmp" --strip-components=1 \
			--wildcards "${files[@]/#/*/}" "linux-source-$line/Makefile"
	fi
	mv "$b/pristine.tmp" "$b/pristine"
	echo "$origin" >"$b/pristine.stamp"
fi

# 3. patch a fresh copy, then sync changed files only.
patches=${PATCHES:-$top/patches}
series=$patches/$line/series
pdir=$patches/$line
if [ ! -f "$series" ]; then
	series=$patches/series
	pdir=$patches
fi
# The oldest release of the line the series is written for (patches/<line>/min-version): an older
# source is refused, with what to install, rather than failing in a patch (exit 3).
if [ -f "$pdir/min-version" ]; then
	min=$(grep -vE '^[[:space:]]*(#|$)' "$pdir/min-version" | head -n 1)
	pv=$(awk -F' *= *' '$1 == "VERSION" {v = $2} $1 == "PATCHLEVEL" {p = $2} $1 == "SUBLEVEL" {s = $2}
		END {if (v != "") print v "." p "." s}' "$b/pristine/Makefile")
	if [ "$(printf '%s\n%s\n' "$min" "$pv" | sort -V | head -n 1)" != "$min" ]; then
		log "the source is Linux $pv, older than $min, the oldest $line release patches/$line is written for"
		log "($pdir/min-version). Upgrade the kernel, its headers and linux-source-$line to $min or newer"
		log "(Debian 12: the kernel of bookworm-security, e.g. apt-get install linux-image-cloud-amd64 linux-source-$line)."
		exit 3
	fi
fi
rm -rf "$b/stage"
cp -a "$b/pristine" "$b/stage"
if [ -f "$series" ]; then
	while read -r p _; do
		case "$p" in '' | '#'*) continue ;; esac
		if ! out=$(patch -d "$b/stage" -p1 -N -F0 --no-backup-if-mismatch <"$pdir/$p" 2>&1); then
			log "patch $p does not apply:"
			# the files and hunks that failed, each with the hunk's header from the reject file
			echo "$out" | awk '/^patching file / {f = $3} /FAILED|can.t find file|Reversed|malformed/ {print "  " f ": " $0}' >&2
			for rej in $(cd "$b/stage" && find . -name '*.rej' | sort); do
				grep '^@@' "$b/stage/$rej" | sed "s|^|  ${rej#./}: |" >&2
			done
			exit 1
		fi
	done <"$series"
fi
if [ "$apply_only" = 1 ]; then
	# The source must be the version it is checked as (a tarball mislabelled would prove nothing).
	want=$(echo "$rel" | sed 's/[-+~].*//')
	got=$(awk -F' *= *' '$1 == "VERSION" {v = $2} $1 == "PATCHLEVEL" {p = $2} $1 == "SUBLEVEL" {s = $2}
		END {if (v != "") print v "." p "." s}' "$b/pristine/Makefile")
	if [ "$got" != "$want" ]; then
		log "the source is Linux $got, not $want"
		exit 1
	fi
	log "Linux $got: $(grep -cvE '^[[:space:]]*(#|$)' "$series") patches of $series apply with no fuzz"
	exit 0
fi
# our own headers (include/net/ip_vs_fnat.h) go next to the patched ones
cp -r "$here/include/." "$b/stage/include/"
mkdir -p "$b/src"
(cd "$b/stage" && find . -type f) | while read -r f; do
	if ! cmp -s "$b/stage/$f" "$b/src/$f"; then
		mkdir -p "$(dirname "$b/src/$f")"
		cp "$b/stage/$f" "$b/src/$f"
	fi
done

# 4. our sources and the Kbuild that adds them.
mdir=$b/src/net/netfilter/ipvs
ln -sfn ../xt_ipvs.c "$mdir/xt_ipvs.c"
for f in "$here"/*.c "$here"/*.h; do
	[ -e "$f" ] || continue
	ln -sfn "$f" "$mdir/$(basename "$f")"
done
ours=$(cd "$here" && ls *.c 2>/dev/null | sed 's/\.c$/.o/' | tr '\n' ' ')
# The modules' version is dkms.conf's PACKAGE_VERSION. MODULE_VERSION() spelled out as the
# .modinfo entry it makes, so the header needs no include (it goes before the source's own
# pr_fmt definition).
version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$here/dkms.conf")
[ -n "$version" ] || { log "no PACKAGE_VERSION in $here/dkms.conf"; exit 1; }
{
	echo "/* SPDX-License-Identifier: GPL-2.0-only */"
	echo "/* Generated by kmod/scripts/build.sh: MODULE_VERSION(\"$version\") */"
	echo "static const char __fullnat_modinfo_version[] __used __section(\".modinfo\") __aligned(1) ="
	echo "	\"version=$version\";"
} >"$b/version.h.new"
if cmp -s "$b/version.h.new" "$b/version.h"; then rm -f "$b/version.h.new"; else mv "$b/version.h.new" "$b/version.h"; fi
sed -e "s|@INCLUDE@|$b/src/include|g" -e "s|@MDIR@|$mdir|g" -e "s|@OURS@|$ours|g" \
	-e "s|@VERSION_H@|$b/version.h|g" \
	"$here/Kbuild.in" >"$b/Kbuild.new"
if cmp -s "$b/Kbuild.new" "$mdir/Kbuild"; then rm -f "$b/Kbuild.new"; else mv "$b/Kbuild.new" "$mdir/Kbuild"; fi

# Debian's headers Makefile includes the common tree by an absolute /usr/src path; point
# make at the common Makefile next to it instead, so an unpacked cache works too.
mk=$kdir/Makefile
inc=$(sed -n 's/^include[[:space:]]\+//p' "$kdir/Makefile" | head -n 1)
if [ -n "$inc" ]; then
	if [ -f "$inc" ]; then
		mk=$inc
	elif [ -f "$kdir/../$(basename "$(dirname "$inc")")/Makefile" ]; then
		mk=$(cd "$kdir/../$(basename "$(dirname "$inc")")" && pwd)/Makefile
	fi
fi
# The source must be the release the headers are: patches apply with no fuzz, and our ip_vs must
# match the kernel it loads into. linux-source-<line> is one package per line, so after a kernel
# update it may be older or newer than a kernel still installed.
# makever FILE: VERSION.PATCHLEVEL.SUBLEVEL of a kernel top Makefile.
makever() {
	awk -F' *= *' '$1 == "VERSION" {v = $2} $1 == "PATCHLEVEL" {p = $2} $1 == "SUBLEVEL" {s = $2}
		END {if (v != "") print v "." p "." s}' "$1"
}
src_ver=$(makever "$b/pristine/Makefile")
hdr_ver=$(makever "$mk")
if [ -z "$src_ver" ] || [ -z "$hdr_ver" ]; then
	log "cannot read the kernel version of the source ($b/pristine/Makefile: '$src_ver') or of the headers ($mk: '$hdr_ver')"
	exit 1
fi
if [ "$src_ver" != "$hdr_ver" ]; then
	if [ -n "${KSRC:-}" ]; then
		what="the kernel tree $KSRC"
	else
		what="$tarball"
	fi
	log "$what is Linux $src_ver but $rel is Linux $hdr_ver."
	log "Install the kernel source of the same version as the kernel, e.g.:"
	log "  apt-get install linux-source-$line=\$(dpkg-query -W -f='\${Version}' linux-headers-$rel)"
	log "(or upgrade the kernel to the one linux-source-$line has; set FULLNAT_SOURCE_MISMATCH_OK=1 to build anyway)"
	[ -n "${FULLNAT_SOURCE_MISMATCH_OK:-}" ] || exit 1
fi
# Debian's kbuild tools for a newer release (7.x from trixie) may need a newer C library than the
# host's (modpost and objtool: GLIBC_2.38 on a bookworm host). Then build them once from the
# release's own source with the host's compiler (cached in $cache/host-tools/<release>) and use a
# shadow of the headers directory, links to every file but those two tools.
broken_tools=0
for t in scripts/mod/modpost.real-lsb-64 tools/objtool/objtool.real-x86 scripts/mod/modpost tools/objtool/objtool; do
	if [ -f "$kdir/$t" ] && ldd "$kdir/$t" 2>&1 | grep -q 'not found'; then broken_tools=1; fi
done
if [ "$broken_tools" = 1 ]; then
	ht=$cache/host-tools/$rel
	if [ ! -x "$ht/out/scripts/mod/modpost" ] || [ ! -x "$ht/out/tools/objtool/objtool" ]; then
		log "Debian's modpost/objtool do not run here: building them from linux-source-$line"
		rm -rf "$ht"
		mkdir -p "$ht/src" "$ht/out"
		tar -xJf "$tarball" -C "$ht/src" --strip-components=1
		cp "$kdir/.config" "$ht/out/.config"
		make -s -C "$ht/src" O="$ht/out" olddefconfig >&2
		make -s -C "$ht/src" O="$ht/out" -j"$(nproc)" modules_prepare >&2
		rm -rf "$ht/src"
	fi
	shadow=$b/kdir
	if [ ! -f "$shadow.stamp" ] || [ "$(cat "$shadow.stamp")" != "$kdir $ht" ]; then
		rm -rf "$shadow"
		cp -rsL "$kdir/." "$shadow/"
		rm -f "$shadow/scripts/mod/modpost" "$shadow/tools/objtool/objtool"
		cp "$ht/out/scripts/mod/modpost" "$shadow/scripts/mod/modpost"
		cp "$ht/out/tools/objtool/objtool" "$shadow/tools/objtool/objtool"
		echo "$kdir $ht" >"$shadow.stamp"
	fi
	kdir=$shadow
fi
# The compiler: Debian builds 7.x with x86_64-linux-gnu-gcc-14 (CC in the headers'
# .kernelvariables). On a host without it, the host's gcc; when that is older, without the one
# option it lacks (-fmin-function-alignment: -falign-functions gives the same alignment).
cc_opts=()
# Debian's headers Makefile names its build tree in KBUILD_OUTPUT; 7.x's Makefile needs it said
# when make reads the common Makefile directly.
if grep -q '^KBUILD_OUTPUT=' "$kdir/Makefile"; then
	cc_opts+=(KBUILD_OUTPUT="$kdir")
fi
kcc_ver=$(sed -n 's/^CONFIG_GCC_VERSION=\([0-9]*\)/\1/p' "$kdir/.config")
if grep -q 'gcc-[0-9]' "$kdir/.kernelvariables" 2>/dev/null && [ -n "$kcc_ver" ] &&
	! command -v "x86_64-linux-gnu-gcc-$((kcc_ver / 10000))" >/dev/null; then
	log "x86_64-linux-gnu-gcc-$((kcc_ver / 10000)) is not installed: building with gcc $(gcc -dumpfullversion)"
	cc_opts+=(CC=gcc)
	if [ "$((kcc_ver / 10000))" -gt "$(gcc -dumpversion | cut -d. -f1)" ]; then
		cc_opts+=(CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT=)
	fi
fi
# for kmod/toa/Makefile: the same headers directory and arguments
{
	echo "KDIR := $kdir"
	echo "KMK := $mk"
	echo "KBUILD_ARGS := ${cc_opts[*]}"
} >"$b/kbuild.mk.new"
if cmp -s "$b/kbuild.mk.new" "$b/kbuild.mk"; then rm -f "$b/kbuild.mk.new"; else mv "$b/kbuild.mk.new" "$b/kbuild.mk"; fi
log "building against $kdir"
# No module BTF: it needs pahole and nothing here uses it.
make -s -C "$kdir" -f "$mk" M="$mdir" -j"$(nproc)" CONFIG_DEBUG_INFO_BTF_MODULES= "${cc_opts[@]}" modules

# 5. install into out/, debug info stripped; only files that changed are touched.
out=$here/out/$rel
mkdir -p "$out"
for ko in "$mdir"/*.ko; do
	strip --strip-debug -o "$b/strip.tmp" "$ko"
	if cmp -s "$b/strip.tmp" "$out/$(basename "$ko")"; then rm -f "$b/strip.tmp"; else mv "$b/strip.tmp" "$out/$(basename "$ko")"; fi
done
log "$(ls "$out" | wc -l) modules in $out"
