// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package synproxy

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/inet"
	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
	"golang.org/x/sys/unix"
)

// The lifetime of what SYNPROXY keeps between the client's ACK and the real server's SYN-ACK:
// the client packets that wait, the retransmission timer, the connection itself.

// synproxyFullNAT creates a SYNPROXY FULLNAT service on the IPv4 VIP with the first real server
// (weight w) and the first local address.
func (f *fixture) synproxyFullNAT(t *testing.T, w int32) ipvs.Service {
	t.Helper()
	s := ipvs.Service{Protocol: ipvs.Protocol(6), Address: f.tp.VIP, Port: 80, Scheduler: "rr", Flags: ipvs.FlagSynProxy}
	if err := f.c.CreateService(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.c.DeleteService(context.Background(), s) })
	if err := f.c.CreateDestination(t.Context(), s, ipvs.Destination{Address: f.tp.ServerAddrs[0], Port: 80, ForwardMethod: ipvs.FullNAT, Weight: w}); err != nil {
		t.Fatal(err)
	}
	if err := f.c.CreateLocalAddress(t.Context(), s, ipvs.LocalAddress{Address: f.laddrs[0]}); err != nil {
		t.Fatal(err)
	}
	return s
}

// muteServer makes rs1 answer nothing to the director's local address: its SYN-ACKs go into a
// blackhole route until the returned function removes it.
func (f *fixture) muteServer(t *testing.T) (unmute func()) {
	t.Helper()
	rs := f.tp.Servers[0]
	rs.Run(t, vmnet.IP, "route", "add", "blackhole", f.laddrs[0].String()+"/32")
	done := false
	unmute = func() {
		if !done {
			done = true
			rs.Run(t, vmnet.IP, "route", "del", "blackhole", f.laddrs[0].String()+"/32")
		}
	}
	t.Cleanup(unmute)
	return unmute
}

// countSYNs counts the SYNs to port 80 that c sees arrive within d.
func countSYNs(c *vmnet.Capture, d time.Duration) int {
	n := 0
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return n
		}
		_, err := c.Next(false, left, func(fr vmnet.Frame) bool {
			th, ok := tcpHeader(fr.Data)
			return ok && binary.BigEndian.Uint16(th[2:]) == 80 && th[13]&0x12 == 0x02
		})
		if err != nil {
			return n
		}
		n++
	}
}

// tcpHeader returns the TCP header of an IPv4 or IPv6 packet without extension headers.
func tcpHeader(b []byte) ([]byte, bool) {
	if len(b) < 1 {
		return nil, false
	}
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0xf) * 4
		if len(b) < ihl+20 || b[9] != unix.IPPROTO_TCP {
			return nil, false
		}
		return b[ihl:], true
	case 6:
		if len(b) < 60 || b[6] != unix.IPPROTO_TCP {
			return nil, false
		}
		return b[40:], true
	}
	return nil, false
}

// dialIn connects from ns to addr with Go's dialer (SYNPROXY completes the handshake itself).
func dialIn(t *testing.T, ns vmnet.NS, addr netip.AddrPort) *net.TCPConn {
	t.Helper()
	var c net.Conn
	err := vmnet.InNetns(string(ns), func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr.String(), 5*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("connecting to %v: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

// TestSynProxyRSTStopsRetries: a client that gives up (RST) before the real server answered
// stops the director's SYN retransmissions to it; without that they went on for
// synproxy_syn_retry rounds, 3 s apart, holding the connection.
func TestSynProxyRSTStopsRetries(t *testing.T) {
	f := newFixture(t)
	f.synproxyFullNAT(t, 1)
	f.muteServer(t)
	onRS := vmnet.OpenCapture(t, f.tp.Servers[0], "eth0")
	c := dialIn(t, f.tp.Client, netip.AddrPortFrom(f.tp.VIP, 80))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if n := countSYNs(onRS, time.Second); n < 1 {
		t.Fatalf("the real server saw no SYN from the director")
	}
	if err := c.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	_ = c.Close() // RST
	// What was on its way before the RST (a resend the client's own retransmission
	// triggered, on a slow kernel) is not counted; the timer's resends come 3 s apart.
	countSYNs(onRS, 300*time.Millisecond)
	if n := countSYNs(onRS, 8*time.Second); n != 0 {
		t.Errorf("the director sent the real server %d more SYNs after the client's RST, want 0", n)
	}
}

// TestSynProxyNoServerResets: a valid cookie for a service that then has no real server to give
// (its only one quiesced) gets a RST, not silence: the client learns at once.
func TestSynProxyNoServerResets(t *testing.T) {
	f := newFixture(t)
	f.synproxyFullNAT(t, 0)
	// The RST answers the handshake's ACK: it may reach the client before connect() returns,
	// or before the write, which then reports the reset itself (the read after it sees EOF).
	err := vmnet.InNetns(string(f.tp.Client), func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(f.tp.VIP, 80).String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte("hello")); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err = c.Read(make([]byte, 16))
		return err
	})
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("a connection without a real server: %v, want ECONNRESET", err)
	}
}

// TestSynProxyQueuedDeviceGone: client data waiting for the real server outlives the device it
// came in on: the waiting packets hold no reference to it (its deletion completes) and are
// delivered once the real server answers.
func TestSynProxyQueuedDeviceGone(t *testing.T) {
	f := newFixture(t)
	d := f.tp.Director
	f.synproxyFullNAT(t, 1)
	unmute := f.muteServer(t)
	// The real server's listener: what reaches it, it reports.
	got := make(chan string, 1)
	rsAddr := netip.AddrPortFrom(f.tp.ServerAddrs[0], 81)
	s81 := ipvs.Service{Protocol: ipvs.Protocol(6), Address: f.tp.VIP, Port: 81, Scheduler: "rr", Flags: ipvs.FlagSynProxy}
	if err := f.c.CreateService(t.Context(), s81); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.c.DeleteService(context.Background(), s81) })
	if err := f.c.CreateDestination(t.Context(), s81, ipvs.Destination{Address: rsAddr.Addr(), Port: 81, ForwardMethod: ipvs.FullNAT, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	if err := f.c.CreateLocalAddress(t.Context(), s81, ipvs.LocalAddress{Address: f.laddrs[0]}); err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := vmnet.InNetns(string(f.tp.Servers[0]), func() error {
		var err error
		ln, err = net.Listen("tcp", rsAddr.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		b, err := io.ReadAll(io.LimitReader(c, 5))
		if err != nil {
			got <- "read: " + err.Error()
			return
		}
		got <- string(b)
	}()

	c := dialIn(t, f.tp.Client, netip.AddrPortFrom(f.tp.VIP, 81))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	d.Run(t, vmnet.IP, "link", "del", "c0")
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("deleting the client's device took %v: something holds it", el)
	}
	unmute()
	// The next SYN retransmission (3 s after the first) is answered.
	select {
	case s := <-got:
		if s != "hello" {
			t.Errorf("the real server got %q, want the client's queued hello", s)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("the queued client data never reached the real server")
	}
}

// TestSynProxyCapturedIngress: SYNPROXY connections while a packet socket captures on the
// director's client-facing device, so the client's packets arrive cloned and every pointer
// into one must be taken again after it is made writable (the sanitizer kernel checks this).
func TestSynProxyCapturedIngress(t *testing.T) {
	f := newFixture(t)
	_ = vmnet.OpenCapture(t, f.tp.Director, "c0")
	f.eachService(t, func(t *testing.T, vip netip.Addr) {
		addr := netip.AddrPortFrom(vip, 80).String()
		h := vmnet.Dial(t, f.tp.Client, "--addr", addr, "--count", "20", "--parallel", "4")
		g := vmnet.Dial(t, f.tp.Client, "--addr", addr, "--op", "get", "--size", "1048576", "--timeout", "60s")
		p := vmnet.Dial(t, f.tp.Client, "--addr", addr, "--op", "put", "--size", "1048576", "--timeout", "60s")
		if h.OK != 20 || g.Bytes != 1<<20 || p.Bytes != 1<<20 {
			t.Errorf("with a capture on the ingress: hello %d/20, get %d, put %d bytes (%v %v %v)",
				h.OK, g.Bytes, p.Bytes, h.Errors, g.Errors, p.Errors)
		}
	})
}

// TestSynProxyRefusedCombinations: SYNPROXY cannot work on UDP or with real servers whose
// replies bypass the director (DR, tunnels); the kernel refuses each combination, in either
// order, with an error the tools name, and nothing is half-applied.
func TestSynProxyRefusedCombinations(t *testing.T) {
	f := newFixture(t)
	d := f.tp.Director
	ours := vmnet.Bin + "/ipvsadm"
	vip := f.tp.VIP.String()
	rs := f.tp.ServerAddrs[0].String()
	fail := func(want string, args ...string) {
		t.Helper()
		out, err := d.Try(append([]string{ours}, args...)...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("ipvsadm %s: %v, want a failure\n%s", strings.Join(args, " "), err, out)
		}
		if !strings.Contains(out, want) {
			t.Errorf("ipvsadm %s said %q, want %q", strings.Join(args, " "), out, want)
		}
	}
	ok := func(args ...string) {
		t.Helper()
		d.Run(t, append([]string{ours}, args...)...)
	}
	// UDP
	fail("SYNPROXY needs a TCP service", "-A", "-u", vip+":53", "-s", "rr", "-j", "enable")
	if out := d.Run(t, ours, "-Ln"); strings.Contains(out, "UDP") {
		t.Errorf("a refused UDP service was created:\n%s", out)
	}
	// flag first, then a DR or tunnel real server
	ok("-A", "-t", vip+":80", "-s", "rr", "-j", "enable")
	fail("NAT (-m) or FULLNAT (-b) real servers only", "-a", "-t", vip+":80", "-r", rs+":80", "-g")
	fail("NAT (-m) or FULLNAT (-b) real servers only", "-a", "-t", vip+":80", "-r", rs+":80", "-i")
	ok("-a", "-t", vip+":80", "-r", rs+":80", "-m")
	fail("NAT (-m) or FULLNAT (-b) real servers only", "-e", "-t", vip+":80", "-r", rs+":80", "-g")
	// real server first, then the flag
	ok("-A", "-t", vip+":81", "-s", "rr")
	ok("-a", "-t", vip+":81", "-r", rs+":81", "-g")
	fail("SYNPROXY needs a TCP service", "-E", "-t", vip+":81", "-s", "rr", "-j", "enable")
	out := d.Run(t, ours, "-Ln")
	if !strings.Contains(out, vip+":80 rr synproxy") || strings.Contains(out, vip+":81 rr synproxy") {
		t.Errorf("after the refusals:\n%s", out)
	}
	if !strings.Contains(out, rs+":80") || !strings.Contains(out, "Masq") {
		t.Errorf("the NAT real server of the SYNPROXY service is missing or changed:\n%s", out)
	}
	// the library's sentinel
	s := ipvs.Service{Protocol: ipvs.Protocol(17), Address: f.tp.VIP, Port: 54, Scheduler: "rr", Flags: ipvs.FlagSynProxy}
	if err := f.c.CreateService(t.Context(), s); !errors.Is(err, ipvs.ErrSynProxyNotAllowed) {
		t.Errorf("library: UDP SYNPROXY service: %v, want ErrSynProxyNotAllowed", err)
	}
}

// TestSynProxySynAckBare: a SYN with IPv4 options, or IPv6 extension headers, is answered with a
// SYN-ACK that carries none of them (the options were reflected back, and SYNs with extension
// headers went unanswered).
func TestSynProxySynAckBare(t *testing.T) {
	f := newFixture(t)
	f.service(t, f.tp.VIP, ipvs.FullNAT, true)
	f.service(t, f.tp.VIP6, ipvs.FullNAT, true)
	onClient := vmnet.OpenCapture(t, f.tp.Client, "eth0")
	for i, tc := range []struct {
		name     string
		src, dst netip.Addr
	}{
		{"IPv4 options", f.tp.ClientAddr, f.tp.VIP},
		{"IPv6 destination options", f.tp.ClientAddr6, f.tp.VIP6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sport := uint16(43000 + i)
			if err := vmnet.SendRaw(f.tp.Client, synWithExtras(tc.src, tc.dst, sport), tc.dst); err != nil {
				t.Fatal(err)
			}
			fr, err := onClient.Next(false, 3*time.Second, func(fr vmnet.Frame) bool {
				b := fr.Data
				if len(b) > 0 && b[0]>>4 == 6 && len(b) >= 42 && b[6] == 60 {
					return binary.BigEndian.Uint16(b[48+2:]) == sport // with a header
				}
				th, ok := tcpHeader(b)
				return ok && binary.BigEndian.Uint16(th[2:]) == sport
			})
			if err != nil {
				t.Fatalf("no SYN-ACK: %v", err)
			}
			b := fr.Data
			th, ok := tcpHeader(b)
			if !ok {
				t.Fatalf("SYN-ACK with IP options or extension headers: % x", b[:min(len(b), 64)])
			}
			if th[13] != 0x12 {
				t.Errorf("answer has flags %#x, want SYN-ACK", th[13])
			}
			var tcpLen int
			if tc.dst.Is4() {
				tcpLen = int(binary.BigEndian.Uint16(b[2:])) - 20
			} else {
				tcpLen = int(binary.BigEndian.Uint16(b[4:]))
			}
			if tcpLen != int(th[12]>>4)*4 || tcpLen > len(th) {
				t.Fatalf("SYN-ACK of %d bytes after the IP header, its TCP header is %d (%d captured)", tcpLen, int(th[12]>>4)*4, len(th))
			}
			if inet.L4Checksum(tc.dst, tc.src, unix.IPPROTO_TCP, th[:tcpLen]) != 0 {
				t.Errorf("SYN-ACK checksum wrong")
			}
		})
	}
}

// synWithExtras builds a SYN (MSS 1460) from src:sport to dst:80 with 4 bytes of IPv4 options
// (NOP NOP NOP EOL) or an IPv6 destination-options header (PadN).
func synWithExtras(src, dst netip.Addr, sport uint16) []byte {
	tcp := make([]byte, 24)
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], 80)
	binary.BigEndian.PutUint32(tcp[4:], 0x20000000)
	tcp[12] = 6 << 4
	tcp[13] = 0x02
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	copy(tcp[20:], []byte{2, 4, 0x05, 0xb4})
	binary.BigEndian.PutUint16(tcp[16:], inet.L4Checksum(src, dst, unix.IPPROTO_TCP, tcp))
	if src.Is4() {
		ip := make([]byte, 24)
		ip[0] = 0x46
		binary.BigEndian.PutUint16(ip[2:], uint16(24+len(tcp)))
		binary.BigEndian.PutUint16(ip[4:], 0x4321)
		ip[8] = 64
		ip[9] = unix.IPPROTO_TCP
		copy(ip[12:], src.AsSlice())
		copy(ip[16:], dst.AsSlice())
		copy(ip[20:], []byte{1, 1, 1, 0})
		binary.BigEndian.PutUint16(ip[10:], inet.Checksum(ip))
		return append(ip, tcp...)
	}
	ip := make([]byte, 40)
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(8+len(tcp)))
	ip[6] = 60 // destination options
	ip[7] = 64
	copy(ip[8:], src.AsSlice())
	copy(ip[24:], dst.AsSlice())
	opts := []byte{unix.IPPROTO_TCP, 0, 1, 4, 0, 0, 0, 0} // PadN of 4
	return append(append(ip, opts...), tcp...)
}

// TestSynProxyTeardownWithRetries: a namespace whose director still retries a SYN to a real
// server that never answers goes away at once, and IPVS unloads after it; the retransmission
// timer's reference made the namespace's connection flush spin until the retries ran out.
func TestSynProxyTeardownWithRetries(t *testing.T) {
	f := newFixture(t)
	f.synproxyFullNAT(t, 1)
	f.muteServer(t)
	onRS := vmnet.OpenCapture(t, f.tp.Servers[0], "eth0")
	c := dialIn(t, f.tp.Client, netip.AddrPortFrom(f.tp.VIP, 80))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if n := countSYNs(onRS, 500*time.Millisecond); n != 1 {
		t.Fatalf("the real server saw %d SYNs, want 1", n)
	}
	_ = f.c.Close() // its socket holds the namespace
	start := time.Now()
	if out, err := exec.Command(vmnet.IP, "netns", "del", string(f.tp.Director)).CombinedOutput(); err != nil {
		t.Fatalf("deleting the director's namespace: %v\n%s", err, out)
	}
	loaded := func() bool {
		b, err := os.ReadFile("/proc/modules")
		return err != nil || strings.HasPrefix(string(b), "ip_vs ") || strings.Contains(string(b), "\nip_vs ")
	}
	for loaded() && time.Since(start) < 30*time.Second {
		_ = exec.Command("/sbin/rmmod", "ip_vs_rr").Run()
		if exec.Command("/sbin/rmmod", "ip_vs").Run() != nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	el := time.Since(start)
	if loaded() {
		t.Fatalf("ip_vs still loaded 30 s after its last service's namespace went")
	}
	t.Logf("namespace gone and ip_vs unloaded in %v", el.Round(time.Millisecond))
	if el > 5*time.Second {
		t.Errorf("the namespace with a pending SYN retry took %v to go, want under 5 s (the retries last 9)", el)
	}
}
