// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package cluster holds the VM tests of a cluster of directors that loses no connection
// (issue 16, kmod/CLUSTER.md): long transfers through director A, A dies, the router moves
// the VIP's route to director B, which holds the connections it learned through IPVS
// connection sync and carries every transfer to its end; then A comes back, learns the
// current connections from B, and takes them back.
//
// The topology, all in network namespaces of the VM, dual-stack (documentation and benchmark
// addresses; IPv6 in brackets):
//
//	client "cl"  192.0.2.2 [2001:db8:1::2] ── router "rt" 192.0.2.1 [2001:db8:1::1]
//	  ├─ 198.18.1.1 [2001:db8:11::1] ── 198.18.1.2 [2001:db8:11::2] director A "da"
//	  └─ 198.18.2.1 [2001:db8:12::1] ── 198.18.2.2 [2001:db8:12::2] director B "db"
//	the router's route to the VIPs goes via A (what a BGP session with A installs)
//	directors: VIPs 203.0.113.10/32 [2001:db8:10::10/128] on dummy vip0; rs0 on bridge br-rs of
//	  "sw" (A .2 [::2], B .3 [::3] of 198.51.100.0/24 [2001:db8:2::/64]); sync0 on bridge
//	  br-sync of "sw" (A 198.18.3.2, B 198.18.3.3), the sync daemons' --mcast-interface; each
//	  runs a master and a backup daemon, syncid 1
//	real servers "rs1", "rs2": 198.51.100.11, .12 [2001:db8:2::11, ::12] on br-rs
//
// NAT: the real servers' default gateway is 198.51.100.1 [2001:db8:2::1], held by A, taken by B
// at the failover with gratuitous ARP [an unsolicited neighbour advertisement] (what
// keepalived's VRRP will do). FULLNAT: A's local address is 198.51.100.101 [2001:db8:2::101],
// B's .102 [::102]; B takes A's at the failover (CLUSTER.md: local addresses move with their
// director); the real servers have no route to the client.
//
// A dies as a box does: its links go down at once; once B has taken over, its veths and its
// namespace are deleted, so that it rejoins empty, as after a reboot: backup daemon first, and
// it takes the traffic back only once it lists every live connection of B.
//
// TestECMPFailover (FULLNAT; NAT cannot be active-active, the real servers' replies go to one
// gateway) has no static route: the router (AS 65000, maximum-paths 2, L4 multipath hash) and
// both directors (AS 65001, announcing the VIPs of vip0) run FRR's bgpd, so the transfers spread
// over A and B; the router withdraws A's next hop itself when A dies; the rejoining A learns
// B's whole table (B writes net.ipv4.vs.fullnat_sync_resend) before its master daemon and its
// FRR start, and takes its local address back once the router has its next hop again.
//
// TestFailover/FULLNAT requires the module's feature bit ipvs.FeatureSyncFullNAT and fails,
// never skips, on a module without it. TestFailoverWithoutSync
// is the control: without a backup daemon on B every transfer is lost, so the count that
// TestFailover wants at zero is real.
//
// The tests are tagged vmtest and run in the rig with our modules (vmtest.conf), which FULLNAT
// needs; the NAT case uses nothing of ours that upstream lacks (upstream syncs NAT), but its
// point here is our module's sync, so it does not run on stock modules.
package cluster
