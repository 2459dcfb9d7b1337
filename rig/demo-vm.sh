#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The demo, inside the VM (see rig/demo.sh). Addresses are documentation ranges.
set -e
IP=/usr/sbin/ip
ADM=/usr/sbin/ipvsadm
[ -x /opt/fullnat/bin/ipvsadm ] && ADM=/opt/fullnat/bin/ipvsadm
VIP=203.0.113.10
say() { printf '\n### %s\n' "$*"; }

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
	$IP netns exec $rs /opt/fullnat/bin/lvs-peer serve --name $rs --listen 198.51.100.1$i:80 >/dev/null &
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
$IP netns exec cl /opt/fullnat/bin/lvs-peer dial --human --addr $VIP:80 --count 100 --parallel 4
$IP netns exec cl /opt/fullnat/bin/lvs-peer dial --human --addr $VIP:80 --op get --size 1048576 --count 2
$IP netns exec cl /opt/fullnat/bin/lvs-peer dial --human --addr $VIP:80 --op put --size 1048576 --count 2
sleep 2.5 # the kernel folds per-CPU counters into the totals every 2 s

say "ipvsadm -Ln --stats"
$IP netns exec dr $ADM -Ln --stats
[ $mode = FULLNAT ] && { say "ipvsadm -G (local addresses)"; $IP netns exec dr $ADM -G -t $VIP:80; }

say "what each real server saw (the client is 192.0.2.2)"
$IP netns exec cl /opt/fullnat/bin/lvs-peer dial --human --addr $VIP:80 --count 10
if [ $mode = FULLNAT ] && modprobe toa 2>/dev/null; then
	say "with toa.ko loaded on the real servers, getpeername() returns the client from the TOA option"
	$IP netns exec cl /opt/fullnat/bin/lvs-peer dial --human --addr $VIP:80 --count 10
	[ -r /proc/net/toa_stats ] && $IP netns exec rs1 cat /proc/net/toa_stats
fi

if [ $mode = FULLNAT ] && [ -r /proc/net/ip_vs_ext_stats ]; then
	PEER=/opt/fullnat/bin/lvs-peer
	# TCP segments the real servers received, summed (InSegs of /proc/net/snmp).
	insegs() {
		for rs in rs1 rs2; do
			$IP netns exec $rs awk '/^Tcp:/ { if (n++) print $11 }' /proc/net/snmp
		done | awk '{ s += $1 } END { print s }'
	}
	# A counter of /proc/net/ip_vs_ext_stats ("name : cpu0 cpu1 ..."), summed over CPUs.
	spcount() {
		$IP netns exec dr awk -v k="$1" '$1 == k || $1 == k ":" {
			for (i = 2; i <= NF; i++) if ($i != ":") s += $i; print s + 0 }' /proc/net/ip_vs_ext_stats
	}

	say "SYNPROXY on: the director answers SYNs with cookies"
	run $IP netns exec dr $ADM -E -t $VIP:80 -s rr -j enable
	run $IP netns exec dr $ADM -Ln
	say "SYN flood with SYNPROXY: 200,000 spoofed SYNs, and 100 genuine connections meanwhile"
	s0=$(insegs)
	c0=$(spcount synproxy_syn_cnt)
	a0=$(spcount synproxy_ok_ack)
	b0=$(spcount synproxy_bad_ack)
	$IP netns exec cl $PEER flood --human --addr $VIP:80 --count 200000 &
	fl=$!
	$IP netns exec cl $PEER dial --human --addr $VIP:80 --count 100 --parallel 4
	wait $fl
	sleep 1
	echo "the real servers received $(($(insegs) - s0)) TCP segments (those of the 100 genuine connections, about 5 each)"
	echo "the director answered $(($(spcount synproxy_syn_cnt) - c0)) SYNs with cookies;" \
		"$(($(spcount synproxy_ok_ack) - a0)) ACKs carried a valid cookie," \
		"$(($(spcount synproxy_bad_ack) - b0)) a bad one"
	say "SYNPROXY counters (/proc/net/ip_vs_ext_stats)"
	$IP netns exec dr grep -E '^(synproxy|defence)_' /proc/net/ip_vs_ext_stats
	printf 'ip_vs_conn entries on the director: %s\n' "$($IP netns exec dr awk 'END { print NR - 1 }' /proc/net/ip_vs_conn)"

	say "the control: SYNPROXY off, 20,000 spoofed SYNs"
	run $IP netns exec dr $ADM -E -t $VIP:80 -s rr -j disable
	s0=$(insegs)
	$IP netns exec cl $PEER flood --human --addr $VIP:80 --count 20000
	sleep 1
	echo "the real servers received $(($(insegs) - s0)) TCP segments; the spoofed SYNs became connections to them:"
	run $IP netns exec dr $ADM -Ln
fi
