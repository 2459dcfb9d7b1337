// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package dataplane benchmarks the forwarding path in the VM rig: Debian's stock ip_vs.ko doing
// NAT, ours doing NAT (our patches must cost NAT nothing), ours doing FULLNAT, with the PROXY
// protocol and with SYNPROXY, one after the other in the same VM. It prints connections per second,
// bulk rates on one connection (lvs-peer's get-raw and put-raw: bytes that cost the peers nothing,
// so that the rate is the path's), small packets per second with the VM's CPU time per small packet
// (which, unlike the rate, waits for the shared host do not move), the kernel memory a connection
// takes at a million connections, and the ratios to the stock module, with a BENCHDATA record per
// setup for out/bench/report.md (internal/benchreport); it fails only when traffic fails, never on
// a time. TestDataPlaneProfile records the whole VM with perf during bulk transfers and small
// packets through Debian's NAT, our NAT and our FULLNAT and prints what the director's parts cost.
package dataplane
