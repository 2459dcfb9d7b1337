#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# dkms-build.sh RELEASE KERNEL_SOURCE_DIR: the MAKE command of dkms.conf. Needs Debian's
# linux-source-<line> package (/usr/src/linux-source-<line>.tar.xz) for the ipvs sources.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rel=${1:?usage: dkms-build.sh RELEASE KERNEL_SOURCE_DIR}
export KDIR=${2:-/lib/modules/$rel/build}
export PATCHES=$here/patches
export RIG_CACHE=$here/build/cache
exec "$here/scripts/build.sh" "$rel"
