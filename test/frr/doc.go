// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package frr proves the rig's FRR (Debian's frr: zebra and bgpd, run by internal/vmnet) puts
// ECMP in front of a cluster of directors as kmod/CLUSTER.md designs it: two director namespaces
// announce the VIPs on their vip0 over BGP, a router namespace installs one route per VIP with a
// next hop per director and spreads a client's connections over both; a director that takes vip0
// down (drained, or its health check failed) loses its next hop within a bounded time and gets it
// back when vip0 comes up; one that goes silent loses it when the router's hold timer expires,
// one whose FRR is killed at once.
// It needs no IPVS: run it with rig/vmtest.sh --modules stock ./test/frr.
package frr
