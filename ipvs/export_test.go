// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import "github.com/mdlayher/netlink"

// FakeKernel returns the dialer of a new, empty ipvstest kernel: the
// upstream module when stock, else ours with its default features. The
// external tests set it (ipvstest_hook_test.go): ipvstest imports this
// package, so this package's own tests cannot import it. Only tests see it.
var FakeKernel func(stock bool) func() (*netlink.Conn, error)
