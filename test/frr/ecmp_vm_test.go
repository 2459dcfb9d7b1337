// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package frr

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
)

var (
	vip  = netip.MustParseAddr("203.0.113.10")
	vip6 = netip.MustParseAddr("2001:db8:10::10")
)

// cluster is the client, the router and the directors: each director's link to the router is
// named after it on the router's side (d1, d2), so a next hop's device says which director it is.
type cluster struct {
	client, router vmnet.NS
	directors      []vmnet.NS
	frr            map[vmnet.NS]*vmnet.FRR
	confs          map[vmnet.NS]vmnet.BGPConfig
	// frrStarted is when FRR started in the router.
	frrStarted time.Time
}

// newCluster builds
//
//	client "cl" 192.0.2.2/24 2001:db8:1::2/64 ── c0 router "rt" (AS 65000) 192.0.2.1 2001:db8:1::1
//	router dN 198.51.100.(16N+1)/28 2001:db8:2:N::1/64 ── eth0 director "dN" (AS 65001) .(16N+2) ::2
//
// with the VIPs on each director's vip0 and a listener on port 80 of each VIP answering with the
// director's name; FRR runs in the router (passive sessions, maximum-paths 8) and the directors
// (announcing the VIPs), one session per family and director.
func newCluster(t *testing.T, directors int) *cluster {
	// One ip -batch per namespace and side: a process per command costs seconds under TCG.
	c := &cluster{client: vmnet.Add(t, "cl"), router: vmnet.Add(t, "rt")}
	cl, rt := c.client, c.router
	cl.IPBatch(t,
		"link add eth0 type veth peer name c0 netns rt",
		"link set eth0 up",
		"addr add 192.0.2.2/24 dev eth0",
		"addr add 2001:db8:1::2/64 dev eth0 nodad",
		"route add default via 192.0.2.1",
		"route add default via 2001:db8:1::1")
	rt.IPBatch(t,
		"link set c0 up",
		"addr add 192.0.2.1/24 dev c0",
		"addr add 2001:db8:1::1/64 dev c0 nodad")
	// Forwarding; the hash of a multipath route covers the ports (L4), so one client's
	// connections spread.
	rt.Sh(t, "cd /proc/sys/net && echo 1 > ipv4/ip_forward && echo 1 > ipv6/conf/all/forwarding && "+
		"echo 1 > ipv4/fib_multipath_hash_policy && echo 1 > ipv6/fib_multipath_hash_policy")

	router := vmnet.BGPConfig{RouterID: netip.MustParseAddr("192.0.2.1"), AS: 65000, MaximumPaths: 8}
	confs := map[vmnet.NS]vmnet.BGPConfig{}
	for i := 1; i <= directors; i++ {
		name := fmt.Sprintf("d%d", i)
		d := vmnet.Add(t, name)
		rtAddr := netip.MustParseAddr(fmt.Sprintf("198.51.100.%d", 16*i+1))
		dAddr := netip.MustParseAddr(fmt.Sprintf("198.51.100.%d", 16*i+2))
		rtAddr6 := netip.MustParseAddr(fmt.Sprintf("2001:db8:2:%d::1", i))
		dAddr6 := netip.MustParseAddr(fmt.Sprintf("2001:db8:2:%d::2", i))
		d.IPBatch(t,
			"link add eth0 type veth peer name "+name+" netns rt",
			"link set eth0 up",
			"addr add "+dAddr.String()+"/28 dev eth0",
			"addr add "+dAddr6.String()+"/64 dev eth0 nodad",
			"route add default via "+rtAddr.String(),
			"route add default via "+rtAddr6.String())
		rt.IPBatch(t,
			"link set "+name+" up",
			"addr add "+rtAddr.String()+"/28 dev "+name,
			"addr add "+rtAddr6.String()+"/64 dev "+name+" nodad")
		vmnet.AddVIPs(t, d, vip, vip6)
		vmnet.Serve(t, d, name, 80, vip, vip6)
		router.Neighbors = append(router.Neighbors,
			vmnet.BGPNeighbor{Addr: dAddr, AS: 65001, Passive: true},
			vmnet.BGPNeighbor{Addr: dAddr6, AS: 65001, Passive: true})
		confs[d] = vmnet.BGPConfig{
			RouterID: dAddr,
			AS:       65001,
			Neighbors: []vmnet.BGPNeighbor{
				{Addr: rtAddr, AS: 65000},
				{Addr: rtAddr6, AS: 65000},
			},
			Announce: []netip.Prefix{netip.PrefixFrom(vip, 32), netip.PrefixFrom(vip6, 128)},
		}
		c.directors = append(c.directors, d)
	}
	confs[rt] = router
	c.frrStarted = time.Now()
	c.confs = confs
	c.frr = vmnet.StartBGPs(t, confs)
	return c
}

// devs is the router's interfaces of the next hops, sorted: the directors they lead to.
func devs(hops []vmnet.NextHop) []string {
	var d []string
	for _, h := range hops {
		d = append(d, h.Dev)
	}
	slices.Sort(d)
	return d
}

// waitDirectors waits until the router's routes to both VIPs have a next hop through each of
// want and no other, and returns how long each family took from the call.
func (c *cluster) waitDirectors(t *testing.T, timeout time.Duration, want ...string) (took4, took6 time.Duration) {
	t.Helper()
	slices.Sort(want)
	type res struct {
		took time.Duration
		err  error
	}
	results := make([]chan res, 2)
	for i, p := range []netip.Prefix{netip.PrefixFrom(vip, 32), netip.PrefixFrom(vip6, 128)} {
		results[i] = make(chan res, 1)
		go func() {
			_, took, err := vmnet.WaitRoute(c.router, p, timeout, func(h []vmnet.NextHop) bool {
				return slices.Equal(devs(h), want)
			})
			results[i] <- res{took, err}
		}()
	}
	r4, r6 := <-results[0], <-results[1]
	for _, r := range []res{r4, r6} {
		if r.err != nil {
			t.Fatalf("the router's route through %v: %v", want, r.err)
		}
	}
	return r4.took, r6.took
}

// connect opens n connections from the client to addr:80 and returns how many each director
// answered; each connection comes from a source port of its own.
func (c *cluster) connect(t *testing.T, addr netip.Addr, n int) map[string]int {
	t.Helper()
	s := vmnet.Dial(t, c.client, "--addr", netip.AddrPortFrom(addr, 80).String(), "--count", strconv.Itoa(n), "--parallel", "4")
	if s.OK != n || len(s.Peers) != n {
		t.Fatalf("%d connections to %v: %d answered from %d client ports (%v)", n, addr, s.OK, len(s.Peers), s.Errors)
	}
	return s.Servers
}

// TestECMP: the router installs the VIPs' routes with a next hop per director; a client's
// connections spread over both directors with the L4 multipath hash (and all go to one with the
// L3 hash, IPv4, so the spreading is the hash policy's doing); a director that takes vip0 down
// loses its next hop within 5 s and new connections all go to the other; vip0 up brings it back;
// a director that goes silent loses its next hop when the router's hold timer (3 s) expires, and
// gets it back when it is heard again; one whose FRR is killed loses it at once (its kernel
// closes the sessions), and gets it back when FRR starts again.
func TestECMP(t *testing.T) {
	start := time.Now()
	c := newCluster(t, 2)
	t.Logf("namespaces, links, VIPs and listeners set up in %v; FRR started in %v",
		c.frrStarted.Sub(start).Round(time.Millisecond), time.Since(c.frrStarted).Round(time.Millisecond))
	d1 := c.directors[0]
	// The router's sessions are all there are (vtysh takes a second to start under TCG; the
	// directors' configurations are checked at cleanup).
	c.frr[c.router].WaitEstablished(t, 30*time.Second)
	established := time.Since(c.frrStarted)
	took4, took6 := c.waitDirectors(t, 30*time.Second, "d1", "d2")
	t.Logf("BGP sessions established %v after FRR started in the router; routes with 2 next hops %v later (IPv4), %v (IPv6); %v since the test began",
		established.Round(time.Millisecond), took4.Round(time.Millisecond), took6.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	for _, p := range []netip.Prefix{netip.PrefixFrom(vip, 32), netip.PrefixFrom(vip6, 128)} {
		hops, err := vmnet.RouteNextHops(c.router, p)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("router: %v %v", p, hops)
	}

	spread := func(when string) {
		t.Helper()
		for _, a := range []netip.Addr{vip, vip6} {
			got := c.connect(t, a, 32)
			if len(got) != 2 {
				t.Fatalf("%s: 32 connections to %v went to %v, want both directors", when, a, got)
			}
			t.Logf("%s: 32 connections to %v: %v", when, a, got)
		}
	}
	only := func(when, director string) {
		t.Helper()
		for _, a := range []netip.Addr{vip, vip6} {
			got := c.connect(t, a, 16)
			if want := map[string]int{director: 16}; !maps.Equal(got, want) {
				t.Fatalf("%s: 16 connections to %v went to %v, want all to %s", when, a, got, director)
			}
		}
	}

	// The L3 hash (policy 0) sends one client's IPv4 connections all one way. (IPv6's L3 hash
	// covers the flow label, which differs per connection: no such check there.)
	c.router.Sysctl(t, "net.ipv4.fib_multipath_hash_policy", "0")
	if got := c.connect(t, vip, 16); len(got) != 1 {
		t.Fatalf("with the L3 multipath hash, 16 connections from one client went to %v, want one director", got)
	}
	c.router.Sysctl(t, "net.ipv4.fib_multipath_hash_policy", "1")
	spread("both announcing")

	// Drained: FRR withdraws the VIPs, the router drops d1's next hop.
	d1.Run(t, vmnet.IP, "link", "set", "vip0", "down")
	took4, took6 = c.waitDirectors(t, 5*time.Second, "d2")
	t.Logf("d1's vip0 down: the router dropped d1's next hop in %v (IPv4), %v (IPv6)",
		took4.Round(time.Millisecond), took6.Round(time.Millisecond))
	only("d1 drained", "d2")

	d1.Run(t, vmnet.IP, "link", "set", "vip0", "up")
	took4, took6 = c.waitDirectors(t, 5*time.Second, "d1", "d2")
	t.Logf("d1's vip0 up: the router has d1's next hop back in %v (IPv4), %v (IPv6)",
		took4.Round(time.Millisecond), took6.Round(time.Millisecond))
	spread("d1 back")

	// d1 goes silent (its packets to the router are lost; a hung director, a broken link): only
	// the router's hold timer tells.
	d1.Run(t, "/usr/sbin/tc", "qdisc", "add", "dev", "eth0", "root", "netem", "loss", "100%")
	took4, took6 = c.waitDirectors(t, 10*time.Second, "d2")
	t.Logf("d1 silent: the router dropped d1's next hop in %v (IPv4), %v (IPv6) (hold time 3 s)",
		took4.Round(time.Millisecond), took6.Round(time.Millisecond))
	if took4 < 1500*time.Millisecond || took6 < 1500*time.Millisecond {
		t.Errorf("the router dropped a silent director before its hold timer (3 s) could expire")
	}
	only("d1 silent", "d2")
	d1.Run(t, "/usr/sbin/tc", "qdisc", "del", "dev", "eth0", "root")
	took4, took6 = c.waitDirectors(t, 15*time.Second, "d1", "d2")
	t.Logf("d1 heard again: the router has d1's next hop back in %v (IPv4), %v (IPv6)",
		took4.Round(time.Millisecond), took6.Round(time.Millisecond))

	// d1's FRR is killed: the kernel closes its sessions, so the router knows at once.
	c.frr[d1].Kill()
	took4, took6 = c.waitDirectors(t, 5*time.Second, "d2")
	t.Logf("d1's FRR killed: the router dropped d1's next hop in %v (IPv4), %v (IPv6)",
		took4.Round(time.Millisecond), took6.Round(time.Millisecond))
	only("d1's FRR dead", "d2")

	// FRR starts again on d1: it announces the VIPs again.
	restart := time.Now()
	c.frr[d1] = vmnet.StartBGP(t, d1, c.confs[d1])
	c.waitDirectors(t, 30*time.Second, "d1", "d2")
	t.Logf("d1's FRR restarted: the router has d1's next hop back %v later", time.Since(restart).Round(time.Millisecond))
	spread("d1's FRR back")
}
