// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package inet

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestChecksumKnownValue(t *testing.T) {
	// RFC 1071's example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2, complement 220d.
	if got := Checksum([]byte{0x00, 0x01, 0xf2, 0x03}, []byte{0xf4, 0xf5, 0xf6, 0xf7}); got != 0x220d {
		t.Errorf("Checksum = %#04x, want 0x220d", got)
	}
	// An odd split across parts must not change the sum.
	if got := Checksum([]byte{0x00, 0x01, 0xf2}, []byte{0x03, 0xf4, 0xf5, 0xf6, 0xf7}); got != 0x220d {
		t.Errorf("Checksum across an odd split = %#04x, want 0x220d", got)
	}
	// An odd length is padded with a zero byte.
	if got := Checksum([]byte{0x01}); got != ^uint16(0x0100) {
		t.Errorf("Checksum(01) = %#04x", got)
	}
}

func TestPseudoHeader(t *testing.T) {
	v4 := PseudoHeader(netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.2"), 6, 0x123)
	if want := []byte{192, 0, 2, 1, 198, 51, 100, 2, 0, 6, 0x01, 0x23}; !bytes.Equal(v4, want) {
		t.Errorf("IPv4 pseudo header % x, want % x", v4, want)
	}
	v6 := PseudoHeader(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), 17, 0x10203)
	want := append(append(netip.MustParseAddr("2001:db8::1").AsSlice(), netip.MustParseAddr("2001:db8::2").AsSlice()...),
		0, 1, 2, 3, 0, 0, 0, 17)
	if !bytes.Equal(v6, want) {
		t.Errorf("IPv6 pseudo header % x, want % x", v6, want)
	}
}

// TestL4Checksum: a UDP datagram from RFC-style fields, filled in and then verified to 0.
func TestL4Checksum(t *testing.T) {
	src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	udp := []byte{0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0, 'a', 'b', 'c', 'd'}
	sum := L4Checksum(src, dst, 17, udp)
	// By hand: c000+0201 + c000+0202 + 0011 + 000c + 3039+0035+000c + 6162+6364.
	var s uint32 = 0xc000 + 0x0201 + 0xc000 + 0x0202 + 0x0011 + 0x000c + 0x3039 + 0x0035 + 0x000c + 0x6162 + 0x6364
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	if sum != ^uint16(s) {
		t.Fatalf("L4Checksum = %#04x, want %#04x", sum, ^uint16(s))
	}
	udp[6], udp[7] = byte(sum>>8), byte(sum)
	if got := L4Checksum(src, dst, 17, udp); got != 0 {
		t.Errorf("verifying a filled-in checksum gives %#04x, want 0", got)
	}
}

// TestICMPError: an IPv4 port unreachable quoting a UDP header, and an IPv6 packet too big,
// both verify: header checksum 0, ICMP checksum 0 (ICMPv6 over its pseudo header).
func TestICMPError(t *testing.T) {
	cl, vip := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.10")
	quote := append(Header{Src: vip, Dst: cl, Proto: 17, TTL: 64, PayloadLen: 13}.Marshal(), 0, 80, 0x9c, 0x40, 0, 13, 0, 0)
	p := ICMPError(cl, vip, 3, 3, 0, quote)
	if len(p) != 20+8+28 || p[0] != 0x45 || p[9] != ProtoICMP || p[8] != 64 {
		t.Fatalf("IPv4 packet % x", p)
	}
	if Checksum(p[:20]) != 0 || Checksum(p[20:]) != 0 {
		t.Errorf("IPv4 checksums do not verify: % x", p)
	}
	if got := int(p[2])<<8 | int(p[3]); got != len(p) {
		t.Errorf("IPv4 total length %d, want %d", got, len(p))
	}
	if !bytes.Equal(p[28:], quote) || p[20] != 3 || p[21] != 3 {
		t.Errorf("ICMP type/code/quote wrong: % x", p[20:])
	}

	cl6, vip6 := netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8::10")
	p6 := ICMPError(cl6, vip6, 2, 0, 1280, Header{Src: vip6, Dst: cl6, Proto: 6, TTL: 63, PayloadLen: 1360}.Marshal())
	if len(p6) != 40+8+40 || p6[0] != 0x60 || p6[6] != ProtoICMPv6 || p6[7] != 64 {
		t.Fatalf("IPv6 packet % x", p6)
	}
	if got := int(p6[4])<<8 | int(p6[5]); got != 48 {
		t.Errorf("IPv6 payload length %d, want 48", got)
	}
	if L4Checksum(cl6, vip6, ProtoICMPv6, p6[40:]) != 0 {
		t.Errorf("ICMPv6 checksum does not verify")
	}
	if mtu := int(p6[44])<<24 | int(p6[45])<<16 | int(p6[46])<<8 | int(p6[47]); mtu != 1280 {
		t.Errorf("MTU %d, want 1280", mtu)
	}
	if got := int(p6[48+4])<<8 | int(p6[48+5]); got != 1360 {
		t.Errorf("quoted IPv6 payload length %d, want 1360", got)
	}
}
