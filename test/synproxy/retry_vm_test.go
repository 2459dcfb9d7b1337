// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package synproxy

import (
	"net/netip"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
)

// TestSynProxySynRetry: the director's SYN to the real server is lost (the server's port on
// the director's bridge is down for two seconds); the director sends it again and the client's
// connection succeeds.
func TestSynProxySynRetry(t *testing.T) {
	f := newFixture(t)
	d := f.tp.Director
	s := ipvs.Service{Protocol: ipvs.Protocol(6), Address: f.tp.VIP, Port: 80, Scheduler: "rr", Flags: ipvs.FlagSynProxy}
	if err := f.c.CreateService(s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.c.DeleteService(s) })
	if err := f.c.CreateDestination(s, ipvs.Destination{Address: f.tp.ServerAddrs[0], Port: 80, ForwardMethod: ipvs.FullNAT, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	if err := f.c.CreateLocalAddress(s, ipvs.LocalAddress{Address: f.laddrs[0]}); err != nil {
		t.Fatal(err)
	}
	// warm the neighbour caches
	vmnet.Dial(t, f.tp.Client, "--addr", netip.AddrPortFrom(f.tp.VIP, 80).String())
	before := spStats(t, d)
	d.Run(t, vmnet.IP, "link", "set", "r1", "down")
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(2 * time.Second)
		_, _ = d.Try(vmnet.IP, "link", "set", "r1", "up")
	}()
	start := time.Now()
	sum, out, err := vmnet.TryDial(f.tp.Client, "--addr", netip.AddrPortFrom(f.tp.VIP, 80).String(), "--timeout", "30s")
	el := time.Since(start)
	<-done
	if sum.OK != 1 {
		t.Errorf("dial with the first SYN lost: %+v (%v)\n%s", sum, err, out)
	}
	after := spStats(t, d)
	t.Logf("connected after %v; synproxy_rs_error +%d", el.Round(time.Millisecond), after["synproxy_rs_error"]-before["synproxy_rs_error"])
	if after["synproxy_rs_error"] == before["synproxy_rs_error"] {
		t.Errorf("no SYN resent (synproxy_rs_error unchanged)")
	}
}
