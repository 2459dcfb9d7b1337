//go:build vmtest

// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvstest_test

import (
	"net/netip"
	"testing"

	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
	"github.com/fullnat/fullnat/ipvs/ipvstest"
)

// TestVMBehaviour runs the fake's behaviour table against the rig's
// kernel (stock or our module), in a fresh namespace: what the fake
// promises, the real IPVS does.
func TestVMBehaviour(t *testing.T) {
	ns := vmnet.Add(t, "ipvstest")
	laddr := netip.MustParseAddr("192.0.2.100")
	ns.Addr(t, "lo", laddr.String()+"/32")
	c, err := ipvs.NewInNamespace("/run/netns/" + string(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ipvstest.Behaviour(t, c, laddr)
}
