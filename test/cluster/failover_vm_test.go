// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package cluster

import (
	"context"
	"encoding/json"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
)

// Progress that counts as "the transfers moved" in a phase: 16 paced chunks each (about a
// second), more than a receiver that reads in a loop leaves unread in its socket when the
// phase starts, so the bytes did cross the phase's director. (The final check, every byte
// of every transfer intact, is the one that counts losses.)
const moveBy = 16 * chunk

// TestFailover: long transfers through A, A dies, B carries them to their end; A rejoins,
// learns the current connections from B, and takes the traffic back; nothing is lost.
func TestFailover(t *testing.T) {
	t.Run("NAT", func(t *testing.T) { testFailover(t, mode{name: "nat"}) })
	t.Run("FULLNAT", func(t *testing.T) {
		requireFullNATSync(t)
		testFailover(t, mode{name: "fullnat", fullnat: true})
	})
	t.Run("FULLNAT+SYNPROXY", func(t *testing.T) {
		requireFullNATSync(t)
		testFailover(t, mode{name: "fullnat-synproxy", fullnat: true, synproxy: true})
	})
}

// floodFor is how long the SYN flood lasts that the SYNPROXY case opens its first transfers
// in (spoofed sources, to both VIPs): longer than the opening takes under TCG.
const floodFor = 3 * time.Second

// startFlood sends spoofed SYNs from the client to both VIPs for floodFor; stop waits for
// the end and returns how many were sent.
func startFlood(t *testing.T, c *cluster) (stop func() int) {
	t.Helper()
	type res struct {
		Sent int `json:"sent"`
	}
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for _, f := range families {
		cmd := c.client.Command(vmnet.Bin+"/lvs-peer", "flood", "--addr", netip.AddrPortFrom(f.vip, 80).String(),
			"--count", "1000000", "--workers", "1", "--limit", floodFor.String())
		var out strings.Builder
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("flood: %v", err)
		}
		cmds, outs = append(cmds, cmd), append(outs, &out)
	}
	return func() int {
		sent := 0
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Errorf("flood: %v: %s", err, outs[i])
			}
			var r res
			_ = json.Unmarshal([]byte(outs[i].String()), &r)
			sent += r.Sent
		}
		return sent
	}
}

// requireFullNATSync fails unless the module announces FULLNAT connection sync.
func requireFullNATSync(t *testing.T) {
	t.Helper()
	cl, err := ipvs.New()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	info, err := cl.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !info.Features.Has(ipvs.FeatureSyncFullNAT) {
		t.Fatalf("the module does not sync FULLNAT connections: features %v lack %v", info.Features, ipvs.FeatureSyncFullNAT)
	}
}

func testFailover(t *testing.T, m mode) {
	c := newCluster(t, m)
	t.Cleanup(func() {
		if t.Failed() {
			c.dump()
		}
	})
	tr := newTraffic(t)
	for i, rs := range c.rss {
		tr.serve(rs, v4.servers[i], v6.servers[i])
	}

	// 1. Four long transfers through A: one each way per family; with SYNPROXY, opened
	// while a SYN flood hits A.
	var stopFlood func() int
	var spBefore map[string]uint64
	if m.synproxy {
		spBefore = vmnet.ExtStats(t, c.a.ns)
		stopFlood = startFlood(t, c)
		time.Sleep(500 * time.Millisecond)
	}
	var first []*transfer
	for _, f := range families {
		first = append(first, tr.start(c.client, f.vip, true), tr.start(c.client, f.vip, false))
	}
	if m.synproxy {
		sent := stopFlood()
		after := vmnet.ExtStats(t, c.a.ns)
		syns := after["synproxy_syn_cnt"] - spBefore["synproxy_syn_cnt"]
		t.Logf("SYN flood: %d spoofed SYNs sent, A answered %d SYNs with cookies, %d handshakes completed",
			sent, syns, after["synproxy_ok_ack"]-spBefore["synproxy_ok_ack"])
		if sent == 0 || syns < uint64(sent)/2 {
			t.Errorf("the flood did not reach A's SYNPROXY: %d sent, %d SYNs answered", sent, syns)
		}
	}
	onB, seenB := c.waitConns(c.b, first, 15*time.Second)
	onA, _ := c.waitConns(c.a, first, 10*time.Second)
	var lags []time.Duration
	for i, x := range first {
		lags = append(lags, seenB[i].Sub(x.established))
		a, b := onA[x.client], onB[x.client]
		if a.Destination != b.Destination {
			t.Errorf("%s: A sends it to %s, B learned %s", x.name(), a.Destination, b.Destination)
		}
		la := v4.lA
		if x.client.Addr().Is6() {
			la = v6.lA
		}
		if m.fullnat && (a.Local != b.Local || a.Local.Addr() != la) {
			t.Errorf("%s: A's local side %s, B learned %s; want A's local address %s", x.name(), a.Local, b.Local, la)
		}
	}
	t.Logf("B before the kill (ipvsadm -Lnc):\n%s", adm(t, c.b.ns, "-Lnc"))
	progress(t, "through A", first, make([]int64, len(first)), moveBy, 20*time.Second)

	// 2. A dies; the router's route and the moving address go to B (BGP's withdrawal, VRRP).
	atKill := snapshot(first)
	for _, x := range first {
		if x.finished() {
			t.Fatalf("%s ended before A died: %s", x.name(), x.intact())
		}
	}
	t.Logf("A dies with %d transfers running through it (%d bytes moved so far)", len(first), sum(atKill))
	killed := time.Now()
	c.kill(c.a)
	c.route(c.b)
	c.takeOver(c.b, nil)
	failover := time.Since(killed)
	c.bury(c.a)
	progress(t, "through B after A died", first, atKill, moveBy, 30*time.Second)
	resumed := time.Since(killed)
	c.passed(c.b, "after the failover")
	t.Logf("B carries them %.1f s after A died (ipvsadm -Ln --stats on B):\n%s", resumed.Seconds(), adm(t, c.b.ns, "-Ln", "--stats"))

	// 3. New transfers through B, which A has never seen.
	second := []*transfer{tr.start(c.client, v4.vip, true), tr.start(c.client, v6.vip, false)}
	all := append(slices.Clone(first), second...)
	c.waitConns(c.b, all, 10*time.Second)

	// 4. A rejoins empty: namespace, links, service, backup daemon first; it must learn every
	// current connection of B before it takes traffic.
	rejoin := time.Now()
	c.up(c.a)
	c.daemon(c.a, "backup")
	listening := time.Now()
	// The rejoin procedure (README, "Running a cluster"): the peer sends its whole table. A
	// live connection is also sent again at least every syncRefresh seconds, and the master
	// flushes its buffer within fullnat_sync_flush_ms: twice that is a generous bound.
	sysctls(t, c.b.ns, "net.ipv4.vs.fullnat_sync_resend=1")
	c.waitConns(c.a, all, time.Duration(2*(syncRefresh+1))*time.Second)
	learned := time.Since(listening)
	t.Logf("A after rejoining, before it takes traffic (ipvsadm -Lnc):\n%s", adm(t, c.a.ns, "-Lnc"))
	c.daemon(c.a, "master")
	c.checkDaemons(c.a)
	c.checkDaemons(c.b)
	rejoined := time.Since(rejoin)

	// 5. A takes the traffic back: route and moving address.
	atBack := snapshot(all)
	c.route(c.a)
	c.takeOver(c.a, c.b)
	progress(t, "through A again", all, atBack, moveBy, 30*time.Second)
	t.Logf("A after the failback (ipvsadm -Ln --stats):\n%s", adm(t, c.a.ns, "-Ln", "--stats"))
	c.passed(c.a, "after the failback")

	// 6. The end: every transfer must finish intact.
	lost, bytes := tr.end()
	for _, l := range lost {
		t.Errorf("lost: %s", l)
	}
	slices.Sort(lags)
	sum := func(s []int64) (n int64) {
		for _, v := range s {
			n += v
		}
		return n
	}
	t.Logf("result cluster-%s transfers=%d lost=%d bytes=%d bytes_via_a=%d bytes_via_b=%d bytes_via_a_again=%d "+
		"sync_lag_ms_min=%d sync_lag_ms_median=%d sync_lag_ms_max=%d failover_ms=%d resumed_ms=%d rejoin_learn_ms=%d rejoin_ms=%d",
		m.name, len(all), len(lost), bytes, sum(atKill), sum(atBack)-sum(atKill), bytes-sum(atBack),
		lags[0].Milliseconds(), lags[len(lags)/2].Milliseconds(), lags[len(lags)-1].Milliseconds(),
		failover.Milliseconds(), resumed.Milliseconds(), learned.Milliseconds(), rejoined.Milliseconds())
	for i, x := range all {
		var k int64
		if i < len(atKill) {
			k = atKill[i]
		}
		t.Logf("%s client %s: %d bytes (%d before A died, %d before A took it back)", x.name(), x.client, x.moved.Load(), k, atBack[i])
	}
}

// TestFailoverWithoutSync is the control: the same failover with B's backup daemon stopped.
// B holds none of A's connections, so every transfer through A must be lost (B's stack
// answers their segments to its VIP with a reset); the count of lost connections that
// TestFailover wants at zero is real.
func TestFailoverWithoutSync(t *testing.T) {
	start := time.Now()
	step := func(what string) { t.Logf("%5.1fs %s", time.Since(start).Seconds(), what) }
	c := newCluster(t, mode{name: "nat"})
	adm(t, c.b.ns, "--stop-daemon", "backup")
	step("cluster up, B's backup daemon stopped")
	tr := newTraffic(t)
	for i, rs := range c.rss {
		tr.serve(rs, v4.servers[i], v6.servers[i])
	}
	var xs []*transfer
	for i := range 2 {
		xs = append(xs, tr.start(c.client, v4.vip, i%2 == 0))
	}
	c.waitConns(c.a, xs, 10*time.Second)
	progress(t, "through A", xs, make([]int64, len(xs)), moveBy, 20*time.Second)
	step("transfers through A")
	// Longer than the sync lag TestFailover measures (3 s): B would have them by now.
	time.Sleep(4 * time.Second)
	if conns, err := c.connTable(c.b); err != nil {
		t.Fatal(err)
	} else if len(conns) != 0 {
		t.Fatalf("B learned connections without a backup daemon: %v", conns)
	}
	c.kill(c.a)
	c.route(c.b)
	c.takeOver(c.b, nil)
	step("A killed, B took over")
	lost, bytes := tr.end()
	step("transfers ended")
	t.Logf("result cluster-nosync transfers=%d lost=%d bytes=%d", len(xs), len(lost), bytes)
	for _, l := range lost {
		t.Logf("lost: %s", l)
	}
	if len(lost) != len(xs) {
		t.Errorf("%d of %d transfers lost without sync, want all", len(lost), len(xs))
	}
}

// sum adds up a snapshot's bytes.
func sum(b []int64) int64 {
	var n int64
	for _, v := range b {
		n += v
	}
	return n
}
