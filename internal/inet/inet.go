// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package inet holds the Internet checksum and the pseudo header, the arithmetic that every
// hand-made packet of the tests and the flood tool needs.
package inet

import (
	"encoding/binary"
	"net/netip"
)

// Checksum is the Internet checksum (RFC 1071) of the concatenated byte slices. Over data that
// includes a correct checksum field it is 0.
func Checksum(parts ...[]byte) uint16 {
	var sum uint32
	odd := false
	var carry byte
	for _, p := range parts {
		for _, c := range p {
			if odd {
				sum += uint32(carry)<<8 | uint32(c)
			} else {
				carry = c
			}
			odd = !odd
		}
	}
	if odd {
		sum += uint32(carry) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// PseudoHeader is the IPv4 (RFC 793) or IPv6 (RFC 8200) pseudo header that the TCP, UDP and
// ICMPv6 checksums cover, for a segment of length bytes of protocol proto from src to dst.
func PseudoHeader(src, dst netip.Addr, proto byte, length int) []byte {
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		return append(append(s[:], d[:]...), 0, proto, byte(length>>8), byte(length))
	}
	s, d := src.As16(), dst.As16()
	p := binary.BigEndian.AppendUint32(append(s[:], d[:]...), uint32(length))
	return append(p, 0, 0, 0, proto)
}

// L4Checksum is the checksum of segment seg of protocol proto from src to dst, over its pseudo
// header: with seg's checksum field zero, the value to put there; with it filled in, 0 when it
// is right.
func L4Checksum(src, dst netip.Addr, proto byte, seg []byte) uint16 {
	return Checksum(PseudoHeader(src, dst, proto, len(seg)), seg)
}

// Header is an IPv4 or IPv6 header (the version of Src), without options or extension headers.
type Header struct {
	Src, Dst netip.Addr
	// Proto is the protocol (IPv4) or next header (IPv6).
	Proto byte
	// TTL is the TTL or hop limit.
	TTL byte
	// PayloadLen is the length of what follows the header; it need not be what the caller
	// appends (a quoted header names the length of the packet it was cut from).
	PayloadLen int
	// ID and Frag are IPv4's identification and its flags and fragment offset (0x4000 is DF).
	ID, Frag uint16
}

// Marshal returns the header's bytes; an IPv4 header carries its checksum.
func (h Header) Marshal() []byte {
	if h.Src.Is4() {
		b := make([]byte, 20)
		b[0] = 0x45
		binary.BigEndian.PutUint16(b[2:], uint16(20+h.PayloadLen))
		binary.BigEndian.PutUint16(b[4:], h.ID)
		binary.BigEndian.PutUint16(b[6:], h.Frag)
		b[8], b[9] = h.TTL, h.Proto
		copy(b[12:], h.Src.AsSlice())
		copy(b[16:], h.Dst.AsSlice())
		binary.BigEndian.PutUint16(b[10:], Checksum(b))
		return b
	}
	b := make([]byte, 40)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(h.PayloadLen))
	b[6], b[7] = h.Proto, h.TTL
	copy(b[8:], h.Src.AsSlice())
	copy(b[24:], h.Dst.AsSlice())
	return b
}

// ICMP returns an ICMP (src IPv4) or ICMPv6 message from src to dst of type typ and code code
// whose second word is rest (unused, or the MTU of a "fragmentation needed" or "packet too
// big"), followed by quote, with its checksum.
func ICMP(src, dst netip.Addr, typ, code byte, rest uint32, quote []byte) []byte {
	m := make([]byte, 8, 8+len(quote))
	m[0], m[1] = typ, code
	binary.BigEndian.PutUint32(m[4:], rest)
	m = append(m, quote...)
	sum := Checksum(m)
	if src.Is6() {
		sum = L4Checksum(src, dst, ProtoICMPv6, m)
	}
	binary.BigEndian.PutUint16(m[2:], sum)
	return m
}

// ICMPError returns a whole IP packet from src to dst (TTL 64) carrying ICMP(src, dst, typ,
// code, rest, quote).
func ICMPError(src, dst netip.Addr, typ, code byte, rest uint32, quote []byte) []byte {
	m := ICMP(src, dst, typ, code, rest, quote)
	proto := byte(ProtoICMP)
	if src.Is6() {
		proto = ProtoICMPv6
	}
	return append(Header{Src: src, Dst: dst, Proto: proto, TTL: 64, PayloadLen: len(m)}.Marshal(), m...)
}

// Protocol numbers used by the builders.
const (
	ProtoICMP   = 1
	ProtoICMPv6 = 58
)
