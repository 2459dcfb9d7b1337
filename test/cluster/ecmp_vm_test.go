// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package cluster

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
)

// AS numbers of the ECMP cluster: the router's, and the directors' (one AS for both; the
// router's bestpath as-path multipath-relax would take two as well).
const (
	asRouter    = 65000
	asDirectors = 65001
)

// routerBGP is the router's BGP configuration: a passive session per director and family,
// two next hops per route.
func (c *cluster) routerBGP() vmnet.BGPConfig {
	conf := vmnet.BGPConfig{RouterID: v4.clientGW, AS: asRouter, MaximumPaths: 2}
	for _, d := range []*director{c.a, c.b} {
		for _, f := range families {
			conf.Neighbors = append(conf.Neighbors, vmnet.BGPNeighbor{Addr: c.uplink(d, f), AS: asDirectors, Passive: true})
		}
	}
	return conf
}

// directorBGP is d's BGP configuration: a session per family with the router, announcing the
// VIPs (host routes of the addresses on d's vip0).
func (c *cluster) directorBGP(d *director) vmnet.BGPConfig {
	conf := vmnet.BGPConfig{RouterID: c.uplink(d, v4), AS: asDirectors}
	for _, f := range families {
		conf.Neighbors = append(conf.Neighbors, vmnet.BGPNeighbor{Addr: nth(c.link(d, f), 1), AS: asRouter})
		conf.Announce = append(conf.Announce, netip.PrefixFrom(f.vip, f.vip.BitLen()))
	}
	return conf
}

// nextHops waits until the router's routes to both VIPs have exactly one next hop through each
// of ds (the router's ports to their current incarnations) and no other, and returns per
// family how long after since each was first seen so; after timeout, an error naming what the
// router has.
func (c *cluster) nextHops(since time.Time, timeout time.Duration, ds ...*director) ([]time.Duration, error) {
	var want []string
	for _, d := range ds {
		want = append(want, "t"+d.tag())
	}
	slices.Sort(want)
	type res struct {
		took time.Duration
		err  error
	}
	chans := make([]chan res, len(families))
	for i, f := range families {
		chans[i] = make(chan res, 1)
		go func() {
			_, _, err := vmnet.WaitRoute(c.router, netip.PrefixFrom(f.vip, f.vip.BitLen()), timeout, func(hops []vmnet.NextHop) bool {
				var devs []string
				for _, h := range hops {
					devs = append(devs, h.Dev)
				}
				slices.Sort(devs)
				return slices.Equal(devs, want)
			})
			chans[i] <- res{time.Since(since), err}
		}()
	}
	var took []time.Duration
	var errs []string
	for _, ch := range chans {
		r := <-ch
		took = append(took, r.took)
		if r.err != nil {
			errs = append(errs, r.err.Error())
		}
	}
	if len(errs) > 0 {
		return took, fmt.Errorf("the router's routes through %v: %s", want, strings.Join(errs, "; "))
	}
	return took, nil
}

// packets returns the packets d's services on both VIPs have counted, in and out.
func (c *cluster) packets(d *director) (in, out uint64) {
	for _, s := range c.stats(d) {
		in, out = in+s.PacketsIn, out+s.PacketsOut
	}
	return in, out
}

// carries fails unless d's services count packets in and out within a few seconds (6.1 sums
// the counters every 2 s): d carries transfers.
func (c *cluster) carries(d *director, when string) {
	c.t.Helper()
	var in, out uint64
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if in, out = c.packets(d); in > 0 && out > 0 {
			return
		}
	}
	c.t.Errorf("%s's services counted %d packets in, %d out %s: it carries no transfer", d.name, in, out, when)
}

// TestECMPFailover: both directors announce the VIPs by BGP, the router spreads the transfers
// over both (ECMP, an L4 hash); A dies, the router withdraws its next hop and B carries every
// transfer on; A rejoins empty, learns the whole table from B (fullnat_sync_resend) before it
// announces again, and carries its share again; nothing is lost. FULLNAT only: with NAT the
// real servers' replies go to one gateway, so NAT cannot be active-active.
func TestECMPFailover(t *testing.T) {
	requireFullNATSync(t)
	start := time.Now()
	step := func(what string) { t.Logf("%5.1fs %s", time.Since(start).Seconds(), what) }
	c := newCluster(t, mode{name: "ecmp", fullnat: true, bgp: true})
	t.Cleanup(func() {
		if t.Failed() {
			c.dump()
		}
	})
	sysctls(t, c.router, "net.ipv4.fib_multipath_hash_policy=1", "net.ipv6.fib_multipath_hash_policy=1")
	confA := c.directorBGP(c.a)
	frrStart := time.Now()
	frr := vmnet.StartBGPs(t, map[vmnet.NS]vmnet.BGPConfig{
		c.router: c.routerBGP(), c.a.ns: confA, c.b.ns: c.directorBGP(c.b),
	})
	// FRR starts in about 11 s under TCG, twice that on a busy host.
	if _, err := c.nextHops(frrStart, 60*time.Second, c.a, c.b); err != nil {
		t.Fatal(err)
	}
	step("cluster up; the router's routes to both VIPs have 2 next hops")
	tr := newTraffic(t)
	for i, rs := range c.rss {
		tr.serve(rs, v4.servers[i], v6.servers[i])
	}

	// 1. Long transfers, both families and directions, until both directors carry some: the
	// local address of a connection says which director opened it.
	var xs []*transfer
	onA, onB := 0, 0
	for round := 0; onA == 0 || onB == 0; round++ {
		if round == 3 {
			t.Fatalf("%d transfers: %d through A, %d through B; the router does not spread them", len(xs), onA, onB)
		}
		for i := range 4 {
			xs = append(xs, tr.start(c.client, families[i%2].vip, i/2 == 0))
		}
		if round == 0 {
			for i := range 4 {
				xs = append(xs, tr.start(c.client, families[i%2].vip, i/2 == 1))
			}
		}
		conns, _ := c.waitConns(c.a, xs, 15*time.Second)
		onA, onB = 0, 0
		for _, x := range xs {
			switch l := conns[x.client].Local.Addr(); l {
			case v4.lA, v6.lA:
				onA++
			case v4.lB, v6.lB:
				onB++
			default:
				t.Fatalf("%s: local address %s, neither A's nor B's", x.name(), l)
			}
		}
		t.Logf("%d transfers: %d through A, %d through B", len(xs), onA, onB)
	}
	c.waitConns(c.b, xs, 15*time.Second)
	progress(t, "through A and B", xs, make([]int64, len(xs)), moveBy, 20*time.Second)
	c.carries(c.a, "with both announcing")
	c.carries(c.b, "with both announcing")
	step(fmt.Sprintf("%d transfers: %d opened through A, %d through B; both directors have all", len(xs), onA, onB))

	// 2. A dies: its links go down; its local address moves to B (VRRP); the router withdraws
	// A's next hop by itself.
	atKill := snapshot(xs)
	for _, x := range xs {
		if x.finished() {
			t.Fatalf("%s ended before A died: %s", x.name(), x.intact())
		}
	}
	killed := time.Now()
	c.kill(c.a)
	withdrawn := make(chan error, 1)
	var withdrawal []time.Duration
	go func() {
		var err error
		withdrawal, err = c.nextHops(killed, 15*time.Second, c.b)
		withdrawn <- err
	}()
	c.takeOver(c.b, nil)
	if err := <-withdrawn; err != nil {
		t.Fatal(err)
	}
	// A's processes would keep the dead namespace alive, and so would the sockets of its
	// killed bgpd that can never close (FIN_WAIT1 orphans behind the downed links): they give
	// up after a retry, not minutes, so that the namespace (its IPVS state) goes with bury.
	sysctls(t, c.a.ns, "net.ipv4.tcp_orphan_retries=1")
	frr[c.a.ns].Kill()
	c.bury(c.a)
	progress(t, "through B after A died", xs, atKill, moveBy, 30*time.Second)
	resumed := time.Since(killed)
	step(fmt.Sprintf("A killed: the router dropped its next hop in %v (IPv4), %v (IPv6); every transfer moved through B %v after the kill",
		withdrawal[0].Round(time.Millisecond), withdrawal[1].Round(time.Millisecond), resumed.Round(time.Millisecond)))

	// 3. A rejoins empty: namespace, links, service, backup daemon; B sends its whole table
	// (fullnat_sync_resend), A lists every live connection before it runs its master daemon
	// and announces the VIPs again.
	rejoin := time.Now()
	c.up(c.a)
	c.daemon(c.a, "backup")
	listening := time.Now()
	sysctls(t, c.b.ns, "net.ipv4.vs.fullnat_sync_resend=1")
	c.waitConns(c.a, xs, 10*time.Second)
	learned := time.Since(listening)
	c.daemon(c.a, "master")
	c.checkDaemons(c.a)
	c.checkDaemons(c.b)
	announce := time.Now()
	frr[c.a.ns] = vmnet.StartBGP(t, c.a.ns, confA)
	back, err := c.nextHops(announce, 60*time.Second, c.a, c.b)
	if err != nil {
		t.Fatal(err)
	}
	// 4. A's local address comes back to A: the transfers run through both again.
	atBack := snapshot(xs)
	c.takeOver(c.a, c.b)
	rejoined := time.Since(rejoin)
	step(fmt.Sprintf("A rejoined: learned the table in %v, its next hops back %v (IPv4), %v (IPv6) after its FRR started",
		learned.Round(time.Millisecond), back[0].Round(time.Millisecond), back[1].Round(time.Millisecond)))
	progress(t, "through A and B again", xs, atBack, moveBy, 30*time.Second)
	c.carries(c.a, "after the rejoin")
	t.Logf("A after the rejoin (ipvsadm -Ln --stats):\n%s", adm(t, c.a.ns, "-Ln", "--stats"))

	// 5. The end: every transfer must finish intact.
	lost, bytes := tr.end()
	step("transfers ended")
	for _, l := range lost {
		t.Errorf("lost: %s", l)
	}
	sum := func(s []int64) (n int64) {
		for _, v := range s {
			n += v
		}
		return n
	}
	t.Logf("result cluster-ecmp transfers=%d opened_via_a=%d opened_via_b=%d lost=%d bytes=%d bytes_via_both=%d bytes_via_b=%d bytes_via_both_again=%d "+
		"withdrawal_ms_v4=%d withdrawal_ms_v6=%d resumed_ms=%d rejoin_learn_ms=%d announce_ms_v4=%d announce_ms_v6=%d rejoin_ms=%d",
		len(xs), onA, onB, len(lost), bytes, sum(atKill), sum(atBack)-sum(atKill), bytes-sum(atBack),
		withdrawal[0].Milliseconds(), withdrawal[1].Milliseconds(), resumed.Milliseconds(), learned.Milliseconds(),
		back[0].Milliseconds(), back[1].Milliseconds(), rejoined.Milliseconds())
}
