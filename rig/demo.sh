#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `make demo`: boot a 6.1 VM with a client, a director and two real servers in network namespaces,
# configure a virtual service with our ipvsadm, send traffic, and show `ipvsadm -Ln --stats` and what
# each real server saw. With our modules built (kmod/out/<release>/), the service is FULLNAT with a
# pool of local addresses; otherwise NAT on the stock module.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
kernel=${DEMO_KERNEL:-6.1}
rel=$("$here/fetch.sh" | awk -v k="$kernel" '$1 == k {print $2}')
modules=stock
[ -e "$top/kmod/out/$rel/ip_vs.ko" ] && modules=ours
pl=$(mktemp -d "${TMPDIR:-/tmp}/rig-demo.XXXXXX")
trap 'rm -rf "$pl"' EXIT
mkdir -p "$pl/opt/fullnat/bin" "$pl/opt/fullnat/run"
CGO_ENABLED=0 go build -trimpath -tags urfave_cli_no_docs -o "$pl/opt/fullnat/bin/" "$top/cmd/..."
cp "$here/demo-vm.sh" "$pl/opt/fullnat/run/demo"
chmod +x "$pl/opt/fullnat/run/demo"
exec "$here/vm.sh" --kernel "$kernel" --modules "$modules" --payload "$pl" --run demo --timeout 300
