// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package dataplane benchmarks the forwarding path in the VM rig: Debian's stock ip_vs.ko doing
// NAT, ours doing NAT (our patches must cost NAT nothing) and ours doing FULLNAT, one after the
// other in the same VM. It prints connections per second and transfer rates, and the ratios to
// the stock module; it fails only when traffic fails, never on a time.
package dataplane
