#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `make test`'s check of `make demo`: run the demo (rig/demo.sh, on our modules) and fail unless it
# showed what it claims: traffic through a FULLNAT service, the real servers seeing the client
# through TOA, a SYN flood absorbed by SYNPROXY while genuine connections go through, and the
# same flood reaching the real servers without it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp "${TMPDIR:-/tmp}/demo-check.XXXXXX")
trap 'rm -f "$log"' EXIT
"$here/demo.sh" 2>&1 | tee "$log"
fail=0
want() {
	if ! grep -qE -- "$1" "$log"; then
		echo "demo-check: the demo did not show $2 (no line matching /$1/)" >&2
		fail=1
	fi
}
want '^RIG-EXIT 0$' 'a clean exit'
want '^100 ok, 0 failed' '100 good connections'
want '^TCP  203\.0\.113\.10:80 rr$' 'the FULLNAT service'
want 'FullNat' 'FULLNAT real servers'
want 'peers it saw: 192\.0\.2\.2 \(5\)' 'the real servers seeing the client through TOA'
want '^TCP  203\.0\.113\.10:80 rr synproxy$' 'the SYNPROXY flag'
want '^sent 200000 spoofed SYN' 'the SYN flood'
# With SYNPROXY the real servers see the 100 genuine connections only (about 5 segments each);
# without it, the spoofed SYNs.
awk '/TCP segments \(those of the 100 genuine/ { n = $5; found = 1 }
	END { if (!found || n > 1000) { print "demo-check: real servers got " n " segments during the SYNPROXY flood" > "/dev/stderr"; exit 1 } }' "$log" || fail=1
# Genuine clients send no ACK with a bad cookie, not even when they close.
want 'ACKs carried a valid cookie, 0 a bad one$' 'no bad cookie from the genuine clients'
awk '/TCP segments; the spoofed SYNs/ { n = $5; found = 1 }
	END { if (!found || n < 10000) { print "demo-check: the control flood brought the real servers " n " segments" > "/dev/stderr"; exit 1 } }' "$log" || fail=1
exit $fail
