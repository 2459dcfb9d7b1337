#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# checkpatch.sh: run the kernel's checkpatch.pl (from Debian's linux-source-6.12, extracted once
# into build/checkpatch/) over our own sources and the patch series.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
top=$(cd "$here/.." && pwd)
cache=${RIG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lvs-rig}
cp_dir=$here/build/checkpatch
tarball=$(ls "$cache"/kernels/6.12.*/usr/src/linux-source-6.12.tar.xz 2>/dev/null | head -n 1)
if [ ! -x "$cp_dir/scripts/checkpatch.pl" ]; then
	[ -n "$tarball" ] || { "$top/rig/fetch.sh" >/dev/null; tarball=$(ls "$cache"/kernels/6.12.*/usr/src/linux-source-6.12.tar.xz | head -n 1); }
	mkdir -p "$cp_dir"
	tar -xJf "$tarball" -C "$cp_dir" --strip-components=1 --wildcards \
		'*/scripts/checkpatch.pl' '*/scripts/spelling.txt' '*/scripts/const_structs.checkpatch'
fi
cp=("$cp_dir/scripts/checkpatch.pl" --no-tree --strict --show-types
	--ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG,LINUX_VERSION_CODE,CONSTANT_COMPARISON)
rc=0
files=("$here"/*.c "$here"/toa/*.c "$here"/include/net/*.h)
for f in "${files[@]}"; do
	[ -e "$f" ] || continue
	"${cp[@]}" -q -f "$f" || rc=1
done
for p in "$top"/patches/*/*.patch; do
	[ -e "$p" ] || continue
	"${cp[@]}" -q "$p" || rc=1
done
exit $rc
