// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package synproxy

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
)

// syncPair is the fixture's director as the master and a second director "drb" as the backup,
// linked by their own sync link (s0): drb has the same services with local addresses of its own.
type syncPair struct {
	f  *fixture
	b  vmnet.NS
	bc *ipvs.Client
}

func newSyncPair(t *testing.T) *syncPair {
	t.Helper()
	f := newFixture(t)
	if feat, err := f.c.Features(t.Context()); err != nil || !feat.Has(ipvs.FeatureSyncFullNAT) {
		t.Fatalf("features %v (%v): the module does not sync FULLNAT", feat, err)
	}
	// the sync segment: a bridge in drb (its own sync interface), which more directors join
	b := vmnet.Add(t, "drb")
	b.Run(t, vmnet.IP, "link", "add", "sbr", "type", "bridge", "mcast_snooping", "0")
	b.Run(t, vmnet.IP, "link", "set", "sbr", "up")
	b.Addr(t, "sbr", "10.254.0.2/24")
	p := &syncPair{f: f, b: b}
	p.bc = p.join(t, b, "")
	p.director(t, f.tp.Director, f.c, "s0", "10.254.0.1/24")
	return p
}

// join makes ns a director of the sync segment: its own local addresses on a dummy br0, and
// (unless ns is drb, whose sync interface is the bridge) a link s0 to the segment.
func (p *syncPair) join(t *testing.T, ns vmnet.NS, addr string) *ipvs.Client {
	t.Helper()
	ns.Run(t, vmnet.IP, "link", "add", "br0", "type", "dummy")
	ns.Run(t, vmnet.IP, "link", "set", "br0", "up")
	ns.Addr(t, "br0", "198.51.100.201/24")
	ns.Addr(t, "br0", "2001:db8:2::201/64")
	c, err := ipvs.NewInNamespace("/run/netns/" + string(ns))
	if err != nil {
		t.Fatalf("IPVS client in %s: %v", ns, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	t.Cleanup(func() { _, _ = ns.Try(cipvsadm, "-C") })
	ifname := "sbr"
	if addr != "" {
		ifname = "s0"
		p.director(t, ns, c, ifname, addr)
	} else {
		p.daemons(t, ns, c, ifname)
	}
	return c
}

// director links ns to the sync segment by s0 with addr and starts its daemons.
func (p *syncPair) director(t *testing.T, ns vmnet.NS, c *ipvs.Client, ifname, addr string) {
	t.Helper()
	p.link(t, ns, ifname, addr)
	p.daemons(t, ns, c, ifname)
}

// link connects ns to the sync segment by ifname with addr.
func (p *syncPair) link(t *testing.T, ns vmnet.NS, ifname, addr string) {
	t.Helper()
	port := "p" + string(ns)
	vmnet.Veth(t, ns, ifname, p.b, port)
	p.b.Run(t, vmnet.IP, "link", "set", port, "master", "sbr")
	ns.Addr(t, ifname, addr)
}

// daemons starts a master and a backup in ns, as in a cluster: every director is both.
func (p *syncPair) daemons(t *testing.T, ns vmnet.NS, c *ipvs.Client, ifname string) {
	t.Helper()
	for _, st := range []ipvs.DaemonState{ipvs.DaemonMaster, ipvs.DaemonBackup} {
		d := ipvs.Daemon{State: st, Interface: ifname, SyncID: 7}
		if err := c.StartDaemon(t.Context(), d); err != nil {
			t.Fatalf("%s: start %v: %v", ns, d, err)
		}
		t.Cleanup(func() { _ = c.StopDaemon(context.Background(), d) })
	}
}

// backupService creates on drb (or the director of c) what f.service created on the master,
// with a local address of its own.
func (p *syncPair) backupService(t *testing.T, s ipvs.Service, fwd ipvs.ForwardMethod) {
	t.Helper()
	p.serviceOn(t, p.bc, s, fwd)
}

func (p *syncPair) serviceOn(t *testing.T, c *ipvs.Client, s ipvs.Service, fwd ipvs.ForwardMethod) {
	t.Helper()
	if err := c.CreateService(t.Context(), s); err != nil {
		t.Fatalf("backup: create %v: %v", s, err)
	}
	rss, la := p.f.tp.ServerAddrs, netip.MustParseAddr("198.51.100.201")
	if s.Address.Is6() {
		rss, la = p.f.tp.ServerAddrs6, netip.MustParseAddr("2001:db8:2::201")
	}
	for _, rs := range rss {
		if err := c.CreateDestination(t.Context(), s, ipvs.Destination{Address: rs, Port: 80, ForwardMethod: fwd, Weight: 1}); err != nil {
			t.Fatalf("backup: destination %s: %v", rs, err)
		}
	}
	if fwd == ipvs.FullNAT {
		if err := c.CreateLocalAddress(t.Context(), s, ipvs.LocalAddress{Address: la}); err != nil {
			t.Fatalf("backup: laddr %s: %v", la, err)
		}
	}
	t.Cleanup(func() { _ = c.DeleteService(context.Background(), s) })
}

// hold opens n connections from the client to vip:80 that stay established (holdPort).
func (p *syncPair) hold(t *testing.T, vip netip.Addr, n int) []uint16 {
	t.Helper()
	var ports []uint16
	for i := 0; i < n; i++ {
		ports = append(ports, p.holdPort(t, netip.AddrPortFrom(vip, 80)))
	}
	return ports
}

// connLines lists the established entries of a /proc/net connection file in ns towards vip
// port 80 from the client ports ports (ip_vs_conn or ip_vs_conn_fnat, which has the local
// address and port before the real server), each cut to its tuple. An earlier test's entries
// to the same VIP may still be listed as established: its connections closed as their service
// went away, and the director drops what comes for a deleted real server, the FIN included.
func connLines(t *testing.T, ns vmnet.NS, file string, vip netip.Addr, ports []uint16) []string {
	t.Helper()
	n := 7 // Pro FromIP FPrt ToIP TPrt DestIP DPrt
	if strings.HasSuffix(file, "_fnat") {
		n = 9 // ... LocalIP LPrt DestIP DPrt
	}
	var hex string
	if vip.Is6() {
		hex = vip.StringExpanded()
	} else {
		b := vip.As4()
		hex = fmt.Sprintf("%02X%02X%02X%02X", b[0], b[1], b[2], b[3])
	}
	ours := map[string]bool{}
	for _, port := range ports {
		ours[fmt.Sprintf("%04X", port)] = true
	}
	var out []string
	for _, line := range strings.Split(ns.Run(t, "/bin/cat", file), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) <= n || !strings.EqualFold(f[3], hex) || f[4] != "0050" || f[n] != "ESTABLISHED" || !ours[strings.ToUpper(f[2])] {
			continue
		}
		out = append(out, strings.Join(f[:n], " "))
	}
	slices.Sort(out)
	return out
}

// TestSyncToBackup: a backup learns its peer's FULLNAT and SYNPROXY connections with
// everything it needs to carry them on: the same tuple, the peer's local address and port
// (never one of its own), and it counts them in fullnat_sync_conn. NAT connections sync as
// upstream's do, and a version 0 sync leaves FULLNAT connections out.
func TestSyncToBackup(t *testing.T) {
	p := newSyncPair(t)
	d := p.f.tp.Director
	cases := []struct {
		name     string
		vip      netip.Addr
		fwd      ipvs.ForwardMethod
		synproxy bool
		v0       bool
	}{
		// first: fullnat_sync_conn also counts the updates of earlier cases' connections
		{"NAT IPv4", p.f.tp.VIP, ipvs.Masquerade, false, false},
		{"FULLNAT IPv4", p.f.tp.VIP, ipvs.FullNAT, false, false},
		{"FULLNAT IPv6", p.f.tp.VIP6, ipvs.FullNAT, false, false},
		{"FULLNAT SYNPROXY IPv4", p.f.tp.VIP, ipvs.FullNAT, true, false},
		{"FULLNAT SYNPROXY IPv6", p.f.tp.VIP6, ipvs.FullNAT, true, false},
		{"NAT SYNPROXY IPv4", p.f.tp.VIP, ipvs.Masquerade, true, false},
		{"FULLNAT IPv4 version 0", p.f.tp.VIP, ipvs.FullNAT, false, true},
	}
	const conns = 3
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ver := "1"
			if tc.v0 {
				ver = "0"
			}
			d.Sysctl(t, "net.ipv4.vs.sync_version", ver)
			s := p.f.service(t, tc.vip, tc.fwd, tc.synproxy)
			p.backupService(t, s, tc.fwd)
			before := vmnet.ExtStats(t, p.b)
			ports := p.hold(t, tc.vip, conns)

			file := "/proc/net/ip_vs_conn"
			if tc.fwd == ipvs.FullNAT {
				file = "/proc/net/ip_vs_conn_fnat"
			}
			want := connLines(t, d, file, tc.vip, ports)
			if len(want) != conns {
				t.Fatalf("master has %d connections, want %d:\n%s", len(want), conns, strings.Join(want, "\n"))
			}
			if tc.v0 {
				// a version 0 message cannot carry a local port: nothing is sent
				time.Sleep(4 * time.Second)
				if got := connLines(t, p.b, file, tc.vip, ports); len(got) != 0 {
					t.Errorf("version 0 sync gave the backup FULLNAT connections:\n%s", strings.Join(got, "\n"))
				}
				return
			}
			var got []string
			for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
				if got = connLines(t, p.b, file, tc.vip, ports); slices.Equal(got, want) {
					break
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("backup's connections:\n%s\nwant the master's:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			after := vmnet.ExtStats(t, p.b)
			synced := after["fullnat_sync_conn"] - before["fullnat_sync_conn"]
			if refused := after["fullnat_sync_refused"] - before["fullnat_sync_refused"]; refused != 0 {
				t.Errorf("backup refused %d synced connections", refused)
			}
			if tc.fwd == ipvs.FullNAT || tc.synproxy {
				if synced < conns {
					t.Errorf("fullnat_sync_conn grew by %d for %d connections", synced, conns)
				}
			} else if synced != 0 {
				t.Errorf("fullnat_sync_conn grew by %d for NAT connections", synced)
			}
		})
	}
}

// TestSyncResend: a director that joins the cluster learns the connections that already exist
// and carry no packets (idle ones are never synced again on their own) when a peer writes 1 to
// fullnat_sync_resend; a director without a master daemon refuses the write.
func TestSyncResend(t *testing.T) {
	p := newSyncPair(t)
	d := p.f.tp.Director
	s := p.f.service(t, p.f.tp.VIP, ipvs.FullNAT, true)
	p.backupService(t, s, ipvs.FullNAT)
	const file = "/proc/net/ip_vs_conn_fnat"
	ports := p.hold(t, p.f.tp.VIP, 3)
	want := connLines(t, d, file, p.f.tp.VIP, ports)
	if len(want) != 3 {
		t.Fatalf("master has %d connections, want 3:\n%s", len(want), strings.Join(want, "\n"))
	}
	for end := time.Now().Add(10 * time.Second); !slices.Equal(connLines(t, p.b, file, p.f.tp.VIP, ports), want); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("drb never learned the connections")
		}
	}

	// drc joins now: nothing the connections do tells it about them
	c := vmnet.Add(t, "drc")
	if _, err := c.Try("/bin/sh", "-c", "echo 1 > /proc/sys/net/ipv4/vs/fullnat_sync_resend"); err == nil {
		t.Errorf("fullnat_sync_resend accepted a write without a master daemon")
	}
	cc := p.join(t, c, "10.254.0.3/24")
	p.serviceOn(t, cc, s, ipvs.FullNAT)
	time.Sleep(2 * time.Second)
	if got := connLines(t, c, file, p.f.tp.VIP, ports); len(got) == len(want) {
		t.Fatalf("drc learned the idle connections without a resend: the test proves nothing\n%s", strings.Join(got, "\n"))
	}
	d.Sysctl(t, "net.ipv4.vs.fullnat_sync_resend", "1")
	var got []string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if got = connLines(t, c, file, p.f.tp.VIP, ports); slices.Equal(got, want) {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after the resend drc has:\n%s\nwant the master's:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSyncRecord: our master's sync messages as a peer on the sync segment receives them, for
// one connection to each of NAT (port 81), FULLNAT IPv4 and IPv6 (port 80) and FULLNAT with
// SYNPROXY (port 82): the FULLNAT and SYNPROXY ones carry their options. It prints them, one
// per line in hex; the fixture was recorded with
//
//	rig/vmtest.sh --kernels 6.12 --modules ours --run TestSyncRecord ./test/synproxy |
//		sed -n 's/^SYNC-MESSAGE //p' > testdata/sync/messages.hex
func TestSyncRecord(t *testing.T) {
	p := newSyncPair(t)
	// a listener on the sync segment, as a stock backup would be
	rec := vmnet.Add(t, "rec")
	p.link(t, rec, "s0", "10.254.0.9/24")
	msgs := make(chan []byte, 64)
	var conn *net.UDPConn
	err := vmnet.InNetns(string(rec), func() error {
		ifi, err := net.InterfaceByName("s0")
		if err != nil {
			return err
		}
		conn, err = net.ListenMulticastUDP("udp4", ifi, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 81), Port: 8848})
		return err
	})
	if err != nil {
		t.Fatalf("listening on the sync segment: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	go func() {
		for {
			b := make([]byte, 65536)
			n, _, err := conn.ReadFromUDP(b)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- b[:n]
		}
	}()

	for _, sv := range []struct {
		vip      netip.Addr
		port     uint16
		fwd      ipvs.ForwardMethod
		synproxy bool
	}{
		{p.f.tp.VIP, 81, ipvs.Masquerade, false},
		{p.f.tp.VIP, 80, ipvs.FullNAT, false},
		{p.f.tp.VIP6, 80, ipvs.FullNAT, false},
		{p.f.tp.VIP, 82, ipvs.FullNAT, true},
	} {
		s := ipvs.Service{Protocol: ipvs.TCP, Address: sv.vip, Port: sv.port, Scheduler: "rr"}
		if sv.synproxy {
			s.Flags = ipvs.FlagSynProxy
		}
		if err := p.f.c.CreateService(t.Context(), s); err != nil {
			t.Fatalf("create %v: %v", s, err)
		}
		rss, las := p.f.tp.ServerAddrs, p.f.laddrs
		if sv.vip.Is6() {
			rss, las = p.f.tp.ServerAddrs6, p.f.lad6
		}
		if err := p.f.c.CreateDestination(t.Context(), s, ipvs.Destination{Address: rss[0], Port: 80, ForwardMethod: sv.fwd, Weight: 1}); err != nil {
			t.Fatal(err)
		}
		if sv.fwd == ipvs.FullNAT {
			if err := p.f.c.CreateLocalAddress(t.Context(), s, ipvs.LocalAddress{Address: las[0]}); err != nil {
				t.Fatal(err)
			}
		}
		p.holdPort(t, netip.AddrPortFrom(sv.vip, sv.port))
	}
	kinds := map[string]bool{}
	end := time.After(5 * time.Second)
	var got [][]byte
loop:
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				break loop
			}
			got = append(got, m)
			for _, k := range syncKinds(m) {
				kinds[k] = true
			}
			if len(kinds) == 4 {
				break loop
			}
		case <-end:
			break loop
		}
	}
	for _, m := range got {
		fmt.Printf("SYNC-MESSAGE %x\n", m)
	}
	for _, k := range []string{"nat", "fullnat4", "fullnat6", "fullnat-synproxy"} {
		if !kinds[k] {
			t.Errorf("no sync message carried a %s connection (saw %v)", k, kinds)
		}
	}
}

// holdPort opens a connection from the client to vip that stays established: it asks for a
// long stream and reads only its start, so the server's window fills and nothing closes. It
// returns the connection's client port.
func (p *syncPair) holdPort(t *testing.T, vip netip.AddrPort) uint16 {
	t.Helper()
	var port uint16
	err := vmnet.InNetns(string(p.f.tp.Client), func() error {
		c, err := net.DialTimeout("tcp", vip.String(), 5*time.Second)
		if err != nil {
			return err
		}
		t.Cleanup(func() { _ = c.Close() })
		port = uint16(c.LocalAddr().(*net.TCPAddr).Port)
		if _, err := io.WriteString(c, "get 1000000000 1\n"); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadFull(c, make([]byte, 64<<10))
		return err
	})
	if err != nil {
		t.Fatalf("holding a connection to %s: %v", vip, err)
	}
	return port
}

// syncKinds names the connections of a version 1 sync message by what they carry: nat (no
// option of ours), fullnat4, fullnat6 (IPVS_OPT_FULLNAT), fullnat-synproxy (both options).
func syncKinds(m []byte) []string {
	if len(m) < 8 || m[5] != 1 { // version 1
		return nil
	}
	var out []string
	p := 8
	for i := 0; i < int(m[4]) && p+36 <= len(m); i++ {
		v6 := m[p]&1 != 0
		size := int(binary.BigEndian.Uint16(m[p+2:]) & 0x0fff)
		if size == 0 || p+size > len(m) {
			return out
		}
		hdr := 36
		if v6 {
			hdr = 72
		}
		var fn, sp bool
		for o := p + hdr; o+2 <= p+size; {
			typ, l := m[o], int(m[o+1])
			fn = fn || typ == 0x21
			sp = sp || typ == 0x22
			o += 2 + l
		}
		switch {
		case fn && sp:
			out = append(out, "fullnat-synproxy")
		case fn && v6:
			out = append(out, "fullnat6")
		case fn:
			out = append(out, "fullnat4")
		case !sp:
			out = append(out, "nat")
		}
		p += (size + 3) &^ 3
	}
	return out
}
