// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package fullnat

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/flood"
	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TestFullNATNoLaddr: a FULLNAT service without local addresses refuses connections and counts
// them.
func TestFullNATNoLaddr(t *testing.T) {
	f := newFixture(t, 1)
	f.fullnatService(t, unix.IPPROTO_TCP, f.tp.VIP, f.tp.ServerAddrs, nil)
	vip := netip.AddrPortFrom(f.tp.VIP, 80).String()
	before := vmnet.ExtStats(t, f.tp.Director)["fullnat_no_laddr"]
	s, _, err := vmnet.TryDial(f.tp.Client, "--addr", vip, "--count", "2", "--timeout", "2s")
	if err == nil || s.OK != 0 {
		t.Errorf("connections through a FULLNAT service without local addresses succeeded: %+v", s)
	}
	if after := vmnet.ExtStats(t, f.tp.Director)["fullnat_no_laddr"]; after <= before {
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
	before := vmnet.ExtStats(t, d)["fullnat_lport_exhausted"]
	if s, _, err := vmnet.TryDial(f.tp.Client, "--addr", vip, "--count", "1", "--timeout", "2s"); err == nil {
		t.Errorf("an eleventh connection succeeded with two local addresses of five ports: %+v", s)
	}
	if after := vmnet.ExtStats(t, d)["fullnat_lport_exhausted"]; after <= before {
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

// holdConns opens n TCP connections from ns to vip one after the other and keeps them open (the
// real server waits for a request line); they are closed when the test ends.
func holdConns(t *testing.T, ns vmnet.NS, vip netip.AddrPort, n int) []*net.TCPConn {
	t.Helper()
	var conns []*net.TCPConn
	err := vmnet.InNetns(string(ns), func() error {
		for i := 0; i < n; i++ {
			c, err := net.DialTimeout("tcp", vip.String(), 5*time.Second)
			if err != nil {
				return fmt.Errorf("connection %d of %d: %w", i+1, n, err)
			}
			conns = append(conns, c.(*net.TCPConn))
		}
		return nil
	})
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return conns
}

func clientPort(c net.Conn) int { return c.LocalAddr().(*net.TCPAddr).Port }

// fnatLports reads /proc/net/ip_vs_conn_fnat in ns: the local port of each IPv4 connection by its
// client port.
func fnatLports(t *testing.T, ns vmnet.NS) map[int]int {
	t.Helper()
	m := map[int]int{}
	for _, line := range strings.Split(ns.Run(t, "/bin/cat", "/proc/net/ip_vs_conn_fnat"), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 9 || len(f[1]) != 8 {
			continue
		}
		cport, err1 := strconv.ParseUint(f[2], 16, 16)
		lport, err2 := strconv.ParseUint(f[6], 16, 16)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad line in ip_vs_conn_fnat: %q", line)
		}
		m[int(cport)] = int(lport)
	}
	return m
}

// dialRefused connects from ns to vip and wants ECONNREFUSED (a RST) within a second.
func dialRefused(t *testing.T, ns vmnet.NS, vip netip.AddrPort, what string) {
	t.Helper()
	start := time.Now()
	err := vmnet.InNetns(string(ns), func() error {
		c, err := net.DialTimeout("tcp", vip.String(), 5*time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err
	})
	elapsed := time.Since(start)
	if !errors.Is(err, syscall.ECONNREFUSED) || elapsed > time.Second {
		t.Errorf("%s: connect got %v after %v, want ECONNREFUSED (a RST) within a second", what, err, elapsed)
	}
}

// TestFullNATPortsFindFree: with a 100-port range and fullnat_lport_tries at its minimum (10), a
// local address with 95 ports held still gives the 5 free ones to the next 5 connections, wherever
// they are; the port search is not a walk of at most fullnat_lport_tries ports from a cursor. With
// all 100 taken, the next client gets a RST at once and fullnat_lport_exhausted grows.
func TestFullNATPortsFindFree(t *testing.T) {
	f := newFixture(t, 1)
	d := f.tp.Director
	d.Sysctl(t, "net.ipv4.vs.fullnat_lport_min", "40000")
	d.Sysctl(t, "net.ipv4.vs.fullnat_lport_max", "40099")
	d.Sysctl(t, "net.ipv4.vs.fullnat_lport_tries", "10")
	s := f.fullnatService(t, unix.IPPROTO_TCP, f.tp.VIP, f.tp.ServerAddrs, f.laddrs[:1])
	vip := netip.AddrPortFrom(f.tp.VIP, 80)

	conns := holdConns(t, f.tp.Client, vip, 100)
	lports := fnatLports(t, d)
	last, ok := lports[clientPort(conns[len(conns)-1])]
	if !ok || len(lports) != 100 {
		t.Fatalf("ip_vs_conn_fnat lists %d connections (want 100), the last one's port found: %v", len(lports), ok)
	}
	// Free the five ports 40 to 44 places after the last one taken: an allocator that walks on
	// from a cursor for at most 10 ports does not reach them.
	var freed []int
	for _, c := range conns {
		lp, ok := lports[clientPort(c)]
		if !ok {
			t.Fatalf("no ip_vs_conn_fnat entry for client port %d", clientPort(c))
		}
		if off := (lp - last + 100) % 100; off >= 40 && off < 45 {
			freed = append(freed, clientPort(c))
			_ = c.SetLinger(0) // close with a RST: the director's entry goes after 10 s (CLOSE)
			_ = c.Close()
		}
	}
	if len(freed) != 5 {
		t.Fatalf("found %d connections to release, want 5: %v", len(freed), lports)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		now := fnatLports(t, d)
		gone := 0
		for _, cp := range freed {
			if _, ok := now[cp]; !ok {
				gone++
			}
		}
		if gone == len(freed) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the director still holds %d of the released connections after 30 s", len(freed)-gone)
		}
		time.Sleep(500 * time.Millisecond)
	}
	before := vmnet.ExtStats(t, d)["fullnat_lport_exhausted"]
	sum, out, err := vmnet.TryDial(f.tp.Client, "--addr", vip.String(), "--count", "5", "--timeout", "3s")
	if err != nil || sum.OK != 5 {
		t.Errorf("95 of 100 ports held: 5 more connections: %+v, %v\n%s", sum, err, out)
	}
	if after := vmnet.ExtStats(t, d)["fullnat_lport_exhausted"]; after != before {
		t.Errorf("fullnat_lport_exhausted grew from %d to %d while ports were free", before, after)
	}

	// All 100 ports are held now (95 open, 5 in TIME_WAIT).
	dialRefused(t, f.tp.Client, vip, "all 100 ports held")
	if after := vmnet.ExtStats(t, d)["fullnat_lport_exhausted"]; after <= before {
		t.Errorf("fullnat_lport_exhausted did not grow: %d -> %d", before, after)
	}
	las, err := f.ic.laddrs(s)
	if err != nil || len(las) != 1 || las[0].connCounts != 100 || las[0].portConflict == 0 {
		t.Errorf("GET_LADDR: want 100 connections and a refusal counted, got %+v, %v", las, err)
	}
}

// TestFullNATPortsRandom: local ports are chosen at random in the range (RFC 6056), not one
// after the other: 50 connections in a row get ports spread over the range.
func TestFullNATPortsRandom(t *testing.T) {
	f := newFixture(t, 1)
	f.fullnatService(t, unix.IPPROTO_TCP, f.tp.VIP, f.tp.ServerAddrs, f.laddrs[:1])
	vip := netip.AddrPortFrom(f.tp.VIP, 80).String()
	s := vmnet.Dial(t, f.tp.Client, "--addr", vip, "--count", "50", "--parallel", "1")
	var ports []int
	for peer := range s.Peers {
		ap, err := netip.ParseAddrPort(peer)
		if err != nil {
			t.Fatalf("peer %q: %v", peer, err)
		}
		ports = append(ports, int(ap.Port()))
	}
	if len(ports) != 50 {
		t.Fatalf("the real server saw %d distinct local ports over 50 connections: %v", len(ports), s.Peers)
	}
	sort.Ints(ports)
	steps := map[int]bool{}
	for i := 1; i < len(ports); i++ {
		steps[ports[i]-ports[i-1]] = true
	}
	// Default range 5000-65535: 50 random ports span tens of thousands; a cursor gives 50 in a row.
	if span := ports[len(ports)-1] - ports[0]; span < 5000 || len(steps) < 10 {
		t.Errorf("50 connections' local ports look sequential (span %d, %d distinct steps): %v", span, len(steps), ports)
	}
}

// TestFullNATRefuse: with no free local port (a one-port range), a TCP client gets a RST and a UDP
// client an ICMP port unreachable, IPv4 and IPv6; so does a client of a service without local
// addresses.
func TestFullNATRefuse(t *testing.T) {
	f := newFixture(t, 1)
	d := f.tp.Director
	d.Sysctl(t, "net.ipv4.vs.fullnat_lport_min", "40000")
	d.Sysctl(t, "net.ipv4.vs.fullnat_lport_max", "40000")
	for _, sd := range f.sides() {
		t.Run(sd.name, func(t *testing.T) {
			t.Cleanup(func() { d.Run(t, cipvsadm, "-C") })
			f.fullnatService(t, unix.IPPROTO_TCP, sd.vip, sd.rss, sd.laddrs[:1])
			f.fullnatService(t, unix.IPPROTO_UDP, sd.vip, sd.rss, sd.laddrs[:1])
			vip := netip.AddrPortFrom(sd.vip, 80)
			holdConns(t, f.tp.Client, vip, 1)
			before := vmnet.ExtStats(t, d)["fullnat_lport_exhausted"]
			dialRefused(t, f.tp.Client, vip, "TCP, the only port held")
			if _, _, err := vmnet.UDPExchange(f.tp.Client, vip, []byte("one"), 3*time.Second); err != nil {
				t.Fatalf("UDP, the port free: %v", err)
			}
			if _, _, err := vmnet.UDPExchange(f.tp.Client, vip, []byte("two"), 3*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("UDP, the only port held: got %v, want ECONNREFUSED (ICMP port unreachable)", err)
			}
			if after := vmnet.ExtStats(t, d)["fullnat_lport_exhausted"]; after < before+2 {
				t.Errorf("fullnat_lport_exhausted: %d -> %d, want 2 more", before, after)
			}
		})
	}
	t.Run("no local address", func(t *testing.T) {
		f.fullnatService(t, unix.IPPROTO_TCP, f.tp.VIP, f.tp.ServerAddrs, nil)
		dialRefused(t, f.tp.Client, netip.AddrPortFrom(f.tp.VIP, 80), "no local address")
	})
}

// TestFullNATLaddrNotLocal: NEW_LADDR of an address the director does not have fails with
// EADDRNOTAVAIL and a message, through netlink, the library and ipvsadm; once the address is
// configured it is accepted. An ESTABLISHED timeout above 31 days is refused with EINVAL.
func TestFullNATLaddrNotLocal(t *testing.T) {
	f := newFixture(t, 1)
	d := f.tp.Director
	c, err := ipvs.NewInNamespace("/run/netns/" + string(d))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		name      string
		proto     uint16
		vip, addr netip.Addr
		flag      string
	}{
		{"IPv4", unix.IPPROTO_TCP, f.tp.VIP, netip.MustParseAddr("198.51.100.199"), "-t"},
		{"IPv6", unix.IPPROTO_UDP, f.tp.VIP6, netip.MustParseAddr("2001:db8:2::199"), "-u"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := f.fullnatService(t, tc.proto, tc.vip, nil, nil)
			err := f.ic.addLaddr(s, tc.addr)
			var oe *netlink.OpError
			if errno(err) != unix.EADDRNOTAVAIL || !errors.As(err, &oe) || !strings.Contains(oe.Message, "not an address of the director") {
				t.Errorf("netlink NEW_LADDR %s: got %v, want EADDRNOTAVAIL with a message", tc.addr, err)
			}
			svcs, err := c.Services(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var svc ipvs.Service
			for _, x := range svcs {
				if x.Address == tc.vip && x.Protocol == ipvs.Protocol(tc.proto) {
					svc = x
				}
			}
			err = c.CreateLocalAddress(t.Context(), svc, ipvs.LocalAddress{Address: tc.addr})
			if !errors.Is(err, syscall.EADDRNOTAVAIL) || !strings.Contains(err.Error(), "not an address of the director") {
				t.Errorf("library CreateLocalAddress %s: got %v, want EADDRNOTAVAIL with the kernel's message", tc.addr, err)
			}
			vs := netip.AddrPortFrom(tc.vip, 80).String()
			out, err := d.Try(vmnet.Bin+"/ipvsadm", "-P", tc.flag, vs, "-z", tc.addr.String())
			if err == nil || !strings.Contains(out, "Local address is not an address of this director") {
				t.Errorf("ipvsadm -P %s: got %v\n%s", tc.addr, err, out)
			}
			t.Logf("ipvsadm -P %s: %v: %s", tc.addr, err, strings.TrimSpace(out))
			bits := "/24"
			if tc.addr.Is6() {
				bits = "/64"
			}
			d.Addr(t, "br0", tc.addr.String()+bits)
			if out, err := d.Try(vmnet.Bin+"/ipvsadm", "-P", tc.flag, vs, "-z", tc.addr.String()); err != nil {
				t.Errorf("ipvsadm -P %s once the director has it: %v\n%s", tc.addr, err, out)
			}
		})
	}

	s := service{proto: unix.IPPROTO_TCP, vip: netip.AddrPortFrom(f.tp.VIP, 81)}
	for _, est := range []uint32{31*86400 + 1, 1 << 31, 0xffffffff} {
		err := f.ic.newService(s, est)
		var oe *netlink.OpError
		if errno(err) != unix.EINVAL || !errors.As(err, &oe) || !strings.Contains(oe.Message, "ESTABLISHED timeout") {
			t.Errorf("NEW_SERVICE with an ESTABLISHED timeout of %d s: got %v, want EINVAL with a message", est, err)
		}
	}
	if err := f.ic.newService(s, 31*86400); err != nil {
		t.Errorf("NEW_SERVICE with an ESTABLISHED timeout of 31 days: %v", err)
	}
	bad := ipvs.Service{Family: ipvs.INET, Protocol: ipvs.TCP, Address: f.tp.VIP, Port: 82, Scheduler: "rr",
		Netmask: 0xffffffff, EstablishedTimeout: 31*86400 + 1}
	if err := c.CreateService(t.Context(), bad); !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "ESTABLISHED timeout") {
		t.Errorf("library CreateService with an ESTABLISHED timeout above 31 days: got %v", err)
	}
}

// softirqTicks is the VM's time in softirq so far (/proc/stat, USER_HZ ticks).
func softirqTicks(t *testing.T, ns vmnet.NS) uint64 {
	t.Helper()
	line, _, _ := strings.Cut(ns.Run(t, "/bin/cat", "/proc/stat"), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		t.Fatalf("/proc/stat: %q", line)
	}
	v, err := strconv.ParseUint(f[7], 10, 64)
	if err != nil {
		t.Fatalf("/proc/stat: %q: %v", line, err)
	}
	return v
}

// TestFullNATPortsFlood: a SYN flood on a FULLNAT service without SYNPROXY fills a 2000-port range
// with half-open connections and every SYN after that is refused; a genuine client then gets a
// RST at once. It logs what the flood cost (its rate, the VM's softirq time): each refused SYN is
// one search of the range, at most 2000/64 word reads.
func TestFullNATPortsFlood(t *testing.T) {
	count, ports := 20000, 2000
	if os.Getenv("RIG_DEBUG") == "1" {
		// the sanitizer kernel takes about 105 SYNs/s: 20000 would outlast the first
		// connections' SYN_RECV timeout (60 s), and the suite its time
		count, ports = 2000, 200
	}
	f := newFixture(t, 1)
	d := f.tp.Director
	d.Sysctl(t, "net.ipv4.vs.fullnat_lport_min", "40000")
	d.Sysctl(t, "net.ipv4.vs.fullnat_lport_max", strconv.Itoa(40000+ports-1))
	s := f.fullnatService(t, unix.IPPROTO_TCP, f.tp.VIP, f.tp.ServerAddrs, f.laddrs[:1])
	vip := netip.AddrPortFrom(f.tp.VIP, 80)
	before := vmnet.ExtStats(t, d)["fullnat_lport_exhausted"]
	si := softirqTicks(t, d)
	start := time.Now()
	var r flood.Result
	err := vmnet.InNetns(string(f.tp.Client), func() error {
		var err error
		r, err = flood.Run(flood.Config{Target: vip, Count: count, Flags: flood.SYN, Workers: 1})
		return err
	})
	if err != nil {
		t.Fatalf("flood: %v", err)
	}
	// until the director has seen the last SYN
	var refused uint64
	for last := uint64(1 << 63); ; time.Sleep(time.Second) {
		refused = vmnet.ExtStats(t, d)["fullnat_lport_exhausted"] - before
		if refused == last || time.Since(start) > 3*time.Minute {
			break
		}
		last = refused
	}
	took := time.Since(start)
	si = softirqTicks(t, d) - si
	las, err := f.ic.laddrs(s)
	if err != nil || len(las) != 1 {
		t.Fatalf("GET_LADDR: %+v, %v", las, err)
	}
	t.Logf("%d spoofed SYNs sent in %v (%.0f/s), all handled in %v: %d connections hold ports, %d refused; softirq %.2f s",
		r.Sent, r.Elapsed.Round(time.Millisecond), r.Rate(), took.Round(time.Millisecond), las[0].connCounts, refused, float64(si)/100)
	if las[0].connCounts != uint32(ports) || refused < uint64(r.Sent-ports)*9/10 {
		t.Errorf("after %d SYNs: %d connections (want %d), %d refused (want about %d)", r.Sent, las[0].connCounts, ports, refused, r.Sent-ports)
	}
	dialRefused(t, f.tp.Client, vip, "after the flood")
}
