// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package fullnat

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
	"golang.org/x/sys/unix"
)

// TestFullNATMethodEdit: a real server's forwarding method is switched between NAT and FULLNAT
// over and over while clients connect. Every connection succeeds and goes one way or the other
// whole: the real server sees either the client (NAT) or a local address (FULLNAT), and both are
// used. Every FULLNAT connection in the table has a local address, the local addresses count
// exactly those connections, and after the flush the module unloads with no connection object
// left (the rig fails the run on "Slab cache still has objects" and on any KASAN report).
//
// The kernel reads the method twice when it makes a connection: once to choose the slab cache
// (only FULLNAT connections carry the FULLNAT state) and once in upstream's ip_vs_bind_dest. A
// connection that the second read makes FULLNAT without the state is refused, and the client's
// retransmitted SYN gets a new one.
func TestFullNATMethodEdit(t *testing.T) {
	const conns = 300
	f := newFixtureWith(t, vmnet.Options{Servers: 1, RouteBack: true})
	d, rs := f.tp.Director, f.tp.ServerAddrs[0]
	f.fullnatService(t, unix.IPPROTO_TCP, f.tp.VIP, f.tp.ServerAddrs, f.laddrs)
	c, err := ipvs.NewInNamespace("/run/netns/" + string(d))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	svc := ipvs.Service{Family: ipvs.INET, Protocol: ipvs.TCP, Address: f.tp.VIP, Port: 80}
	dst := ipvs.Destination{Family: ipvs.INET, Address: rs, Port: 80, Weight: 1}

	ctx, cancel := context.WithCancel(t.Context())
	type result struct {
		flips int
		err   error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		methods := []ipvs.ForwardMethod{ipvs.Masquerade, ipvs.FullNAT}
		for ctx.Err() == nil {
			dst.ForwardMethod = methods[r.flips%2]
			if err := c.UpdateDestination(context.Background(), svc, dst); err != nil {
				r.err = err
				break
			}
			r.flips++
		}
		done <- r
	}()
	sum, out, err := vmnet.TryDial(f.tp.Client, "--addr", netip.AddrPortFrom(f.tp.VIP, 80).String(),
		"--count", strconv.Itoa(conns), "--parallel", "6")
	cancel()
	r := <-done
	if r.err != nil {
		t.Fatalf("switching the forwarding method (after %d switches): %v", r.flips, r.err)
	}
	t.Logf("%d switches of the forwarding method during %d connections in %d ms", r.flips, conns, sum.ElapsedMS)
	if err != nil || sum.OK != conns {
		t.Fatalf("%d of %d connections while the forwarding method changed: %v\n%s", sum.OK, conns, err, out)
	}
	if r.flips < 10 {
		t.Fatalf("only %d switches of the forwarding method during the connections", r.flips)
	}

	// The real server saw the client (NAT) or a local address (FULLNAT), nothing else.
	var nat, fnat int
	for peer, n := range sum.Seen["rs1"] {
		a, err := netip.ParseAddr(peer)
		switch {
		case err != nil:
			t.Fatalf("the real server saw peer %q", peer)
		case a == f.tp.ClientAddr:
			nat += n
		case a == f.laddrs[0] || a == f.laddrs[1]:
			fnat += n
		default:
			t.Errorf("the real server saw %d connections from %s, neither the client nor a local address", n, a)
		}
	}
	t.Logf("%d connections went NAT, %d FULLNAT", nat, fnat)
	if nat == 0 || fnat == 0 || nat+fnat != conns {
		t.Errorf("NAT %d + FULLNAT %d connections, want both used and %d in all (seen: %v)", nat, fnat, conns, sum.Seen)
	}

	// The table: each FULLNAT connection has its local address, and the local addresses count
	// exactly those. Connections may expire between the reads: take a pair of equal counts.
	laddrConns := func() int {
		las, err := c.LocalAddresses(t.Context(), svc)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, la := range las {
			n += int(la.Connections)
		}
		return n
	}
	for try := 0; ; try++ {
		before := laddrConns()
		bound, fullnat := 0, 0
		for cn, err := range c.ServiceConnections(t.Context(), svc) {
			if err != nil {
				t.Fatal(err)
			}
			if cn.Flags.ForwardMethod() == ipvs.FullNAT {
				fullnat++
				if !cn.Local.IsValid() {
					t.Errorf("FULLNAT connection %v -> %v has no local address", cn.Client, cn.Destination)
				}
			}
			if cn.Local.IsValid() {
				bound++
				if cn.Flags.ForwardMethod() != ipvs.FullNAT {
					t.Errorf("%v connection %v -> %v holds local port %v", cn.Flags.ForwardMethod(), cn.Client, cn.Destination, cn.Local)
				}
			}
		}
		after := laddrConns()
		if before == after && bound == after {
			t.Logf("%d connections with a local port, %d FULLNAT", bound, fullnat)
			break
		}
		if try == 4 {
			t.Fatalf("the local addresses count %d then %d connections, the table has %d with a local port", before, after, bound)
		}
		time.Sleep(100 * time.Millisecond)
	}

	if err := c.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	unloadIPVS(t)
}
