// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package fullnat

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/fullnat/fullnat/internal/vmnet"
	"golang.org/x/sys/unix"
)

const cipvsadm = "/usr/sbin/ipvsadm"

// fixture is the standard topology with local addresses on the director's server-side bridge,
// lvs-peer serving on every real server, and an IPVS netlink connection in the director.
type fixture struct {
	tp             *vmnet.Topology
	ic             *ipvsConn
	laddrs, laddr6 []netip.Addr
}

func newFixture(t *testing.T, servers int) *fixture {
	t.Helper()
	return newFixtureWith(t, vmnet.Options{Servers: servers})
}

// newFixtureWith is newFixture on a topology built with o.
func newFixtureWith(t *testing.T, o vmnet.Options) *fixture {
	t.Helper()
	if os.Getenv("RIG_MODULES") != "ours" {
		t.Fatalf("FULLNAT needs our modules (RIG_MODULES=ours), got %q", os.Getenv("RIG_MODULES"))
	}
	tp := vmnet.New(t, o)
	d := tp.Director
	d.Run(t, "/sbin/modprobe", "ip_vs")
	d.Run(t, "/sbin/modprobe", "ip_vs_rr")
	f := &fixture{tp: tp}
	for i := 1; i <= 2; i++ {
		a4 := netip.MustParseAddr(fmt.Sprintf("198.51.100.%d", 100+i))
		a6 := netip.MustParseAddr(fmt.Sprintf("2001:db8:2::%d", 100+i))
		d.Addr(t, "br0", a4.String()+"/24")
		d.Addr(t, "br0", a6.String()+"/64")
		f.laddrs = append(f.laddrs, a4)
		f.laddr6 = append(f.laddr6, a6)
	}
	for i, rs := range tp.Servers {
		vmnet.Serve(t, rs, fmt.Sprintf("rs%d", i+1), 80, tp.ServerAddrs[i], tp.ServerAddrs6[i])
	}
	f.ic = dialIPVS(t, string(d))
	t.Cleanup(func() { _, _ = d.Try(cipvsadm, "-C") })
	return f
}

// family4 and family6 pick the IPv4 or IPv6 side of the fixture.
type side struct {
	name   string
	vip    netip.Addr
	rss    []netip.Addr
	laddrs []netip.Addr
}

func (f *fixture) clientOf(sd side) netip.Addr {
	if sd.vip.Is4() {
		return f.tp.ClientAddr
	}
	return f.tp.ClientAddr6
}

func (f *fixture) sides() []side {
	return []side{
		{"IPv4", f.tp.VIP, f.tp.ServerAddrs, f.laddrs},
		{"IPv6", f.tp.VIP6, f.tp.ServerAddrs6, f.laddr6},
	}
}

// fullnatService creates a service on vip:80 with every rs as a FULLNAT destination and the
// given local addresses.
func (f *fixture) fullnatService(t *testing.T, proto uint16, vip netip.Addr, rss, laddrs []netip.Addr) service {
	t.Helper()
	s := service{proto: proto, vip: netip.AddrPortFrom(vip, 80)}
	if err := f.ic.newService(s, 0); err != nil {
		t.Fatalf("new service %v: %v", s, err)
	}
	for _, rs := range rss {
		if err := f.ic.newFullNATDest(s, netip.AddrPortFrom(rs, 80)); err != nil {
			t.Fatalf("FULLNAT dest %s: %v", rs, err)
		}
	}
	for _, la := range laddrs {
		if err := f.ic.addLaddr(s, la); err != nil {
			t.Fatalf("laddr %s: %v", la, err)
		}
	}
	return s
}

func onlyFrom(t *testing.T, what string, s vmnet.Summary, allowed []netip.Addr) {
	t.Helper()
	used := map[netip.Addr]int{}
	for server, hosts := range s.Seen {
		for h, n := range hosts {
			a, err := netip.ParseAddr(h)
			if err != nil {
				t.Fatalf("%s: %s saw peer %q", what, server, h)
			}
			ok := false
			for _, la := range allowed {
				ok = ok || la == a
			}
			if !ok {
				t.Errorf("%s: %s saw peer %s, want one of the local addresses %v", what, server, a, allowed)
			}
			used[a] += n
		}
	}
	for _, la := range allowed {
		if used[la] == 0 {
			t.Errorf("%s: local address %s never used (use: %v)", what, la, used)
		}
	}
}

func TestFullNATTraffic(t *testing.T) {
	f := newFixture(t, 2)
	d := f.tp.Director
	for _, sd := range f.sides() {
		t.Run(sd.name, func(t *testing.T) {
			tcp := f.fullnatService(t, unix.IPPROTO_TCP, sd.vip, sd.rss, sd.laddrs)
			f.fullnatService(t, unix.IPPROTO_UDP, sd.vip, sd.rss, sd.laddrs)
			t.Cleanup(func() { d.Run(t, cipvsadm, "-C") })
			vip := netip.AddrPortFrom(sd.vip, 80).String()

			s := vmnet.Dial(t, f.tp.Client, "--addr", vip, "--count", "1000", "--parallel", "16")
			if s.OK != 1000 || s.Servers["rs1"] != 500 || s.Servers["rs2"] != 500 {
				t.Errorf("TCP: want 1000 connections split 500/500 over rs1/rs2, got ok=%d failed=%d servers=%v errors=%v",
					s.OK, s.Failed, s.Servers, s.Errors)
			}
			onlyFrom(t, "TCP", s, sd.laddrs)
			t.Logf("1000 connections (16 in parallel) in %d ms", s.ElapsedMS)

			g := vmnet.Dial(t, f.tp.Client, "--addr", vip, "--op", "get", "--size", "10485760", "--timeout", "120s")
			p := vmnet.Dial(t, f.tp.Client, "--addr", vip, "--op", "put", "--size", "10485760", "--timeout", "120s")
			if g.Bytes != 10<<20 || p.Bytes != 10<<20 {
				t.Errorf("10 MB each way: got %d bytes down, %d up", g.Bytes, p.Bytes)
			}
			t.Logf("10 MB down in %d ms, up in %d ms", g.ElapsedMS, p.ElapsedMS)

			u := vmnet.Dial(t, f.tp.Client, "--udp", "--addr", vip, "--count", "20")
			// rr alternates per connection: 10/10, unless the client's kernel gave a later
			// socket a port an earlier one had, whose connection (and real server) it then
			// meets again; each such reuse is a peer fewer and may move the split by 2
			slack := 2 * (20 - len(u.Peers))
			if d := u.Servers["rs1"] - u.Servers["rs2"]; u.OK != 20 || u.Servers["rs1"]+u.Servers["rs2"] != 20 || d > slack || -d > slack {
				t.Errorf("UDP: want 20 replies split 10/10 (within %d for reused client ports), got %+v", slack, u)
			}
			onlyFrom(t, "UDP", u, sd.laddrs)

			las, err := f.ic.laddrs(tcp)
			if err != nil {
				t.Fatalf("GET_LADDR: %v", err)
			}
			if len(las) != len(sd.laddrs) {
				t.Fatalf("GET_LADDR: got %d local addresses, want %d: %+v", len(las), len(sd.laddrs), las)
			}
			var bound uint32
			for i, la := range las {
				if la.addr != sd.laddrs[i] {
					t.Errorf("GET_LADDR entry %d is %s, want %s", i, la.addr, sd.laddrs[i])
				}
				bound += la.connCounts
			}
			if bound == 0 {
				t.Errorf("GET_LADDR: no connection counted on the local addresses: %+v", las)
			}

			fnat := d.Run(t, "/bin/cat", "/proc/net/ip_vs_conn_fnat")
			if !strings.HasPrefix(fnat, "Pro FromIP   FPrt ToIP     TPrt LocalIP  LPrt DestIP   DPrt State       Expires\n") {
				t.Errorf("/proc/net/ip_vs_conn_fnat header: %q", strings.SplitN(fnat, "\n", 2)[0])
			}
			if strings.Count(fnat, "\n") < 2 {
				t.Errorf("/proc/net/ip_vs_conn_fnat lists no connection:\n%s", fnat)
			}
			// The stock file and Debian's ipvsadm keep working.
			conns := d.Run(t, cipvsadm, "-Lnc")
			if !strings.Contains(conns, "TIME_WAIT") && !strings.Contains(conns, "ESTABLISHED") &&
				!strings.Contains(conns, "CLOSE") && !strings.Contains(conns, "FIN_WAIT") {
				t.Errorf("ipvsadm -Lnc shows no TCP connection:\n%s", conns)
			}
			t.Logf("ipvsadm -Ln --stats:\n%s", d.Run(t, cipvsadm, "-Ln", "--stats"))
		})
	}
}
