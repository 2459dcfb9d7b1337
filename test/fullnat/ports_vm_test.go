// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package fullnat

import (
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
	"golang.org/x/sys/unix"
)

// TestFullNATNoLaddr: a FULLNAT service without local addresses refuses connections and counts
// them.
func TestFullNATNoLaddr(t *testing.T) {
	f := newFixture(t, 1)
	f.fullnatService(t, unix.IPPROTO_TCP, f.tp.VIP, f.tp.ServerAddrs, nil)
	vip := netip.AddrPortFrom(f.tp.VIP, 80).String()
	before := extStats(t, f.tp.Director)["fullnat_no_laddr"]
	s, _, err := vmnet.TryDial(f.tp.Client, "--addr", vip, "--count", "2", "--timeout", "2s")
	if err == nil || s.OK != 0 {
		t.Errorf("connections through a FULLNAT service without local addresses succeeded: %+v", s)
	}
	if after := extStats(t, f.tp.Director)["fullnat_no_laddr"]; after <= before {
		t.Errorf("fullnat_no_laddr did not grow: %d -> %d", before, after)
	}
}

// TestFullNATPortExhaustion: with a five-port range, a local address serves five connections to
// a real server; the next ones fall through to the second local address, and once both are
// exhausted connections are refused and counted.
func TestFullNATPortExhaustion(t *testing.T) {
	f := newFixture(t, 1)
	d := f.tp.Director
	d.Sysctl(t, "net.ipv4.vs.fullnat_lport_min", "40000")
	d.Sysctl(t, "net.ipv4.vs.fullnat_lport_max", "40004")
	s := f.fullnatService(t, unix.IPPROTO_TCP, f.tp.VIP, f.tp.ServerAddrs, f.laddrs[:1])
	vip := netip.AddrPortFrom(f.tp.VIP, 80).String()

	// Connections end in TIME_WAIT on the director, which keeps their local ports.
	first := vmnet.Dial(t, f.tp.Client, "--addr", vip, "--count", "5")
	onlyFrom(t, "first five", first, f.laddrs[:1])
	if s, _, err := vmnet.TryDial(f.tp.Client, "--addr", vip, "--count", "1", "--timeout", "2s"); err == nil {
		t.Fatalf("a sixth connection succeeded with one local address of five ports: %+v", s)
	}
	if err := f.ic.addLaddr(s, f.laddrs[1]); err != nil {
		t.Fatalf("adding the second local address: %v", err)
	}
	// Round-robin starts on either address; every connection must land on the second one.
	next := vmnet.Dial(t, f.tp.Client, "--addr", vip, "--count", "5")
	onlyFrom(t, "next five", next, f.laddrs[1:])
	before := extStats(t, d)["fullnat_lport_exhausted"]
	if s, _, err := vmnet.TryDial(f.tp.Client, "--addr", vip, "--count", "1", "--timeout", "2s"); err == nil {
		t.Errorf("an eleventh connection succeeded with two local addresses of five ports: %+v", s)
	}
	if after := extStats(t, d)["fullnat_lport_exhausted"]; after <= before {
		t.Errorf("fullnat_lport_exhausted did not grow: %d -> %d", before, after)
	}
	las, err := f.ic.laddrs(s)
	if err != nil || len(las) != 2 {
		t.Fatalf("GET_LADDR: %+v, %v", las, err)
	}
	if las[0].connCounts != 5 || las[1].connCounts != 5 || las[0].portConflict == 0 {
		t.Errorf("GET_LADDR: want 5 connections on each address and port conflicts on the first, got %+v", las)
	}
}

// TestFullNATSameClientPort: a client reconnecting from the same port while the director still
// holds the old connection in TIME_WAIT gets a fresh connection, from another local port.
func TestFullNATSameClientPort(t *testing.T) {
	f := newFixture(t, 2)
	d := f.tp.Director
	for _, sd := range f.sides() {
		t.Run(sd.name, func(t *testing.T) {
			f.fullnatService(t, unix.IPPROTO_TCP, sd.vip, sd.rss, sd.laddrs)
			t.Cleanup(func() { d.Run(t, cipvsadm, "-C") })
			vip := netip.AddrPortFrom(sd.vip, 80)
			client := netip.AddrPortFrom(f.clientOf(sd), 41000).String()
			peers := map[string]bool{}
			for i := 0; i < 3; i++ {
				if i > 0 {
					conns := d.Run(t, cipvsadm, "-Lnc")
					if !strings.Contains(conns, client) || !strings.Contains(conns, "TIME_WAIT") {
						t.Fatalf("before connection %d the director holds no TIME_WAIT entry for %s:\n%s", i+1, client, conns)
					}
				}
				server, peer, err := vmnet.HelloFrom(string(f.tp.Client), 41000, vip)
				if err != nil {
					t.Fatalf("connection %d from %s: %v", i+1, client, err)
				}
				t.Logf("connection %d: %s saw %s", i+1, server, peer)
				peers[peer] = true
			}
			if len(peers) != 3 {
				t.Errorf("the real servers saw %d distinct local address:port pairs over 3 connections, want 3: %v", len(peers), peers)
			}
		})
	}
}

// TestFullNATEstTimeout: a service's ESTABLISHED timeout (IPVS_SVC_ATTR_EST_TIMEOUT) replaces the
// global one for its connections.
func TestFullNATEstTimeout(t *testing.T) {
	f := newFixture(t, 1)
	s := service{proto: unix.IPPROTO_TCP, vip: netip.AddrPortFrom(f.tp.VIP, 80)}
	if err := f.ic.newService(s, 77); err != nil {
		t.Fatal(err)
	}
	if err := f.ic.newFullNATDest(s, netip.AddrPortFrom(f.tp.ServerAddrs[0], 80)); err != nil {
		t.Fatal(err)
	}
	if err := f.ic.addLaddr(s, f.laddrs[0]); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- vmnet.InNetns(string(f.tp.Client), func() error {
			c, err := net.DialTimeout("tcp", s.vip.String(), 5*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			<-done
			return nil
		})
	}()
	var conns string
	for i := 0; i < 50; i++ {
		conns = f.tp.Director.Run(t, cipvsadm, "-Lnc")
		if strings.Contains(conns, "ESTABLISHED") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(done)
	if err := <-held; err != nil {
		t.Fatalf("holding a connection: %v", err)
	}
	if !regexp.MustCompile(`TCP\s+01:1[0-7]\s+ESTABLISHED`).MatchString(conns) {
		t.Errorf("want an ESTABLISHED entry expiring in about 77 s (01:1x), got:\n%s", conns)
	}
}
