#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Build the sanitizer kernel of the rig's debug lane: Debian's own 6.12 source (linux-source-6.12
# from rig/fetch.sh) with Debian's cloud config as the base, trimmed to the modules the VM tests
# load (rig/modules.list and their dependencies, localmodconfig-style), plus
# rig/debug-kernel.config (KASAN, KFENCE, lockdep, UBSAN, DEBUG_NET, debug objects, no debug
# info or BTF, unsigned modules).
#
# The result is cached in $RIG_CACHE/debug/<key>/, key = source package + config fragment +
# module list, so a second run costs nothing:
#   root/boot/vmlinuz-<release>, root/boot/config-<release>, root/lib/modules/<release>/
#   build/   the kernel build tree: KDIR for our modules (make -C kmod KVER=<release> KDIR=...)
# Prints "<release> <root dir> <build dir>".
#
# usage: rig/debug-kernel.sh [-j N]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
RIG_CACHE=${RIG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lvs-rig}
jobs=${RIG_DEBUG_JOBS:-$(($(nproc) * 2))}
[ "${1:-}" != -j ] || jobs=$2

log() { echo "rig/debug-kernel: $*" >&2; }

base_rel=$("$here/fetch.sh" | awk '$1 == "6.12" {print $2}')
[ -n "$base_rel" ] || { log "no 6.12 kernel from rig/fetch.sh"; exit 1; }
kroot=$RIG_CACHE/kernels/$base_rel
tarball=$kroot/usr/src/linux-source-6.12.tar.xz
srcdeb=$(cd "$RIG_CACHE/debs" && ls linux-source-6.12_*.deb | head -n 1)
[ -s "$tarball" ] && [ -n "$srcdeb" ] || { log "linux-source-6.12 missing: run rig/fetch.sh"; exit 1; }

key=$( { echo "$srcdeb"; cat "$here/debug-kernel.config" "$here/modules.list"; } | sha256sum | cut -c1-16)
dir=$RIG_CACHE/debug/$key
rel=${base_rel%-cloud-amd64}-kasan
if [ -s "$dir/done" ]; then
	echo "$rel $dir/root $dir/build"
	exit 0
fi

start=$(date +%s)
# One sanitizer kernel at a time: a build for another key is stale.
for d in "$RIG_CACHE"/debug/*; do
	case "$(basename "$d")" in src-*) ;; *) [ "$d" = "$dir" ] || rm -rf "$d" ;; esac
done
mkdir -p "$dir"
src=$RIG_CACHE/debug/src-${srcdeb%_all.deb}
if [ ! -e "$src/.unpacked" ]; then
	log "unpacking $(basename "$tarball")"
	rm -rf "$src"
	mkdir -p "$src"
	tar -xJf "$tarball" -C "$src" --strip-components=1
	touch "$src/.unpacked"
fi

# The module closure, named as lsmod names them, from the stock kernel's modules.dep.
mdir=$kroot/lib/modules/$base_rel
[ -s "$mdir/modules.dep" ] || depmod -b "$kroot" "$base_rel"
roots=$(cd "$mdir" && find kernel/net/netfilter/ipvs -name '*.ko*'
	grep -Ev '^(#|$)' "$here/modules.list" | while read -r m; do
		find kernel -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst"
	done)
for r in $roots; do
	echo "$r"
	awk -v m="$r" -F': *' '$1 == m {print $2}' "$mdir/modules.dep" | tr ' ' '\n'
done | grep . | sed 's|.*/||; s|\.ko.*||; s|-|_|g' | sort -u |
	awk '{print $1, 0, 0}' >"$dir/lsmod"
log "keeping $(wc -l <"$dir/lsmod") modules"

# The config is made in cfg/; an interrupted build of the same config resumes in build/.
b=$dir/build
c=$dir/cfg
rm -rf "$c" "$dir/root"
mkdir -p "$c" "$b"
cp "$kroot/boot/config-$base_rel" "$c/.config"
mk() { make -C "$src" O="$c" "$@"; }
mk olddefconfig >/dev/null
mk LSMOD="$dir/lsmod" localmodconfig </dev/null >/dev/null 2>"$dir/localmodconfig.log" ||
	{ cat "$dir/localmodconfig.log" >&2; exit 1; }
"$src/scripts/kconfig/merge_config.sh" -m -O "$c" "$c/.config" "$here/debug-kernel.config" >/dev/null
mk olddefconfig >/dev/null

# Check the fragment made it (Kconfig silently drops what a dependency forbids).
bad=0
must=0
while IFS= read -r line; do
	case "$line" in
	'# must') must=1; continue ;;
	'# CONFIG_'*' is not set') sym=${line#\# }; sym=${sym%% *}; want=n ;;
	CONFIG_*=*) sym=${line%%=*}; want=${line#*=} ;;
	*) must=0; continue ;;
	esac
	have=$(grep -E "^$sym=|^# $sym is not set" "$c/.config" | head -n 1 || true)
	case "$have" in "$sym="*) have=${have#*=} ;; *) have=n ;; esac
	if [ "$have" != "$want" ]; then
		if [ "$must" = 1 ]; then
			log "FAIL: $sym=$have, want $want"
			bad=1
		else
			log "note: $sym=$have (fragment says $want)"
		fi
	fi
	must=0
done <"$here/debug-kernel.config"
[ "$bad" = 0 ] || exit 1
if ! cmp -s "$c/.config" "$b/.config"; then
	rm -rf "$b"
	mkdir -p "$b"
	cp "$c/.config" "$b/.config"
fi
rm -rf "$c"
mk() { make -C "$src" O="$b" "$@"; }

log "building $rel in $b with -j$jobs (log: $dir/build.log)"
if ! mk -j"$jobs" bzImage modules >"$dir/build.log" 2>&1; then
	tail -n 40 "$dir/build.log" >&2
	exit 1
fi
mr=$(cat "$b/include/config/kernel.release")
[ "$mr" = "$rel" ] || { log "kernel release is $mr, want $rel"; exit 1; }
mkdir -p "$dir/root/boot"
cp "$b/arch/x86/boot/bzImage" "$dir/root/boot/vmlinuz-$rel"
cp "$b/.config" "$dir/root/boot/config-$rel"
mk -s INSTALL_MOD_PATH="$dir/root" INSTALL_MOD_STRIP=1 DEPMOD=/sbin/depmod modules_install >>"$dir/build.log" 2>&1
rm -f "$dir/root/lib/modules/$rel/build" "$dir/root/lib/modules/$rel/source"
ln -s "$b" "$dir/root/lib/modules/$rel/build"
end=$(date +%s)
echo "$((end - start))" >"$dir/build-seconds"
log "built $rel in $((end - start)) s"
echo "$rel" >"$dir/done"
echo "$rel $dir/root $dir/build"
