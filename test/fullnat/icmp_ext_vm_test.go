// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package fullnat

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/inet"
	"github.com/fullnat/fullnat/internal/vmnet"
	"golang.org/x/sys/unix"
)

// dstOpts is an IPv6 Destination Options header of 8 bytes (one PadN option) whose next header
// is nh.
func dstOpts(nh byte) []byte { return []byte{nh, 0, 1, 4, 0, 0, 0, 0} }

// icmp6UnreachExt builds, from client to vip, an ICMPv6 "port unreachable" with a Destination
// Options header between the IPv6 and the ICMPv6 header, about a segment or datagram of
// protocol proto vip -> client. A TCP quote carries sequence number seq.
func icmp6UnreachExt(proto byte, client, vip netip.AddrPort, seq uint32) []byte {
	l4 := make([]byte, 8)
	if proto == unix.IPPROTO_TCP {
		l4 = make([]byte, 20)
		binary.BigEndian.PutUint32(l4[4:], seq)
		l4[12] = 5 << 4
		l4[13] = 0x18
	} else {
		binary.BigEndian.PutUint16(l4[4:], 8+5)
	}
	binary.BigEndian.PutUint16(l4[0:], vip.Port())
	binary.BigEndian.PutUint16(l4[2:], client.Port())
	quote := inet.Header{Src: vip.Addr(), Dst: client.Addr(), Proto: proto, TTL: 64, PayloadLen: len(l4) + 5}.Marshal()
	icmp := inet.ICMP(client.Addr(), vip.Addr(), 1, 4, 0, append(quote, l4...))
	ext := dstOpts(unix.IPPROTO_ICMPV6)
	ip := inet.Header{Src: client.Addr(), Dst: vip.Addr(), Proto: unix.IPPROTO_DSTOPTS, TTL: 64, PayloadLen: len(ext) + len(icmp)}.Marshal()
	return append(append(ip, ext...), icmp...)
}

// icmp6Seen is an ICMPv6 error a real server received, parsed through extension headers.
type icmp6Seen struct {
	src, dst     netip.Addr
	hops         uint8
	exts         []byte // the extension headers before ICMPv6, by type
	typ, code    uint8
	icmpLen      int
	checksumOK   bool
	inProto      uint8
	inSrc, inDst netip.AddrPort
	seq          uint32
}

// parseICMP6Ext reads b as an IPv6 packet carrying an ICMPv6 error, after any hop-by-hop,
// routing or destination options headers.
func parseICMP6Ext(b []byte) (e icmp6Seen, ok bool) {
	if len(b) < 40 || b[0]>>4 != 6 {
		return e, false
	}
	end := 40 + int(binary.BigEndian.Uint16(b[4:]))
	if end > len(b) {
		return e, false
	}
	nh, off := b[6], 40
	for nh == unix.IPPROTO_HOPOPTS || nh == unix.IPPROTO_ROUTING || nh == unix.IPPROTO_DSTOPTS {
		if off+8 > end {
			return e, false
		}
		e.exts = append(e.exts, nh)
		nh, off = b[off], off+(int(b[off+1])+1)*8
	}
	if nh != unix.IPPROTO_ICMPV6 || off+8+40+8 > end || b[off] >= 128 {
		return e, false
	}
	e.src = netip.AddrFrom16([16]byte(b[8:24]))
	e.dst = netip.AddrFrom16([16]byte(b[24:40]))
	e.hops = b[7]
	icmp := b[off:end]
	e.typ, e.code, e.icmpLen = icmp[0], icmp[1], len(icmp)
	e.checksumOK = inet.L4Checksum(e.src, e.dst, unix.IPPROTO_ICMPV6, icmp) == 0
	in := icmp[8:]
	e.inProto = in[6]
	e.inSrc = netip.AddrPortFrom(netip.AddrFrom16([16]byte(in[8:24])), binary.BigEndian.Uint16(in[40:]))
	e.inDst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(in[24:40])), binary.BigEndian.Uint16(in[42:]))
	if e.inProto == unix.IPPROTO_TCP && len(in) >= 48 {
		e.seq = binary.BigEndian.Uint32(in[44:])
	}
	return e, true
}

// TestFullNATICMPv6ExtHeader: an ICMPv6 error from the client with a Destination Options header
// before the ICMPv6 header, about a FULLNAT reply (UDP and TCP), reaches the real server
// translated as an ICMPv6 error: local address -> real server outside, real server -> local
// address:port inside, hop limit one less, checksum valid, nothing added (TOA) or lost.
func TestFullNATICMPv6ExtHeader(t *testing.T) {
	f := newFixture(t, 1)
	vip, client := f.tp.VIP6, f.tp.ClientAddr6
	rs := netip.AddrPortFrom(f.tp.ServerAddrs6[0], 80)
	for _, proto := range []uint16{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
		name := map[uint16]string{unix.IPPROTO_UDP: "UDP", unix.IPPROTO_TCP: "TCP"}[proto]
		t.Run(name, func(t *testing.T) {
			s := f.fullnatService(t, proto, vip, f.tp.ServerAddrs6[:1], f.laddr6[:1])
			t.Cleanup(func() { f.tp.Director.Run(t, cipvsadm, "-C") })

			// A connection, and the local address and port the real server saw.
			var peer string
			cport := 41000
			if proto == unix.IPPROTO_UDP {
				reply, p, err := vmnet.UDPExchange(f.tp.Client, s.vip, []byte("hello"), 5*time.Second)
				if err != nil {
					t.Fatalf("UDP exchange: %v", err)
				}
				fs := strings.Fields(reply)
				if len(fs) != 2 {
					t.Fatalf("UDP reply %q", reply)
				}
				peer, cport = fs[1], p
			} else {
				var err error
				if _, peer, err = vmnet.HelloFrom(string(f.tp.Client), cport, s.vip); err != nil {
					t.Fatal(err)
				}
			}
			seen, err := netip.ParseAddrPort(peer)
			if err != nil {
				t.Fatalf("peer %q: %v", peer, err)
			}

			onRS := vmnet.OpenCapture(t, f.tp.Servers[0], "eth0")
			const seq = 0x12345678
			pkt := icmp6UnreachExt(byte(proto), netip.AddrPortFrom(client, uint16(cport)), s.vip, seq)
			sentLen := len(pkt) - 40 - 8
			if err := vmnet.SendRaw(f.tp.Client, pkt, vip); err != nil {
				t.Fatal(err)
			}
			var got icmp6Seen
			if _, err := onRS.Next(false, 5*time.Second, func(fr vmnet.Frame) bool {
				var ok bool
				got, ok = parseICMP6Ext(fr.Data)
				return ok
			}); err != nil {
				t.Fatalf("no ICMPv6 error reached the real server: %v", err)
			}
			t.Logf("on the real server: %s -> %s hops %d ext %v type %d/%d len %d about %d %s -> %s",
				got.src, got.dst, got.hops, got.exts, got.typ, got.code, got.icmpLen, got.inProto, got.inSrc, got.inDst)
			if got.src != seen.Addr() || got.dst != rs.Addr() {
				t.Errorf("ICMPv6 error %s -> %s, want %s -> %s", got.src, got.dst, seen.Addr(), rs.Addr())
			}
			if got.typ != 1 || got.code != 4 {
				t.Errorf("ICMPv6 type %d code %d, want 1/4 (port unreachable)", got.typ, got.code)
			}
			if got.inProto != uint8(proto) || got.inSrc != rs || got.inDst != seen {
				t.Errorf("embedded packet (protocol %d) %s -> %s, want (%d) %s -> %s (what the real server sent)",
					got.inProto, got.inSrc, got.inDst, proto, rs, seen)
			}
			if proto == unix.IPPROTO_TCP && got.seq != seq {
				t.Errorf("embedded sequence %#x, want %#x unchanged (FULLNAT moves only the client's)", got.seq, seq)
			}
			if got.icmpLen != sentLen {
				t.Errorf("ICMPv6 message of %d bytes, the client sent %d: something was added or cut", got.icmpLen, sentLen)
			}
			if !got.checksumOK {
				t.Errorf("ICMPv6 checksum wrong after translation")
			}
			if got.hops != 63 {
				t.Errorf("hop limit %d, want 63: the director is a hop", got.hops)
			}
		})
	}
}

// udpEcho answers every datagram to addr:port in ns with the datagram itself, from a socket
// that lets the kernel fragment (IPv4 without DF).
func udpEcho(t *testing.T, ns vmnet.NS, at netip.AddrPort) {
	t.Helper()
	var c net.PacketConn
	err := vmnet.InNetns(string(ns), func() error {
		var err error
		lc := net.ListenConfig{Control: noDF}
		c, err = lc.ListenPacket(t.Context(), "udp", at.String())
		return err
	})
	if err != nil {
		t.Fatalf("UDP echo in %s: %v", ns, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { _ = c.Close(); <-done })
}

// noDF makes an IPv4 socket send without DF, so the stack fragments what exceeds the MTU.
func noDF(network, _ string, rc syscall.RawConn) error {
	if network != "udp4" {
		return nil
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT)
	}); err != nil {
		return err
	}
	return serr
}

// isFragment tells whether b is an IPv4 fragment or an IPv6 packet with a fragment header
// right after the fixed header.
func isFragment(b []byte) bool {
	if len(b) < 40 {
		return false
	}
	if b[0]>>4 == 4 {
		return binary.BigEndian.Uint16(b[6:])&0x3fff != 0
	}
	return b[0]>>4 == 6 && b[6] == unix.IPPROTO_FRAGMENT
}

// countFragments counts the fragments c has seen arrive so far and their largest size.
func countFragments(c *vmnet.Capture) (n, largest int) {
	for {
		f, err := c.Next(false, 500*time.Millisecond, func(f vmnet.Frame) bool { return isFragment(f.Data) })
		if err != nil {
			return n, largest
		}
		n++
		largest = max(largest, len(f.Data))
	}
}

// TestFullNATFragmented: a UDP datagram larger than the MTU, which the client's stack sends in
// fragments that each fit (IPv6, and IPv4 without DF), passes a FULLNAT service whole and its
// echo, as large, comes back. The director reassembles (IPv4 before LOCAL_IN, IPv6 in
// nf_defrag_ipv6, which IPVS enables with an IPv6 service) and must judge the packet by its
// largest fragment, as upstream's IPv6 transmitters do, and fragment it again; before that, IPv6 was
// answered with "packet too big" (MTU 1500) and dropped.
func TestFullNATFragmented(t *testing.T) {
	f := newFixture(t, 1)
	const port = 9000
	for _, sd := range f.sides() {
		t.Run(sd.name, func(t *testing.T) {
			udpEcho(t, f.tp.Servers[0], netip.AddrPortFrom(sd.rss[0], port))
			s := service{proto: unix.IPPROTO_UDP, vip: netip.AddrPortFrom(sd.vip, port)}
			if err := f.ic.newService(s, 0); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.tp.Director.Run(t, cipvsadm, "-C") })
			if err := f.ic.newFullNATDest(s, netip.AddrPortFrom(sd.rss[0], port)); err != nil {
				t.Fatal(err)
			}
			if err := f.ic.addLaddr(s, sd.laddrs[0]); err != nil {
				t.Fatal(err)
			}
			onDir := vmnet.OpenCapture(t, f.tp.Director, "c0")
			onRS := vmnet.OpenCapture(t, f.tp.Servers[0], "eth0")
			onCl := vmnet.OpenCapture(t, f.tp.Client, "eth0")

			payload := make([]byte, 3000)
			for i := range payload {
				payload[i] = byte(i*7 + i/256)
			}
			var reply []byte
			err := vmnet.InNetns(string(f.tp.Client), func() error {
				d := net.Dialer{Control: noDF}
				c, err := d.Dial("udp", s.vip.String())
				if err != nil {
					return fmt.Errorf("udp dial %s: %w", s.vip, err)
				}
				defer c.Close()
				buf := make([]byte, 65536)
				// Retry a lost datagram (TCG is slow) a few times, but not a wrong answer.
				for try := 0; try < 3; try++ {
					if _, err := c.Write(payload); err != nil {
						return fmt.Errorf("udp write: %w", err)
					}
					_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
					n, err := c.Read(buf)
					if err == nil {
						reply = buf[:n]
						return nil
					}
					if !isTimeout(err) {
						return fmt.Errorf("udp read: %w", err)
					}
				}
				return fmt.Errorf("no echo of the %d-byte datagram in 3 tries", len(payload))
			})
			dn, dmax := countFragments(onDir)
			rn, rmax := countFragments(onRS)
			cn, cmax := countFragments(onCl)
			t.Logf("fragments: %d into the director on c0 (largest %d bytes), %d into the real server (largest %d), %d back into the client (largest %d)",
				dn, dmax, rn, rmax, cn, cmax)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(reply, payload) {
				t.Fatalf("echo of %d bytes differs from the %d sent", len(reply), len(payload))
			}
			if dn < 3 || rn < 3 || cn < 3 {
				t.Errorf("the datagram was not fragmented on every leg (%d, %d, %d fragments): the test proves nothing", dn, rn, cn)
			}
			if max(dmax, rmax, cmax) > 1500 {
				t.Errorf("a fragment of %d bytes exceeds the MTU of 1500", max(dmax, rmax, cmax))
			}
		})
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// udp4Fragments builds a UDP datagram src -> dst with payload as IPv4 fragments of at most mtu
// bytes, each with DF set (as a sender behind a tunnel or a router may pass them on).
func udp4Fragments(src, dst netip.AddrPort, payload []byte, mtu int) [][]byte {
	udp := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	udp = append(udp, payload...)
	sum := inet.L4Checksum(src.Addr(), dst.Addr(), unix.IPPROTO_UDP, udp)
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	chunk := (mtu - 20) &^ 7
	var frags [][]byte
	for off := 0; off < len(udp); off += chunk {
		end := min(off+chunk, len(udp))
		fo := uint16(0x4000 | off/8) // DF
		if end < len(udp) {
			fo |= 0x2000 // MF
		}
		ip := inet.Header{Src: src.Addr(), Dst: dst.Addr(), Proto: unix.IPPROTO_UDP, TTL: 64, PayloadLen: end - off, ID: 0x2bad, Frag: fo}.Marshal()
		frags = append(frags, append(ip, udp[off:end]...))
	}
	return frags
}

// TestFullNATFragmentedDF: IPv4 fragments that each fit the MTU but carry DF. The director
// reassembles them with DF kept (the largest fragment had it) and frag_max_size set. FULLNAT
// judges such a packet by frag_max_size, as upstream's IPv6 transmitters do (its IPv4 ones look
// at the reassembled length only), and ip_fragment() then cuts it again into fragments no larger
// than the originals: the datagram reaches the real server and the echo comes back.
func TestFullNATFragmentedDF(t *testing.T) {
	f := newFixture(t, 1)
	const port = 9000
	rs := netip.AddrPortFrom(f.tp.ServerAddrs[0], port)
	udpEcho(t, f.tp.Servers[0], rs)
	s := service{proto: unix.IPPROTO_UDP, vip: netip.AddrPortFrom(f.tp.VIP, port)}
	if err := f.ic.newService(s, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.ic.newFullNATDest(s, rs); err != nil {
		t.Fatal(err)
	}
	if err := f.ic.addLaddr(s, f.laddrs[0]); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 3000)
	for i := range payload {
		payload[i] = byte(i*11 + i/256)
	}
	onDir := vmnet.OpenCapture(t, f.tp.Director, "c0")
	var reply []byte
	err := vmnet.InNetns(string(f.tp.Client), func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: f.tp.ClientAddr.AsSlice()})
		if err != nil {
			return fmt.Errorf("udp listen: %w", err)
		}
		defer c.Close()
		src := netip.AddrPortFrom(f.tp.ClientAddr, uint16(c.LocalAddr().(*net.UDPAddr).Port))
		buf := make([]byte, 65536)
		for try := 0; try < 3; try++ {
			for _, fr := range udp4Fragments(src, s.vip, payload, 1500) {
				if err := vmnet.SendRaw(f.tp.Client, fr, s.vip.Addr()); err != nil {
					return err
				}
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := c.Read(buf)
			if err == nil {
				reply = buf[:n]
				return nil
			}
			if !isTimeout(err) {
				return fmt.Errorf("udp read: %w", err)
			}
		}
		return fmt.Errorf("no echo of the %d-byte datagram sent in DF fragments, 3 tries", len(payload))
	})
	// What the director answered, if anything: an ICMP error to the client.
	if _, cerr := onDir.Next(true, time.Second, func(fr vmnet.Frame) bool {
		b := fr.Data
		return len(b) > 21 && b[0]>>4 == 4 && b[9] == unix.IPPROTO_ICMP && b[20] == 3 && b[21] == 4
	}); cerr == nil {
		t.Errorf("the director answered the DF fragments with \"fragmentation needed\": it judged the reassembled length, not the fragments")
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(reply, payload) {
		t.Fatalf("echo of %d bytes differs from the %d sent", len(reply), len(payload))
	}
}
