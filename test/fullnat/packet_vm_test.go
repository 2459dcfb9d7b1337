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
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/inet"
	"github.com/fullnat/fullnat/internal/vmnet"
	"golang.org/x/sys/unix"
)

// Packet-level checks: a hand-made client SYN (so its checksum is not offloaded) goes through the
// director; the SYN captured on the real server and the SYN-ACK captured on the client are
// compared with what FULLNAT must make of them.

const (
	optEOL       = 0
	optNOP       = 1
	optMSS       = 2
	optWS        = 3
	optSACKPerm  = 4
	optTimestamp = 8
)

// tcpOpt is one TCP option.
type tcpOpt struct {
	kind byte
	data []byte
}

func parseOpts(b []byte) ([]tcpOpt, error) {
	var out []tcpOpt
	for len(b) > 0 {
		switch b[0] {
		case optEOL:
			return out, nil
		case optNOP:
			out = append(out, tcpOpt{kind: optNOP})
			b = b[1:]
			continue
		}
		if len(b) < 2 || int(b[1]) < 2 || int(b[1]) > len(b) {
			return nil, fmt.Errorf("bad option at %x", b)
		}
		out = append(out, tcpOpt{kind: b[0], data: b[2:b[1]]})
		b = b[b[1]:]
	}
	return out, nil
}

func findOpt(opts []tcpOpt, kind byte) (tcpOpt, bool) {
	for _, o := range opts {
		if o.kind == kind {
			return o, true
		}
	}
	return tcpOpt{}, false
}

// packet is a parsed IPv4 or IPv6 TCP segment.
type packet struct {
	src, dst         netip.Addr
	sport, dport     uint16
	seq, ack         uint32
	flags            byte
	opts             []tcpOpt
	rawOpts          []byte
	segment          []byte
	ipHeaderChecksum bool // IPv4 header checksum right (always true for IPv6)
}

func parsePacket(b []byte) (packet, bool) {
	var p packet
	var seg []byte
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0xf) * 4
		if len(b) < ihl+20 || b[9] != unix.IPPROTO_TCP {
			return p, false
		}
		tot := int(binary.BigEndian.Uint16(b[2:]))
		if tot > len(b) {
			return p, false
		}
		p.src = netip.AddrFrom4([4]byte(b[12:16]))
		p.dst = netip.AddrFrom4([4]byte(b[16:20]))
		p.ipHeaderChecksum = inet.Checksum(b[:ihl]) == 0
		seg = b[ihl:tot]
	case 6:
		if len(b) < 60 || b[6] != unix.IPPROTO_TCP {
			return p, false
		}
		pl := int(binary.BigEndian.Uint16(b[4:]))
		if 40+pl > len(b) {
			return p, false
		}
		p.src = netip.AddrFrom16([16]byte(b[8:24]))
		p.dst = netip.AddrFrom16([16]byte(b[24:40]))
		p.ipHeaderChecksum = true
		seg = b[40 : 40+pl]
	default:
		return p, false
	}
	doff := int(seg[12]>>4) * 4
	if doff < 20 || doff > len(seg) {
		return p, false
	}
	p.sport = binary.BigEndian.Uint16(seg[0:])
	p.dport = binary.BigEndian.Uint16(seg[2:])
	p.seq = binary.BigEndian.Uint32(seg[4:])
	p.ack = binary.BigEndian.Uint32(seg[8:])
	p.flags = seg[13]
	p.rawOpts = seg[20:doff]
	p.segment = seg
	var err error
	if p.opts, err = parseOpts(p.rawOpts); err != nil {
		return p, false
	}
	return p, true
}

// capture is an AF_PACKET socket on one interface of a namespace.
type capture struct{ fd int }

func openCapture(t *testing.T, ns, ifname string) *capture {
	t.Helper()
	var c capture
	err := vmnet.InNetns(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return fmt.Errorf("interface %s: %w", ifname, err)
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, proto)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("binding AF_PACKET to %s: %w", ifname, err)
		}
		tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return fmt.Errorf("SO_RCVTIMEO: %w", err)
		}
		c.fd = fd
		return nil
	})
	if err != nil {
		t.Fatalf("capture on %s in %s: %v", ifname, ns, err)
	}
	t.Cleanup(func() { unix.Close(c.fd) })
	return &c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// next returns the first captured TCP packet for which match is true, within the timeout.
func (c *capture) next(timeout time.Duration, match func(packet) bool) (packet, error) {
	buf := make([]byte, 65536)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n, from, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			continue
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if p, ok := parsePacket(buf[:n]); ok && match(p) {
			return p, nil
		}
	}
	return packet{}, fmt.Errorf("no matching packet within %s", timeout)
}

// clientSYN builds a client SYN with MSS 1460, SACK permitted, a timestamp and window scale 7,
// its checksums computed here.
func clientSYN(src, dst netip.AddrPort, seq uint32) []byte {
	seg := make([]byte, 20)
	binary.BigEndian.PutUint16(seg[0:], src.Port())
	binary.BigEndian.PutUint16(seg[2:], dst.Port())
	binary.BigEndian.PutUint32(seg[4:], seq)
	opts := []byte{
		optMSS, 4, 0x05, 0xb4,
		optSACKPerm, 2,
		optTimestamp, 10, 0, 0, 0x12, 0x34, 0, 0, 0, 0,
		optNOP,
		optWS, 3, 7,
	}
	seg = append(seg, opts...)
	seg[12] = byte(len(seg)/4) << 4
	seg[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(seg[14:], 64240)
	binary.BigEndian.PutUint16(seg[16:], inet.L4Checksum(src.Addr(), dst.Addr(), unix.IPPROTO_TCP, seg))
	if src.Addr().Is4() {
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(seg)))
		ip[6] = 0x40 // DF
		ip[8] = 64
		ip[9] = unix.IPPROTO_TCP
		copy(ip[12:], src.Addr().AsSlice())
		copy(ip[16:], dst.Addr().AsSlice())
		binary.BigEndian.PutUint16(ip[10:], inet.Checksum(ip))
		return append(ip, seg...)
	}
	ip := make([]byte, 40)
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(seg)))
	ip[6] = unix.IPPROTO_TCP
	ip[7] = 64
	copy(ip[8:], src.Addr().AsSlice())
	copy(ip[24:], dst.Addr().AsSlice())
	return append(ip, seg...)
}

// clientACK builds a bare client ACK.
func clientACK(src, dst netip.AddrPort, seq, ack uint32) []byte {
	p := clientSYN(src, dst, seq)
	off := 20
	if src.Addr().Is6() {
		off = 40
	}
	seg := p[off : off+20]
	binary.BigEndian.PutUint32(seg[8:], ack)
	seg[12] = 5 << 4
	seg[13] = 0x10 // ACK
	seg[16], seg[17] = 0, 0
	binary.BigEndian.PutUint16(seg[16:], inet.L4Checksum(src.Addr(), dst.Addr(), unix.IPPROTO_TCP, seg))
	p = p[:off+20]
	if src.Addr().Is4() {
		binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
		p[10], p[11] = 0, 0
		binary.BigEndian.PutUint16(p[10:], inet.Checksum(p[:20]))
	} else {
		binary.BigEndian.PutUint16(p[4:], 20)
	}
	return p
}

// sendRaw sends a complete IP packet from namespace ns.
func sendRaw(ns string, pkt []byte, dst netip.Addr) error {
	return vmnet.InNetns(ns, func() error {
		var fd int
		var err error
		var sa unix.Sockaddr
		if dst.Is4() {
			fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
			sa = &unix.SockaddrInet4{Addr: dst.As4()}
		} else {
			fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_RAW)
			sa = &unix.SockaddrInet6{Addr: dst.As16()}
		}
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.Sendto(fd, pkt, 0, sa); err != nil {
			return fmt.Errorf("sending raw packet: %w", err)
		}
		return nil
	})
}

func TestFullNATPacket(t *testing.T) {
	f := newFixture(t, 1)
	for _, sd := range f.sides() {
		t.Run(sd.name, func(t *testing.T) {
			f.fullnatService(t, unix.IPPROTO_TCP, sd.vip, sd.rss[:1], sd.laddrs[:1])
			t.Cleanup(func() { f.tp.Director.Run(t, cipvsadm, "-C") })
			client := netip.AddrPortFrom(f.clientOf(sd), 42000)
			vip := netip.AddrPortFrom(sd.vip, 80)
			rs := netip.AddrPortFrom(sd.rss[0], 80)
			onRS := openCapture(t, string(f.tp.Servers[0]), "eth0")
			onClient := openCapture(t, string(f.tp.Client), "eth0")
			const seq = 0x10000000
			syn := clientSYN(client, vip, seq)
			if err := sendRaw(string(f.tp.Client), syn, vip.Addr()); err != nil {
				t.Fatal(err)
			}

			got, err := onRS.next(5*time.Second, func(p packet) bool {
				return p.dst == rs.Addr() && p.dport == rs.Port() && p.flags&0x12 == 0x02
			})
			if err != nil {
				t.Fatalf("SYN on the real server: %v", err)
			}
			if got.src != sd.laddrs[0] || got.sport < 5000 {
				t.Errorf("SYN on the real server from %s:%d, want the local address %s and a port >= 5000", got.src, got.sport, sd.laddrs[0])
			}
			if got.seq == seq {
				t.Errorf("SYN sequence number %#x reached the real server unchanged", got.seq)
			}
			if !got.ipHeaderChecksum {
				t.Errorf("IPv4 header checksum wrong after translation")
			}
			if s := inet.L4Checksum(got.src, got.dst, unix.IPPROTO_TCP, got.segment); s != 0 {
				t.Errorf("TCP checksum of the translated SYN is wrong (residue %#04x)", s)
			}
			// TOA first, right after the fixed header: kind, length, client port, client address.
			want := []byte{254, 8}
			if sd.vip.Is6() {
				want = []byte{253, 20}
			}
			want = binary.BigEndian.AppendUint16(want, client.Port())
			want = append(want, client.Addr().AsSlice()...)
			if !bytes.HasPrefix(got.rawOpts, want) {
				t.Errorf("SYN options %x do not start with the TOA option %x", got.rawOpts, want)
			}
			if _, ok := findOpt(got.opts, optTimestamp); ok {
				t.Errorf("the timestamp option reached the real server: %x", got.rawOpts)
			}
			for _, k := range []byte{optMSS, optSACKPerm, optWS} {
				if _, ok := findOpt(got.opts, k); !ok {
					t.Errorf("option %d missing on the real server: %x", k, got.rawOpts)
				}
			}
			if m, _ := findOpt(got.opts, optMSS); len(m.data) == 2 && binary.BigEndian.Uint16(m.data) != 1460 {
				t.Errorf("client MSS changed to %d; only the real server's is reduced", binary.BigEndian.Uint16(m.data))
			}

			sa, err := onClient.next(5*time.Second, func(p packet) bool {
				return p.src == vip.Addr() && p.sport == vip.Port() && p.dport == client.Port() && p.flags&0x12 == 0x12
			})
			if err != nil {
				t.Fatalf("SYN-ACK on the client: %v", err)
			}
			if sa.dst != client.Addr() {
				t.Errorf("SYN-ACK to %s, want the client %s", sa.dst, client.Addr())
			}
			if sa.ack != seq+1 {
				t.Errorf("SYN-ACK acknowledges %#x, want the client's sequence + 1 = %#x", sa.ack, seq+1)
			}
			toa := 8
			if sd.vip.Is6() {
				toa = 20
			}
			rsMSS := 1460
			if sd.vip.Is6() {
				rsMSS = 1440
			}
			m, ok := findOpt(sa.opts, optMSS)
			if !ok || len(m.data) != 2 || int(binary.BigEndian.Uint16(m.data)) != rsMSS-toa {
				t.Errorf("SYN-ACK MSS option %x, want %d (the real server's %d less the TOA length)", m.data, rsMSS-toa, rsMSS)
			}

			// The handshake ACK (it acknowledges the real server's first byte) carries TOA too.
			ack := clientACK(client, vip, seq+1, sa.seq+1)
			if err := sendRaw(string(f.tp.Client), ack, vip.Addr()); err != nil {
				t.Fatal(err)
			}
			ga, err := onRS.next(5*time.Second, func(p packet) bool {
				return p.dst == rs.Addr() && p.dport == rs.Port() && p.flags == 0x10
			})
			if err != nil {
				t.Fatalf("handshake ACK on the real server: %v", err)
			}
			if !bytes.HasPrefix(ga.rawOpts, want) {
				t.Errorf("handshake ACK options %x do not start with the TOA option %x", ga.rawOpts, want)
			}
			if ga.seq != got.seq+1 || ga.sport != got.sport {
				t.Errorf("handshake ACK seq %#x port %d, want %#x port %d (the SYN's + 1)", ga.seq, ga.sport, got.seq+1, got.sport)
			}
			if s := inet.L4Checksum(ga.src, ga.dst, unix.IPPROTO_TCP, ga.segment); s != 0 {
				t.Errorf("TCP checksum of the translated ACK is wrong (residue %#04x)", s)
			}
		})
	}
}

// clientUDP builds a UDP datagram with payload; a wrong checksum when bad is set.
func clientUDP(src, dst netip.AddrPort, payload []byte, bad bool) []byte {
	seg := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(seg[0:], src.Port())
	binary.BigEndian.PutUint16(seg[2:], dst.Port())
	binary.BigEndian.PutUint16(seg[4:], uint16(8+len(payload)))
	seg = append(seg, payload...)
	sum := inet.L4Checksum(src.Addr(), dst.Addr(), unix.IPPROTO_UDP, seg)
	if bad {
		sum ^= 0x0101
	}
	binary.BigEndian.PutUint16(seg[6:], sum)
	if src.Addr().Is4() {
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(seg)))
		ip[8] = 64
		ip[9] = unix.IPPROTO_UDP
		copy(ip[12:], src.Addr().AsSlice())
		copy(ip[16:], dst.Addr().AsSlice())
		binary.BigEndian.PutUint16(ip[10:], inet.Checksum(ip))
		return append(ip, seg...)
	}
	ip := make([]byte, 40)
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(seg)))
	ip[6] = unix.IPPROTO_UDP
	ip[7] = 64
	copy(ip[8:], src.Addr().AsSlice())
	copy(ip[24:], dst.Addr().AsSlice())
	return append(ip, seg...)
}

// nextUDP returns the first captured UDP datagram to port dport within the timeout.
func (c *capture) nextUDP(timeout time.Duration, dport uint16) ([]byte, error) {
	buf := make([]byte, 65536)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			continue
		}
		b := buf[:n]
		off := 40
		if b[0]>>4 == 4 {
			if b[9] != unix.IPPROTO_UDP {
				continue
			}
			off = int(b[0]&0xf) * 4
		} else if b[6] != unix.IPPROTO_UDP {
			continue
		}
		if len(b) >= off+8 && binary.BigEndian.Uint16(b[off+2:]) == dport {
			return append([]byte(nil), b[off+8:]...), nil
		}
	}
	return nil, fmt.Errorf("no UDP datagram to port %d within %s", dport, timeout)
}

// TestFullNATChecksumNone: datagrams whose checksum is not offloaded (made here, sent on a raw
// socket) keep a right checksum through the director, so the real server accepts and answers
// them; a wrong checksum stays wrong, so the real server drops the datagram.
func TestFullNATChecksumNone(t *testing.T) {
	f := newFixture(t, 1)
	for _, sd := range f.sides() {
		t.Run(sd.name, func(t *testing.T) {
			f.fullnatService(t, unix.IPPROTO_UDP, sd.vip, sd.rss[:1], sd.laddrs[:1])
			t.Cleanup(func() { f.tp.Director.Run(t, cipvsadm, "-C") })
			vip := netip.AddrPortFrom(sd.vip, 80)
			onClient := openCapture(t, string(f.tp.Client), "eth0")
			payload := bytes.Repeat([]byte("fullnat!"), 100)
			for i, bad := range []bool{false, true} {
				client := netip.AddrPortFrom(f.clientOf(sd), uint16(43000+i))
				if err := sendRaw(string(f.tp.Client), clientUDP(client, vip, payload, bad), vip.Addr()); err != nil {
					t.Fatal(err)
				}
				reply, err := onClient.nextUDP(2*time.Second, client.Port())
				switch {
				case !bad && err != nil:
					t.Errorf("datagram with a right checksum: no answer from the real server: %v", err)
				case !bad && !bytes.HasPrefix(reply, []byte("rs1 "+sd.laddrs[0].String())) &&
					!bytes.HasPrefix(reply, []byte("rs1 ["+sd.laddrs[0].String()+"]")):
					t.Errorf("answer %q, want rs1 seeing the local address %s", reply, sd.laddrs[0])
				case bad && err == nil:
					t.Errorf("datagram with a wrong checksum was answered (%q): the director fixed its checksum", reply)
				}
			}
		})
	}
}

// TestFullNATToaHeadFull: a client SYN whose options already fill the TCP header gets no TOA,
// passes unchanged otherwise, and is counted in fullnat_add_toa_head_full.
func TestFullNATToaHeadFull(t *testing.T) {
	f := newFixture(t, 1)
	sd := f.sides()[0]
	f.fullnatService(t, unix.IPPROTO_TCP, sd.vip, sd.rss[:1], sd.laddrs[:1])
	client := netip.AddrPortFrom(f.clientOf(sd), 42100)
	vip := netip.AddrPortFrom(sd.vip, 80)
	onRS := openCapture(t, string(f.tp.Servers[0]), "eth0")
	syn := clientSYN(client, vip, 0x20000000)
	// Pad the options to 40 bytes with NOPs: doff 15, no room left.
	seg := syn[20:]
	full := append(append([]byte{}, seg...), bytes.Repeat([]byte{optNOP}, 60-len(seg))...)
	full[12] = 15 << 4
	full[16], full[17] = 0, 0
	binary.BigEndian.PutUint16(full[16:], inet.L4Checksum(client.Addr(), vip.Addr(), unix.IPPROTO_TCP, full))
	pkt := append(append([]byte{}, syn[:20]...), full...)
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[10], pkt[11] = 0, 0
	binary.BigEndian.PutUint16(pkt[10:], inet.Checksum(pkt[:20]))
	before := extStats(t, f.tp.Director)["fullnat_add_toa_head_full"]
	if err := sendRaw(string(f.tp.Client), pkt, vip.Addr()); err != nil {
		t.Fatal(err)
	}
	got, err := onRS.next(5*time.Second, func(p packet) bool {
		return p.dport == 80 && p.flags&0x12 == 0x02
	})
	if err != nil {
		t.Fatalf("SYN on the real server: %v", err)
	}
	if _, ok := findOpt(got.opts, 254); ok || len(got.rawOpts) != 40 {
		t.Errorf("SYN with full options: got options %x (%d bytes), want 40 bytes without TOA", got.rawOpts, len(got.rawOpts))
	}
	if s := inet.L4Checksum(got.src, got.dst, unix.IPPROTO_TCP, got.segment); s != 0 {
		t.Errorf("TCP checksum wrong (residue %#04x)", s)
	}
	if after := extStats(t, f.tp.Director)["fullnat_add_toa_head_full"]; after != before+1 {
		t.Errorf("fullnat_add_toa_head_full went from %d to %d, want +1", before, after)
	}
}
