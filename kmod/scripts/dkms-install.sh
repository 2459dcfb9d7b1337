#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# dkms-install.sh [RELEASE]: copy kmod/ and patches/ to /usr/src/fullnat-ipvs-<version>/ and
# run dkms add, build and install for RELEASE (default: the running kernel).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
top=$(cd "$here/.." && pwd)
rel=${1:-$(uname -r)}
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$here/dkms.conf")
dst=/usr/src/fullnat-ipvs-$ver
rm -rf "$dst"
mkdir -p "$dst"
(cd "$here" && tar -cf - --exclude=./build --exclude=./out --exclude=./toa .) | tar -xf - -C "$dst"
cp -r "$top/patches" "$dst/patches"
dkms remove -m fullnat-ipvs -v "$ver" --all >/dev/null 2>&1 || true
dkms add -m fullnat-ipvs -v "$ver"
dkms build -m fullnat-ipvs -v "$ver" -k "$rel"
# No --force: our modules carry a MODULE_VERSION and the kernel's have none, so dkms replaces them.
dkms install -m fullnat-ipvs -v "$ver" -k "$rel"
