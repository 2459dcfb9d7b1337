#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# pkg/deps.sh [--test]: install the Debian tools `make deb` needs (dpkg-buildpackage, debhelper,
# dh-dkms, lintian, dkms), and with --test those of `make test-packages` too (mmdebstrap). Already
# installed packages cost nothing. Go itself is not a Debian package here (go.mod wants a newer Go
# than Debian ships): the `go` in PATH builds ipvsadm.
set -euo pipefail

pkgs=(dpkg-dev debhelper dh-dkms dkms lintian fakeroot)
if [ "${1:-}" = --test ]; then
	pkgs+=(mmdebstrap)
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ "${#missing[@]}" -gt 0 ] || exit 0
echo "pkg/deps: installing ${missing[*]}" >&2
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
