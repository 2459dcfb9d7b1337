// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs_test

import (
	"github.com/fullnat/fullnat/ipvs"
	"github.com/fullnat/fullnat/ipvs/ipvstest"
	"github.com/mdlayher/netlink"
)

// The package's own tests reach the fake kernel through this hook
// (export_test.go).
func init() {
	ipvs.FakeKernel = func(stock bool) func() (*netlink.Conn, error) {
		return ipvstest.New(ipvstest.Options{Stock: stock}).Dial
	}
}
