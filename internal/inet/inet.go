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
