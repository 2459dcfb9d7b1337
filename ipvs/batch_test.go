// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func batchClient(t *testing.T, errnoOf func(i int, req genlReq) unix.Errno) (*Client, *batchSocket) {
	t.Helper()
	s := &batchSocket{t: t, errnoOf: func(i int, req genlReq) unix.Errno {
		if req.cmd == cmdGetInfo {
			return 0
		}
		if errnoOf == nil {
			return 0
		}
		return errnoOf(i, req)
	}}
	c, err := newClient(netlink.NewConn(s, 1))
	if err != nil {
		t.Fatal(err)
	}
	c.featKnown = true // GET_INFO is exercised elsewhere; acks only here
	return c, s
}

func bigBatch(services, dests int) *Batch {
	var b Batch
	for i := range services {
		svc := Service{Protocol: TCP, Address: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), Port: 80, Scheduler: "rr"}
		b.CreateService(svc)
		for j := range dests {
			b.CreateDestination(svc, Destination{Address: netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), Port: uint16(8000 + j), Weight: 1})
		}
	}
	return &b
}

func TestApply(t *testing.T) {
	c, s := batchClient(t, nil)
	b := bigBatch(100, 5)
	if err := c.Apply(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if len(s.handled) != 600 {
		t.Fatalf("kernel handled %d requests, want 600", len(s.handled))
	}
	// requests arrive in order, with the right commands
	for i, req := range s.handled {
		want := uint8(cmdNewDest)
		if i%6 == 0 {
			want = cmdNewService
		}
		// only the last request of a window asks for an ack
		wantFlags := netlink.Request
		if (i+1)%window == 0 || i == 599 {
			wantFlags = ack
		}
		if req.cmd != want || req.flags != wantFlags {
			t.Fatalf("request %d: cmd %d flags %v, want cmd %d flags %v", i, req.cmd, req.flags, want, wantFlags)
		}
	}
	// pipelined: far fewer sendmsg calls than requests (one per window,
	// plus the family lookup)
	if want := 1 + (600+window-1)/window; s.sends != want {
		t.Errorf("%d sendmsg calls, want %d", s.sends, want)
	}
	checkAttrs(t, s.handled[1].attrs, map[string][]byte{
		"1/": nil, "1/1": le16(2), "1/2": le16(6), "1/3": ip("198.18.0.0"), "1/4": bebytes16(80),
		"2/": nil, "2/1": ip("198.19.0.0"), "2/2": bebytes16(8000), "2/11": le16(2), "2/3": le32(0), "2/4": le32(1),
		"2/5": le32(0), "2/6": le32(0), "2/13": {0}, "2/14": bebytes16(0), "2/15": le16(0),
	})
}

func TestApplyErrors(t *testing.T) {
	failing := map[int]unix.Errno{3: unix.EEXIST, window - 1: unix.ENOENT, 200: unix.ESRCH, 599: unix.EINVAL}
	c, s := batchClient(t, func(i int, req genlReq) unix.Errno { return failing[i] })
	b := bigBatch(100, 5)
	err := c.Apply(t.Context(), b)
	var be *BatchError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want *BatchError", err)
	}
	if len(s.handled) != 600 {
		t.Errorf("kernel handled %d requests, want all 600 (failures are independent)", len(s.handled))
	}
	if len(be.Failed) != 4 {
		t.Fatalf("%d failures, want 4: %v", len(be.Failed), err)
	}
	for k, idx := range []int{3, window - 1, 200, 599} {
		f := be.Failed[k]
		if f.Index != idx || !errors.Is(f, failing[idx]) {
			t.Errorf("failure %d = %v, want index %d errno %v", k, f, idx, failing[idx])
		}
		if f.Op.Kind != b.Ops[idx].Kind || f.Op.Destination != b.Ops[idx].Destination {
			t.Errorf("failure %d carries op %+v, want %+v", k, f.Op, b.Ops[idx])
		}
	}
	if !errors.Is(err, os.ErrExist) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("errors.Is does not see the individual failures: %v", err)
	}
	want := fmt.Sprintf("operation 3: ipvs: create destination %s of %s: %v", b.Ops[3].Destination, b.Ops[3].Service, unix.EEXIST)
	if be.Failed[0].Error() != want {
		t.Errorf("message %q, want %q", be.Failed[0].Error(), want)
	}
}

func TestApplyStopOnError(t *testing.T) {
	c, s := batchClient(t, func(i int, req genlReq) unix.Errno {
		if i == 10 {
			return unix.EEXIST
		}
		return 0
	})
	b := bigBatch(100, 5)
	b.StopOnError = true
	err := c.Apply(t.Context(), b)
	var be *BatchError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want *BatchError", err)
	}
	if len(s.handled) != window {
		t.Errorf("kernel handled %d requests, want one window (%d)", len(s.handled), window)
	}
	if be.Failed[0].Index != 10 || !errors.Is(be.Failed[0], os.ErrExist) {
		t.Errorf("first failure %v, want index 10 EEXIST", be.Failed[0])
	}
	if n := len(be.Failed); n != 1+600-window {
		t.Errorf("%d failures, want %d", n, 1+600-window)
	}
	for _, f := range be.Failed[1:] {
		if !errors.Is(f, ErrNotAttempted) || f.Index < window {
			t.Fatalf("failure %v: want ErrNotAttempted beyond the first window", f)
		}
	}
}

func TestApplyEmpty(t *testing.T) {
	c, s := batchClient(t, nil)
	if err := c.Apply(t.Context(), &Batch{}); err != nil {
		t.Fatal(err)
	}
	if len(s.handled) != 0 {
		t.Errorf("empty batch sent %d requests", len(s.handled))
	}
}

func BenchmarkEncodeBatch(b *testing.B) {
	batch := bigBatch(2000, 5)
	c := &Client{featKnown: true}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.encodeBatch(b.Context(), batch.Ops); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyFake(b *testing.B) {
	batch := bigBatch(2000, 5)
	s := &batchSocket{t: b}
	c, err := newClient(netlink.NewConn(s, 1))
	if err != nil {
		b.Fatal(err)
	}
	c.featKnown = true
	b.ReportAllocs()
	for b.Loop() {
		s.handled = s.handled[:0]
		if err := c.Apply(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
}
