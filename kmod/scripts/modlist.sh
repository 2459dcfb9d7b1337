#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# modlist.sh [--print] RELEASE ROOT: check that dkms.conf rebuilds every in-tree module our ip_vs
# changes, found from symbol versions rather than by name:
#   1. the symbols exported by net/netfilter/ipvs/ip_vs, from the headers' Module.symvers;
#   2. every module of ROOT/lib/modules/RELEASE that imports one of them (an undefined symbol of
#      the .ko, what modpost resolves against Module.symvers) must be rebuilt: with MODVERSIONS
#      (6.1, 6.12) their CRCs change with our structures and the old module no longer loads;
#      without (Debian's 7.3) it would load and use the old layouts. So, in turn, must every
#      module importing a symbol exported by one of those (to a fixpoint);
#   3. that set must equal dkms.conf's BUILT_MODULE_NAME list for RELEASE, and the modules
#      scripts/build.sh builds (kmod/out/RELEASE/, without toa.ko) when they are there.
# ROOT is / on a real machine, $RIG_CACHE/kernels/RELEASE in the rig. With --print, only prints
# the set. Without arguments: every kernel rig/fetch.sh knows.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
top=$(cd "$here/.." && pwd)

print=0
if [ "${1:-}" = --print ]; then
	print=1
	shift
fi
# dkms.conf's BUILD_EXCLUSIVE_KERNEL must accept exactly the lines with a patch series.
excl=$(sed -n 's/^BUILD_EXCLUSIVE_KERNEL="\(.*\)"/\1/p' "$here/dkms.conf")
for d in "$top"/patches/*/series; do
	line=$(basename "$(dirname "$d")")
	[[ "$line.0-1-cloud-amd64" =~ $excl ]] ||
		{ echo "modlist: dkms.conf's BUILD_EXCLUSIVE_KERNEL '$excl' excludes $line, which patches/ supports" >&2; exit 1; }
done
for line in 5.10 6.6 7.0 7.30; do
	if [[ "$line.0-1-cloud-amd64" =~ $excl ]] && [ ! -d "$top/patches/$line" ]; then
		echo "modlist: dkms.conf's BUILD_EXCLUSIVE_KERNEL '$excl' accepts $line, which patches/ lacks" >&2
		exit 1
	fi
done
if [ $# -eq 0 ]; then
	[ -x "$top/rig/fetch.sh" ] || { echo "usage: modlist.sh [--print] RELEASE ROOT" >&2; exit 2; }
	rc=0
	while read -r _ rel root; do
		"$0" "$rel" "$root" </dev/null || rc=1
	done < <("$top/rig/fetch.sh")
	exit $rc
fi
rel=${1:?usage: modlist.sh [--print] RELEASE ROOT}
root=${2:?usage: modlist.sh [--print] RELEASE ROOT}
mods=$root/lib/modules/$rel
symvers=$root/usr/src/linux-headers-$rel/Module.symvers
[ -f "$symvers" ] || symvers=$mods/build/Module.symvers
[ -f "$symvers" ] || { echo "modlist: no Module.symvers for $rel (install linux-headers-$rel)" >&2; exit 1; }
[ -d "$mods/kernel" ] || { echo "modlist: no modules at $mods/kernel" >&2; exit 1; }

# module name -> the symbols it exports (Module.symvers: crc, symbol, module path, export type)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk -F'\t' '{n = $3; sub(".*/", "", n); print n "\t" $2}' "$symvers" >"$tmp/exports"
# module name -> the symbols it imports
find "$mods/kernel" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz' | sort |
	while read -r f; do
		n=$(basename "$f")
		n=${n%%.ko*}
		case "$f" in
		*.xz) xz -dc "$f" >"$tmp/m.ko" && f=$tmp/m.ko ;;
		*.zst) zstd -qdc "$f" >"$tmp/m.ko" && f=$tmp/m.ko ;;
		*.gz) gzip -dc "$f" >"$tmp/m.ko" && f=$tmp/m.ko ;;
		esac
		nm -u "$f" | awk -v n="$n" '$1 == "U" {print n "\t" $2}'
	done >"$tmp/imports"

# fixpoint: start from ip_vs, add every module importing a symbol some module in the set exports
echo ip_vs >"$tmp/set"
while :; do
	awk -F'\t' 'FILENAME == ARGV[1] {in_set[$1] = 1; next}
		FILENAME == ARGV[2] {if ($1 in in_set) ex[$2] = 1; next}
		$2 in ex {print $1}' "$tmp/set" "$tmp/exports" "$tmp/imports" |
		sort -u - "$tmp/set" >"$tmp/set.new"
	if cmp -s "$tmp/set" "$tmp/set.new"; then break; fi
	mv "$tmp/set.new" "$tmp/set"
done
# Schedulers and helpers register with ip_vs through its exported functions, so they are in the
# set; a module in ipvs/ that imports nothing of ip_vs would not be, and is added: it includes
# ip_vs.h and its structures change size with ours.
find "$mods/kernel/net/netfilter/ipvs" -name 'ip_vs*.ko*' 2>/dev/null | sed 's|.*/||; s|\.ko.*||' |
	sort -u - "$tmp/set" >"$tmp/set.new"
mv "$tmp/set.new" "$tmp/set"

if [ "$print" = 1 ]; then
	cat "$tmp/set"
	exit 0
fi

# dkms.conf's list for this release (it is bash: evaluate it as dkms does)
(
	set +u
	kernelver=$rel kernel_source_dir=/lib/modules/$rel/build dkms_tree=/var/lib/dkms
	# shellcheck disable=SC1091
	. "$here/dkms.conf"
	printf '%s\n' "${BUILT_MODULE_NAME[@]}"
) | sort >"$tmp/dkms"
rc=0
if ! diff -u --label "modules importing ip_vs symbols ($rel)" --label "dkms.conf BUILT_MODULE_NAME ($rel)" \
	"$tmp/set" "$tmp/dkms"; then
	echo "modlist: dkms.conf's module list for $rel differs from the modules that import ip_vs symbols" >&2
	rc=1
fi
out=$here/out/$rel
if [ -d "$out" ]; then
	ls "$out" | sed -n 's/\.ko$//p' | grep -vx toa | sort >"$tmp/built"
	if ! diff -u --label "modules importing ip_vs symbols ($rel)" --label "built by scripts/build.sh (kmod/out/$rel)" \
		"$tmp/set" "$tmp/built"; then
		echo "modlist: scripts/build.sh builds a different set for $rel" >&2
		rc=1
	fi
fi
[ "$rc" = 1 ] || echo "modlist: $rel: dkms.conf rebuilds the $(wc -l <"$tmp/set") modules that import ip_vs symbols" >&2
exit $rc
