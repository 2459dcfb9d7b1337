#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `make test`'s check of `make demo`: run the demo (rig/demo.sh, on our modules) and fail unless it
# showed each thing README.md ("What make demo shows") says it shows. The demo prints, next to its
# sentences, lines "result NAME key=value ..." (rig/demo-vm.sh); this reads those. With a log file
# as argument it checks that log instead of running the demo.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ge 1 ]; then
	log=$1
else
	log=$(mktemp "${TMPDIR:-/tmp}/demo-check.XXXXXX")
	trap 'rm -f "$log"' EXIT
	"$here/demo.sh" 2>&1 | tee "$log"
fi
fail=0
want() {
	if ! grep -qE -- "$1" "$log"; then
		echo "demo-check: the demo did not show $2 (no line matching /$1/)" >&2
		fail=1
	fi
}
want '^RIG-EXIT 0$' 'a clean exit'
want '^TCP  203\.0\.113\.10:80 rr$' 'the FULLNAT service'
want '^  -> 198\.51\.100\.11:80 +FullNat ' 'rs1 as a FULLNAT real server'
want '^  -> 198\.51\.100\.12:80 +FullNat ' 'rs2 as a FULLNAT real server'
want '^TCP  203\.0\.113\.10:80 rr synproxy$' 'the SYNPROXY flag'

# The result lines, one claim each. r(NAME, KEY) is the value of KEY on the line of NAME;
# s(NAME, SERVER, KEY) the one on the line of NAME for SERVER.
tr -d '\r' < "$log" | awk '
# Numbers come back as numbers (awk compares strings as strings), anything else as it is.
function num(v) { return v ~ /^-?[0-9]+$/ ? v + 0 : v }
function r(n, k) { return (n SUBSEP k) in R ? num(R[n, k]) : "" }
function s(n, srv, k) { return (n SUBSEP srv SUBSEP k) in S ? num(S[n, srv, k]) : "" }
function claim(ok, what, got) {
	if (ok) { print "demo-check: ok: " what; return }
	print "demo-check: FAILED: " what " (" got ")" > "/dev/stderr"; bad = 1
}
# peers(list, allowed): every ADDR(N) of list has an address in allowed (space separated), and
# the counts add up to the returned sum; -1 when an address is not allowed or the list is empty.
function peers(list, allowed,   n, i, a, m, p, sum) {
	if (list == "" || list == "-") return -1
	n = split(list, a, ",")
	for (i = 1; i <= n; i++) {
		if (!match(a[i], /^[^(]+\(/)) return -1
		p = substr(a[i], 1, RLENGTH - 1)
		m = substr(a[i], RLENGTH + 1); sub(/\)$/, "", m)
		if (index(" " allowed " ", " " p " ") == 0) return -1
		sum += m
	}
	return sum
}
$1 == "result" {
	name = $2; srv = ""
	for (i = 3; i <= NF; i++) if ($i ~ /^server=/) srv = substr($i, 8)
	for (i = 3; i <= NF; i++) {
		k = $i; v = $i; sub(/=.*/, "", k); sub(/^[^=]*=/, "", v)
		if (srv != "") S[name, srv, k] = v; else R[name, k] = v
	}
	if (srv != "") SRV[name] = SRV[name] " " srv
	seen[name] = 1
}
END {
	LA = "198.51.100.201 198.51.100.202"
	CL = "192.0.2.2"
	claim(r("hello", "ok") == 100 && r("hello", "failed") == 0,
		"the client made 100 connections", "ok=" r("hello", "ok") " failed=" r("hello", "failed"))
	claim(r("get", "ok") == 2 && r("get", "failed") == 0 && r("get", "bytes") == 2 * 1048576,
		"1 MiB down, twice, content verified", "ok=" r("get", "ok") " bytes=" r("get", "bytes"))
	claim(r("put", "ok") == 2 && r("put", "failed") == 0 && r("put", "bytes") == 2 * 1048576,
		"1 MiB up, twice, content verified", "ok=" r("put", "ok") " bytes=" r("put", "bytes"))
	claim(r("stats", "conns") >= 104, "ipvsadm --stats counted the 104 connections",
		"conns=" r("stats", "conns"))
	claim(r("laddrs", "mode") == "FULLNAT" && r("laddrs", "addrs") == "198.51.100.201,198.51.100.202",
		"ipvsadm -G showed the two local addresses", "mode=" r("laddrs", "mode") " addrs=" r("laddrs", "addrs"))
	for (phase = 0; phase < 2; phase++) {
		n = phase ? "toa-on" : "toa-off"
		allowed = phase ? CL : LA
		what = phase ? "with toa.ko, each real server saw the client 192.0.2.2 only" : \
			"before toa.ko, each real server saw the local addresses only"
		total = 0; ok = r(n, "ok") == 10 && r(n, "servers") == 2
		got = "ok=" r(n, "ok") " servers=" r(n, "servers")
		for (i = 1; i <= 2; i++) {
			v = peers(s(n, "rs" i, "peers"), allowed)
			got = got " rs" i "=" s(n, "rs" i, "peers")
			if (v <= 0 || v != s(n, "rs" i, "answered")) ok = 0
			total += v
		}
		claim(ok && total == 10, what, got)
	}
	sent = r("synproxy-flood", "sent"); gen = r("synproxy-genuine", "ok")
	claim(sent == 200000, "200,000 spoofed SYNs sent with SYNPROXY on", "sent=" sent)
	claim(gen == 100 && r("synproxy-genuine", "failed") == 0, "100 genuine connections during the flood",
		"ok=" gen " failed=" r("synproxy-genuine", "failed"))
	syn = r("synproxy-director", "syn_cnt")
	claim(syn != "" && syn >= sent, "the director answered every spoofed SYN with a cookie (synproxy_syn_cnt grew by >= the flood)",
		"synproxy_syn_cnt +" syn " for " sent " SYNs; softnet drops +" r("synproxy-director", "softnet_dropped"))
	claim(r("synproxy-director", "ok_ack") == gen && gen != "",
		"exactly the genuine ACKs carried a valid cookie (synproxy_ok_ack == genuine connections)",
		"synproxy_ok_ack +" r("synproxy-director", "ok_ack") " for " gen " connections")
	claim(r("synproxy-director", "bad_ack") == "0", "no ACK with a bad cookie (synproxy_bad_ack +0)",
		"synproxy_bad_ack +" r("synproxy-director", "bad_ack"))
	ok = 1; got = ""; syns = 0
	for (i = 1; i <= 2; i++) {
		srv = "rs" i
		got = got " " srv ": tcp=" s("synproxy-rs", srv, "tcp") " syn=" s("synproxy-rs", srv, "syn") \
			" spoofed=" s("synproxy-rs", srv, "spoofed") " sources=" s("synproxy-rs", srv, "sources") \
			" toa=" s("synproxy-rs", srv, "toa")
		if (s("synproxy-rs", srv, "tcp") == "" || s("synproxy-rs", srv, "spoofed") != 0) ok = 0
		if (peers(s("synproxy-rs", srv, "sources"), LA) < 0 || peers(s("synproxy-rs", srv, "toa"), CL) < 0) ok = 0
		syns += s("synproxy-rs", srv, "syn")
	}
	claim(ok, "no spoofed address reached a real server during the SYNPROXY flood (every segment from a local address, every TOA the client)", got)
	claim(syns == gen, "the real servers got one SYN per genuine connection and no other", "SYNs " syns " for " gen " connections")
	csent = r("control-flood", "sent")
	claim(csent == 20000, "20,000 spoofed SYNs sent with SYNPROXY off", "sent=" csent)
	spsyn = 0; spother = 0; got = ""
	for (i = 1; i <= 2; i++) {
		srv = "rs" i
		spsyn += s("control-rs", srv, "spoofed_syn")
		spother += s("control-rs", srv, "spoofed") - s("control-rs", srv, "spoofed_syn")
		got = got " " srv ": spoofed=" s("control-rs", srv, "spoofed") " spoofed_syn=" s("control-rs", srv, "spoofed_syn") \
			" toa_addrs=" s("control-rs", srv, "toa_addrs")
	}
	# A fast flood loses some SYNs in the VM before IPVS sees them (softnet_dropped says how many).
	claim(spsyn >= csent / 2 && s("control-rs", "rs1", "spoofed_syn") > 0 && s("control-rs", "rs2", "spoofed_syn") > 0,
		"without SYNPROXY the spoofed SYNs reached both real servers", got " softnet drops +" r("control-director", "softnet_dropped"))
	claim(spother == 0 && r("control-director", "rs_outsegs") >= spsyn,
		"the real servers answered them and no handshake completed (half-open)",
		"spoofed non-SYN segments " spother ", rs_outsegs " r("control-director", "rs_outsegs") " for " spsyn " SYNs")
	half = r("control-director", "syn_recv") - r("control-before", "syn_recv")
	act = r("control-director", "active") - r("control-before", "active")
	claim(half >= spsyn && act >= half && r("control-director", "established") == r("control-before", "established"),
		"the director holds them as half-open (SYN_RECV) connections to the real servers, none established",
		"SYN_RECV +" half ", ActiveConn +" act ", ESTABLISHED " r("control-before", "established") " -> " r("control-director", "established") " for " spsyn " SYNs")
	exit bad
}' || fail=1
exit $fail
