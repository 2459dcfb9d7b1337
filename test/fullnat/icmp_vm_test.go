// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package fullnat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/inet"
	"github.com/fullnat/fullnat/internal/vmnet"
	"golang.org/x/sys/unix"
)

// TestFullNATICMP: ICMP errors are translated in both directions. A real server without a
// listener answers "port unreachable", which must reach the client as such; an ICMP error the
// client sends about a reply must reach the real server about the packet it sent.
func TestFullNATICMP(t *testing.T) {
	f := newFixture(t, 1)
	for _, sd := range f.sides() {
		t.Run(sd.name, func(t *testing.T) {
			s := f.fullnatService(t, unix.IPPROTO_UDP, sd.vip, sd.rss, sd.laddrs[:1])
			t.Cleanup(func() { f.tp.Director.Run(t, cipvsadm, "-C") })
			s81 := service{proto: unix.IPPROTO_UDP, vip: netip.AddrPortFrom(sd.vip, 81)}
			if err := f.ic.newService(s81, 0); err != nil {
				t.Fatal(err)
			}
			if err := f.ic.newFullNATDest(s81, netip.AddrPortFrom(sd.rss[0], 81)); err != nil {
				t.Fatal(err)
			}
			if err := f.ic.addLaddr(s81, sd.laddrs[0]); err != nil {
				t.Fatal(err)
			}

			// From the real server's side: port unreachable.
			_, _, err := vmnet.UDPExchange(f.tp.Client, s81.vip, []byte("hello"), 3*time.Second)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("UDP to a real server port without a listener: got %v, want ECONNREFUSED from the translated ICMP error", err)
			}

			// From the client's side: an error about the reply to port cport.
			reply, cport, err := vmnet.UDPExchange(f.tp.Client, s.vip, []byte("hello"), 3*time.Second)
			if err != nil {
				t.Fatalf("UDP exchange: %v", err)
			}
			fields := strings.Fields(reply)
			if len(fields) != 2 {
				t.Fatalf("UDP reply %q", reply)
			}
			seen := netip.MustParseAddrPort(fields[1]) // laddr:lport as the real server saw it
			onRS := vmnet.OpenCapture(t, f.tp.Servers[0], "eth0")
			client := netip.AddrPortFrom(f.clientOf(sd), uint16(cport))
			if err := vmnet.SendRaw(f.tp.Client, icmpUnreach(client, s.vip), s.vip.Addr()); err != nil {
				t.Fatal(err)
			}
			got, err := nextICMP(onRS, 5*time.Second)
			if err != nil {
				t.Fatalf("ICMP error on the real server: %v", err)
			}
			rs := netip.AddrPortFrom(sd.rss[0], 80)
			if got.src != seen.Addr() || got.dst != rs.Addr() {
				t.Errorf("ICMP error %s -> %s, want %s -> %s", got.src, got.dst, seen.Addr(), rs.Addr())
			}
			if got.inSrc != rs || got.inDst != seen {
				t.Errorf("embedded packet %s -> %s, want %s -> %s (what the real server sent)", got.inSrc, got.inDst, rs, seen)
			}
			if !got.checksumOK {
				t.Errorf("ICMP checksum wrong after translation")
			}
			if got.ttl != 63 {
				t.Errorf("ICMP error reached the real server with TTL %d, want 63: the director is a hop", got.ttl)
			}
		})
	}
}

// icmpUnreach builds "port unreachable" from client about a UDP datagram vip -> client.
func icmpUnreach(client, vip netip.AddrPort) []byte {
	udp := make([]byte, 8)
	binary.BigEndian.PutUint16(udp[0:], vip.Port())
	binary.BigEndian.PutUint16(udp[2:], client.Port())
	binary.BigEndian.PutUint16(udp[4:], 8+5)
	quote := append(inet.Header{Src: vip.Addr(), Dst: client.Addr(), Proto: unix.IPPROTO_UDP, TTL: 64, PayloadLen: 8 + 5}.Marshal(), udp...)
	if client.Addr().Is4() {
		return inet.ICMPError(client.Addr(), vip.Addr(), 3, 3, 0, quote)
	}
	return inet.ICMPError(client.Addr(), vip.Addr(), 1, 4, 0, quote)
}

// icmpError is a captured ICMP error about a UDP or TCP packet.
type icmpError struct {
	src, dst     netip.Addr
	inSrc, inDst netip.AddrPort
	checksumOK   bool
	ttl          uint8 // TTL or hop limit
}

// nextICMP returns the first ICMP destination-unreachable c receives within the timeout.
func nextICMP(c *vmnet.Capture, timeout time.Duration) (icmpError, error) {
	var e icmpError
	_, err := c.Next(false, timeout, func(f vmnet.Frame) bool {
		var ok bool
		e, ok = parseICMPError(f.Data)
		return ok
	})
	if err != nil {
		return icmpError{}, fmt.Errorf("no ICMP error: %w", err)
	}
	return e, nil
}

// parseICMPError reads b as an ICMP or ICMPv6 destination-unreachable about a UDP or TCP packet.
func parseICMPError(b []byte) (e icmpError, ok bool) {
	if len(b) < 1 {
		return e, false
	}
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0xf) * 4
		if len(b) < ihl+8+20+4 || b[9] != unix.IPPROTO_ICMP || b[ihl] != 3 {
			return e, false
		}
		tot := int(binary.BigEndian.Uint16(b[2:]))
		if tot > len(b) {
			return e, false
		}
		e.src = netip.AddrFrom4([4]byte(b[12:16]))
		e.dst = netip.AddrFrom4([4]byte(b[16:20]))
		e.ttl = b[8]
		icmp := b[ihl:tot]
		e.checksumOK = inet.Checksum(icmp) == 0
		in := icmp[8:]
		iihl := int(in[0]&0xf) * 4
		if len(in) < iihl+4 {
			return e, false
		}
		e.inSrc = netip.AddrPortFrom(netip.AddrFrom4([4]byte(in[12:16])), binary.BigEndian.Uint16(in[iihl:]))
		e.inDst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(in[16:20])), binary.BigEndian.Uint16(in[iihl+2:]))
	case 6:
		if len(b) < 40+8+40+4 || b[6] != unix.IPPROTO_ICMPV6 || b[40] != 1 {
			return e, false
		}
		end := 40 + int(binary.BigEndian.Uint16(b[4:]))
		if end > len(b) {
			return e, false
		}
		e.src = netip.AddrFrom16([16]byte(b[8:24]))
		e.dst = netip.AddrFrom16([16]byte(b[24:40]))
		e.ttl = b[7]
		icmp := b[40:end]
		if len(icmp) < 8+40+4 {
			return e, false
		}
		e.checksumOK = inet.L4Checksum(e.src, e.dst, unix.IPPROTO_ICMPV6, icmp) == 0
		in := icmp[8:]
		e.inSrc = netip.AddrPortFrom(netip.AddrFrom16([16]byte(in[8:24])), binary.BigEndian.Uint16(in[40:]))
		e.inDst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(in[24:40])), binary.BigEndian.Uint16(in[42:]))
	default:
		return e, false
	}
	return e, true
}
