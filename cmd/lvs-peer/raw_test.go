// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestRawTransfers: get-raw and put-raw move exactly the bytes asked for
// (sizes below, at and above the fixed buffer's), and a short transfer is
// an error.
func TestRawTransfers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go acceptLoop(l, "rs1", handle)
	for _, op := range []string{"get-raw", "put-raw"} {
		for _, size := range []int64{0, 1, int64(len(rawBuf)), 3*int64(len(rawBuf)) + 5} {
			_, _, n, err := once(l.Addr().String(), false, op, size, 1, 0, 10*time.Second)
			if err != nil || n != size {
				t.Errorf("%s of %d bytes: %d moved, %v", op, size, n, err)
			}
		}
	}
	// a server that stops short
	short, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	go acceptLoop(short, "rs2", func(c net.Conn, _ string) {
		defer c.Close()
		buf := make([]byte, 64)
		_, _ = c.Read(buf)
		_, _ = c.Write(rawBuf[:100])
	})
	if _, _, n, err := once(short.Addr().String(), false, "get-raw", 1000, 1, 0, 10*time.Second); err == nil || !strings.Contains(err.Error(), "100 bytes received, 1000 expected") {
		t.Errorf("get-raw cut short: %d bytes, %v", n, err)
	}
}
