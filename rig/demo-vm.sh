#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The demo, inside the VM (see rig/demo.sh). Addresses are documentation ranges.
set -e
IP=/usr/sbin/ip
ADM=/usr/sbin/ipvsadm
[ -x /opt/fullnat/bin/ipvsadm ] && ADM=/opt/fullnat/bin/ipvsadm
VIP=203.0.113.10
PEER=/opt/fullnat/bin/lvs-peer
say() { printf '\n### %s\n' "$*"; }
# Lines "result NAME key=value ..." are what rig/demo-check.sh checks; the sentences around them
# say the same for a person.
result() { echo "result $*"; }

say "topology: client (192.0.2.2) -> director (VIP $VIP) -> rs1 198.51.100.11, rs2 198.51.100.12"
for ns in cl dr rs1 rs2; do $IP netns add $ns; $IP -n $ns link set lo up; done
$IP -n cl link add eth0 type veth peer name c0 netns dr
$IP -n cl addr add 192.0.2.2/24 dev eth0; $IP -n cl link set eth0 up
$IP -n cl route add default via 192.0.2.1
$IP -n dr addr add 192.0.2.1/24 dev c0; $IP -n dr link set c0 up
$IP -n dr link add vip0 type dummy; $IP -n dr link set vip0 up
$IP -n dr addr add $VIP/32 dev vip0
$IP -n dr link add br0 type bridge; $IP -n dr link set br0 up
$IP -n dr addr add 198.51.100.1/24 dev br0
$IP netns exec dr sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
i=1
for rs in rs1 rs2; do
	$IP -n dr link add r$i type veth peer name eth0 netns $rs
	$IP -n dr link set r$i master br0; $IP -n dr link set r$i up
	$IP -n $rs addr add 198.51.100.1$i/24 dev eth0; $IP -n $rs link set eth0 up
	$IP netns exec $rs $PEER serve --name $rs --listen 198.51.100.1$i:80 >/dev/null &
	i=$((i + 1))
done

fwd=-m
mode=NAT
modprobe ip_vs
# Our modules carry FULLNAT; our ipvsadm speaks it.
if [ "$RIG_MODULES" = ours ] && [ "$ADM" = /opt/fullnat/bin/ipvsadm ]; then
	mode=FULLNAT
fi
if [ $mode = NAT ]; then
	# NAT: the real servers route back through the director.
	for rs in rs1 rs2; do $IP -n $rs route add default via 198.51.100.1; done
fi

say "configure a $mode virtual service with $ADM"
run() { echo "# $*"; "$@"; }
run $IP netns exec dr $ADM -A -t $VIP:80 -s rr
if [ $mode = FULLNAT ]; then
	$IP -n dr addr add 198.51.100.201/24 dev br0
	$IP -n dr addr add 198.51.100.202/24 dev br0
	run $IP netns exec dr $ADM -P -t $VIP:80 -z 198.51.100.201
	run $IP netns exec dr $ADM -P -t $VIP:80 -z 198.51.100.202
	fwd=-b
fi
run $IP netns exec dr $ADM -a -t $VIP:80 -r 198.51.100.11:80 $fwd
run $IP netns exec dr $ADM -a -t $VIP:80 -r 198.51.100.12:80 $fwd

say "client: 100 connections to $VIP:80, then 1 MiB down and up, content verified"
$IP netns exec cl $PEER dial --human --tag hello --addr $VIP:80 --count 100 --parallel 4
$IP netns exec cl $PEER dial --human --tag get --addr $VIP:80 --op get --size 1048576 --count 2
$IP netns exec cl $PEER dial --human --tag put --addr $VIP:80 --op put --size 1048576 --count 2
sleep 2.5 # the kernel folds per-CPU counters into the totals every 2 s

say "ipvsadm -Ln --stats"
$IP netns exec dr $ADM -Ln --stats
result stats conns=$($IP netns exec dr $ADM -Ln --stats --exact -t $VIP:80 | awk '$1 == "TCP" { print $3 }')
if [ $mode = FULLNAT ]; then
	say "ipvsadm -G (local addresses)"
	$IP netns exec dr $ADM -G -t $VIP:80
	result laddrs mode=$mode addrs=$($IP netns exec dr $ADM -G -t $VIP:80 |
		awk 'NF == 3 && $1 ~ /^[0-9]/ { printf "%s%s", sep, $1; sep = "," }')
else
	result laddrs mode=$mode addrs=-
fi

say "what each real server saw (the client is 192.0.2.2)"
$IP netns exec cl $PEER dial --human --tag toa-off --addr $VIP:80 --count 10
if [ $mode = FULLNAT ] && modprobe toa 2>/dev/null; then
	say "with toa.ko loaded on the real servers, getpeername() returns the client from the TOA option"
	$IP netns exec cl $PEER dial --human --tag toa-on --addr $VIP:80 --count 10
	[ -r /proc/net/toa_stats ] && $IP netns exec rs1 cat /proc/net/toa_stats
fi

if [ $mode = FULLNAT ] && [ -r /proc/net/ip_vs_ext_stats ]; then
	tmp=$(mktemp -d)
	# TCP segments the real servers received and sent, summed (InSegs, OutSegs of /proc/net/snmp).
	segs() {
		for rs in rs1 rs2; do
			$IP netns exec $rs awk -v f="$1" '/^Tcp:/ { if (n++) print $f }' /proc/net/snmp
		done | awk '{ s += $1 } END { print s + 0 }'
	}
	insegs() { segs 11; }
	outsegs() { segs 12; }
	# A counter of /proc/net/ip_vs_ext_stats ("name : cpu0 cpu1 ..."), summed over CPUs.
	spcount() {
		$IP netns exec dr awk -v k="$1" '$1 == k || $1 == k ":" {
			for (i = 2; i <= NF; i++) if ($i != ":") s += $i; print s + 0 }' /proc/net/ip_vs_ext_stats
	}
	# Packets the kernel dropped before any protocol saw them (backlog full), over all CPUs.
	softdrops() {
		n=0
		while read -r _ dropped _; do n=$((n + 0x$dropped)); done < /proc/net/softnet_stat
		echo $n
	}
	# Sniffers on the real servers' interfaces: every TCP segment, its source and its TOA address.
	sniff_start() {
		for rs in rs1 rs2; do
			$IP netns exec $rs $PEER sniff --name $rs --iface eth0 --tag "$1" > "$tmp/$rs.sniff" &
			echo $! > "$tmp/$rs.pid"
		done
		for rs in rs1 rs2; do
			i=0
			while ! grep -q ready "$tmp/$rs.sniff" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		done
	}
	sniff_stop() {
		for rs in rs1 rs2; do kill -INT "$(cat "$tmp/$rs.pid")"; done
		for rs in rs1 rs2; do wait "$(cat "$tmp/$rs.pid")" || true; grep -v '^ready$' "$tmp/$rs.sniff"; done
	}
	# The director's connections to the real servers: ActiveConn and InActConn of ipvsadm (IPVS
	# counts SYN_RECV as active), and the entries of /proc/net/ip_vs_conn in SYN_RECV (half-open)
	# and ESTABLISHED.
	conns() {
		$IP netns exec dr $ADM -Ln -t $VIP:80 | awk '$1 == "->" && $2 ~ /^[0-9]/ { a += $5; i += $6 }
			END { printf "active=%d inactive=%d ", a, i }'
		$IP netns exec dr awk '/SYN_RECV/ { s++ } / ESTABLISHED / { e++ }
			END { printf "syn_recv=%d established=%d\n", s, e }' /proc/net/ip_vs_conn
	}

	say "SYNPROXY on: the director answers SYNs with cookies"
	run $IP netns exec dr $ADM -E -t $VIP:80 -s rr -j enable
	run $IP netns exec dr $ADM -Ln
	say "SYN flood with SYNPROXY: 200,000 spoofed SYNs, and 100 genuine connections meanwhile"
	s0=$(insegs)
	c0=$(spcount synproxy_syn_cnt)
	a0=$(spcount synproxy_ok_ack)
	b0=$(spcount synproxy_bad_ack)
	d0=$(softdrops)
	sniff_start synproxy-rs
	$IP netns exec cl $PEER flood --human --tag synproxy-flood --addr $VIP:80 --count 200000 > "$tmp/flood" &
	fl=$!
	# (a failure is demo-check's to report, with the counters below printed)
	$IP netns exec cl $PEER dial --human --tag synproxy-genuine --addr $VIP:80 --count 100 --parallel 4 || true
	wait $fl
	cat "$tmp/flood"
	sleep 1
	sniff_stop
	segs=$(($(insegs) - s0)) syn=$(($(spcount synproxy_syn_cnt) - c0))
	ok=$(($(spcount synproxy_ok_ack) - a0)) bad=$(($(spcount synproxy_bad_ack) - b0))
	echo "the real servers received $segs TCP segments (those of the 100 genuine connections, about 5 each)"
	echo "the director answered $syn SYNs with cookies; $ok ACKs carried a valid cookie, $bad a bad one"
	result synproxy-director syn_cnt=$syn ok_ack=$ok bad_ack=$bad rs_insegs=$segs softnet_dropped=$(($(softdrops) - d0))
	say "SYNPROXY counters (/proc/net/ip_vs_ext_stats)"
	$IP netns exec dr grep -E '^(synproxy|defence)_' /proc/net/ip_vs_ext_stats
	printf 'ip_vs_conn entries on the director: %s\n' "$($IP netns exec dr awk 'END { print NR - 1 }' /proc/net/ip_vs_conn)"

	say "the control: SYNPROXY off, 20,000 spoofed SYNs"
	run $IP netns exec dr $ADM -E -t $VIP:80 -s rr -j disable
	s0=$(insegs)
	o0=$(outsegs)
	d0=$(softdrops)
	result control-before $(conns)
	sniff_start control-rs
	$IP netns exec cl $PEER flood --human --tag control-flood --addr $VIP:80 --count 20000
	sleep 2
	sniff_stop
	segs=$(($(insegs) - s0)) out=$(($(outsegs) - o0))
	echo "the real servers received $segs TCP segments and sent $out; the spoofed SYNs became half-open connections to them"
	echo "(SYN_RECV, which IPVS counts as ActiveConn):"
	run $IP netns exec dr $ADM -Ln
	result control-director rs_insegs=$segs rs_outsegs=$out softnet_dropped=$(($(softdrops) - d0)) $(conns)
	rm -rf "$tmp"
fi
