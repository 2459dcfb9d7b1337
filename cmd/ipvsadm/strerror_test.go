// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"syscall"
	"testing"
)

// TestStrerrorLaddr: the kernel's refusals of a local address read as ipvsadm messages, not as
// bare errno text.
func TestStrerrorLaddr(t *testing.T) {
	for _, tc := range []struct {
		errno syscall.Errno
		want  string
	}{
		{syscall.EADDRNOTAVAIL, "Local address is not an address of this director"},
		{syscall.EEXIST, "Local address already exists"},
		{syscall.ESRCH, "Service not defined"},
	} {
		if got := ipvsStrerror(opAddLaddr, tc.errno); got != tc.want {
			t.Errorf("ipvsStrerror(opAddLaddr, %v) = %q, want %q", tc.errno, got, tc.want)
		}
	}
	// Other operations keep libc's text for EADDRNOTAVAIL.
	if got := ipvsStrerror(opAddDest, syscall.EADDRNOTAVAIL); got != "Cannot assign requested address" {
		t.Errorf("ipvsStrerror(opAddDest, EADDRNOTAVAIL) = %q", got)
	}
}

// TestStrerrorProxyProtocol: our module's EOPNOTSUPP on a service or real server change is its
// PROXY protocol refusal; on every other operation it keeps 1.31's text.
func TestStrerrorProxyProtocol(t *testing.T) {
	for op, want := range map[int]string{
		opAddService:    proxyServiceText,
		opUpdateService: proxyServiceText,
		opAddDest:       proxyDestText,
		opUpdateDest:    proxyDestText,
		opDelService:    "Operation not supported with IPv6",
		opDelDest:       "Operation not supported with IPv6",
		opAddLaddr:      "Operation not supported with IPv6",
		opOther:         "Operation not supported with IPv6",
	} {
		if got := ipvsStrerror(op, syscall.EOPNOTSUPP); got != want {
			t.Errorf("ipvsStrerror(%d, EOPNOTSUPP) = %q, want %q", op, got, want)
		}
	}
}
