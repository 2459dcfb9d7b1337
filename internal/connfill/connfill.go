// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package connfill fills a director's IPVS connection table for the benchmarks: spoofed ACKs
// from the flood tool, one source each, open one connection each when the director has
// net.ipv4.vs.sloppy_tcp set (an ESTABLISHED connection, 15 minutes by default), with no
// handshake. The real server should be a blackhole route on the director, so that nothing
// answers.
package connfill

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/flood"
	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
)

// Fill floods ACKs to vip from client with sources from..to-1 and waits until svc has counted
// to connections in all (its Connections counter), or until the count stops within 1% of that
// (an ACK may be dropped on the way), and returns the count. It fails t when the flood fails or
// when the count stops short of that.
func Fill(t *testing.T, c *ipvs.Client, client vmnet.NS, vip netip.AddrPort, svc ipvs.Service, from, to int) int {
	t.Helper()
	start := time.Now()
	var r flood.Result
	err := vmnet.InNetns(string(client), func() (err error) {
		r, err = flood.Run(flood.Config{Target: vip, Flags: flood.ACK,
			First: from, Count: to - from, Workers: 2, Limit: 5 * time.Minute})
		return err
	})
	if err != nil {
		t.Fatalf("flood: %v", err)
	}
	out := fmt.Sprintf("%d ACKs in %v", r.Sent, r.Elapsed.Round(time.Millisecond))
	last, stable := -1, 0
	for time.Since(start) < 6*time.Minute {
		s, err := c.Service(t.Context(), svc)
		if err != nil {
			t.Fatal(err)
		}
		n := int(s.Stats64.Connections)
		if n >= to {
			fmt.Printf("BENCH conns: %s, %d connections after %v\n", out, n, time.Since(start).Round(time.Millisecond))
			return n
		}
		if n == last {
			if stable++; stable == 10 {
				// a few ACKs may be dropped on the way (a full backlog)
				if n-from >= (to-from)*99/100 {
					fmt.Printf("BENCH conns: %s, %d connections after %v (%d ACKs lost)\n", out, n, time.Since(start).Round(time.Millisecond), to-n)
					return n
				}
				t.Fatalf("the flood (%s) made %d connections of %d", out, n, to)
			}
		} else {
			last, stable = n, 0
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("connections not counted after 6 minutes")
	return 0
}

// Handshakes opens SYNPROXY connections to svc, a SYNPROXY service at vip, until its one real
// server has want ESTABLISHED (active) connections. Plain SYN floods from client, 100,000 at a
// time from new sources, meet flood.Answer on both sides: on client's interface clientIf it
// answers the director's cookies with the handshake's ACK, on server's serverIf the director's
// SYNs to the real server with SYN-ACKs. The real server's address must lead to server's
// interface (a static neighbour on the director) and belong to no one there, so that no TCP
// stack answers. It returns the number of ESTABLISHED connections (want or a few more), and
// fails t when a round of SYNs adds almost no connection.
func Handshakes(t *testing.T, c *ipvs.Client, client vmnet.NS, clientIf string, server vmnet.NS, serverIf string,
	vip netip.AddrPort, svc ipvs.Service, want int) int {
	t.Helper()
	stop := make(chan struct{})
	answered := make([]flood.Answered, 2)
	errs := make(chan error, 2)
	for i, side := range []struct {
		ns     vmnet.NS
		ifname string
	}{{client, clientIf}, {server, serverIf}} {
		go func() {
			errs <- vmnet.InNetns(string(side.ns), func() (err error) {
				answered[i], err = flood.Answer(side.ifname, stop)
				return err
			})
		}()
	}
	defer func() {
		close(stop)
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("answer: %v", err)
			}
		}
		fmt.Printf("BENCH conns: answered %d cookies and %d SYNs to the real server\n", answered[0].SYNACKs, answered[1].SYNs)
	}()
	active := func() int {
		ds, err := c.Destinations(t.Context(), svc)
		if err != nil || len(ds) != 1 {
			t.Fatalf("destinations: %v, %v", ds, err)
		}
		return int(ds[0].ActiveConns)
	}
	start, sent, have := time.Now(), 0, active()
	for have < want {
		n := min(100_000, (want-have)*11/10+100)
		err := vmnet.InNetns(string(client), func() error {
			_, err := flood.Run(flood.Config{Target: vip, Flags: flood.SYN, Plain: true, First: sent, Count: n, Limit: 5 * time.Minute})
			return err
		})
		if err != nil {
			t.Fatalf("flood: %v", err)
		}
		sent += n
		before := have
		for last, stable := -1, 0; stable < 5; time.Sleep(400 * time.Millisecond) {
			if have = active(); have == last {
				stable++
			} else {
				last, stable = have, 0
			}
		}
		if have-before < n/20 {
			t.Fatalf("%d SYNs made %d connections (%d in all)", n, have-before, have)
		}
	}
	fmt.Printf("BENCH conns: %d SYNs, %d connections established after %v\n", sent, have, time.Since(start).Round(time.Millisecond))
	return have
}
