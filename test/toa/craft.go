// Copyright The fullnat Authors.
// SPDX-License-Identifier: Apache-2.0

// Package toa holds the VM tests of the real-server TOA module (kmod/toa) and the hand-made
// TCP segments they send: Ethernet frames carrying IPv4 or IPv6 TCP segments with arbitrary
// option bytes, so that a test can play a FULLNAT director that puts the client's address
// into the handshake.
package toa

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/fullnat/fullnat/internal/inet"
)

// TCP flags.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
)

// TOA option kinds and lengths (wire-protocol.md).
const (
	KindTOAv4 = 254
	KindTOAv6 = 253
	LenTOAv4  = 8
	LenTOAv6  = 20
)

// MaxOptions is the size of the TCP option space (doff 15).
const MaxOptions = 40

// ErrNotTCP is returned by ParseFrame for a frame that is not a TCP segment over IPv4 or IPv6.
var ErrNotTCP = errors.New("not a TCP segment")

// Segment is one TCP segment between two endpoints of the same family.
type Segment struct {
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    uint8
	Window   uint16
	// Options are the raw option bytes; Frame pads them with zeros (EOL) to a multiple of 4.
	Options []byte
	Payload []byte
}

// TOAv4 returns the IPv4 TOA option: kind 254, length 8, port, address.
func TOAv4(client netip.AddrPort) []byte {
	a := client.Addr().As4()
	b := []byte{KindTOAv4, LenTOAv4, 0, 0}
	binary.BigEndian.PutUint16(b[2:], client.Port())
	return append(b, a[:]...)
}

// TOAv6 returns an IPv6 TOA option with the given kind (253 as Alibaba, 254 as DPVS), length 20.
func TOAv6(kind byte, client netip.AddrPort) []byte {
	a := client.Addr().As16()
	b := []byte{kind, LenTOAv6, 0, 0}
	binary.BigEndian.PutUint16(b[2:], client.Port())
	return append(b, a[:]...)
}

// NOPs returns n NOP options.
func NOPs(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 1
	}
	return b
}

// TCP returns the TCP header, options and payload of s with the checksum filled in.
func (s Segment) TCP() ([]byte, error) {
	if s.Src.Addr().Is4() != s.Dst.Addr().Is4() {
		return nil, fmt.Errorf("segment %v -> %v: address families differ", s.Src, s.Dst)
	}
	opts := append([]byte(nil), s.Options...)
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	if len(opts) > MaxOptions {
		return nil, fmt.Errorf("segment %v -> %v: %d option bytes, the maximum is %d", s.Src, s.Dst, len(opts), MaxOptions)
	}
	h := make([]byte, 20, 20+len(opts)+len(s.Payload))
	binary.BigEndian.PutUint16(h[0:], s.Src.Port())
	binary.BigEndian.PutUint16(h[2:], s.Dst.Port())
	binary.BigEndian.PutUint32(h[4:], s.Seq)
	binary.BigEndian.PutUint32(h[8:], s.Ack)
	h[12] = byte((20+len(opts))/4) << 4
	h[13] = s.Flags
	win := s.Window
	if win == 0 {
		win = 65535
	}
	binary.BigEndian.PutUint16(h[14:], win)
	h = append(h, opts...)
	h = append(h, s.Payload...)
	binary.BigEndian.PutUint16(h[16:], inet.L4Checksum(s.Src.Addr(), s.Dst.Addr(), 6, h))
	return h, nil
}

// Packet returns s as an IPv4 or IPv6 packet.
func (s Segment) Packet() ([]byte, error) {
	tcp, err := s.TCP()
	if err != nil {
		return nil, err
	}
	if s.Src.Addr().Is4() {
		ip := make([]byte, 20, 20+len(tcp))
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(tcp)))
		binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
		ip[8] = 64
		ip[9] = 6
		sa, da := s.Src.Addr().As4(), s.Dst.Addr().As4()
		copy(ip[12:], sa[:])
		copy(ip[16:], da[:])
		binary.BigEndian.PutUint16(ip[10:], inet.Checksum(ip))
		return append(ip, tcp...), nil
	}
	ip := make([]byte, 40, 40+len(tcp))
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(tcp)))
	ip[6] = 6
	ip[7] = 64
	sa, da := s.Src.Addr().As16(), s.Dst.Addr().As16()
	copy(ip[8:], sa[:])
	copy(ip[24:], da[:])
	return append(ip, tcp...), nil
}

// Frame returns s as an Ethernet frame from src to dst.
func (s Segment) Frame(src, dst net.HardwareAddr) ([]byte, error) {
	pkt, err := s.Packet()
	if err != nil {
		return nil, err
	}
	f := make([]byte, 14, 14+len(pkt))
	copy(f[0:6], dst)
	copy(f[6:12], src)
	if s.Src.Addr().Is4() {
		binary.BigEndian.PutUint16(f[12:], 0x0800)
	} else {
		binary.BigEndian.PutUint16(f[12:], 0x86dd)
	}
	return append(f, pkt...), nil
}

// ParseFrame decodes an Ethernet frame carrying a TCP segment over IPv4 or IPv6 (no IPv6
// extension headers). It returns ErrNotTCP for anything else.
func ParseFrame(f []byte) (Segment, error) {
	if len(f) < 14 {
		return Segment{}, ErrNotTCP
	}
	var s Segment
	var tcp []byte
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0800:
		ip := f[14:]
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != 6 {
			return Segment{}, ErrNotTCP
		}
		ihl := int(ip[0]&0xf) * 4
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if ihl < 20 || total < ihl || total > len(ip) {
			return Segment{}, ErrNotTCP
		}
		src, _ := netip.AddrFromSlice(ip[12:16])
		dst, _ := netip.AddrFromSlice(ip[16:20])
		s.Src, s.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
		tcp = ip[ihl:total]
	case 0x86dd:
		ip := f[14:]
		if len(ip) < 40 || ip[0]>>4 != 6 || ip[6] != 6 {
			return Segment{}, ErrNotTCP
		}
		plen := int(binary.BigEndian.Uint16(ip[4:]))
		if 40+plen > len(ip) {
			return Segment{}, ErrNotTCP
		}
		src, _ := netip.AddrFromSlice(ip[8:24])
		dst, _ := netip.AddrFromSlice(ip[24:40])
		s.Src, s.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
		tcp = ip[40 : 40+plen]
	default:
		return Segment{}, ErrNotTCP
	}
	if len(tcp) < 20 {
		return Segment{}, ErrNotTCP
	}
	doff := int(tcp[12]>>4) * 4
	if doff < 20 || doff > len(tcp) {
		return Segment{}, ErrNotTCP
	}
	s.Src = netip.AddrPortFrom(s.Src.Addr(), binary.BigEndian.Uint16(tcp[0:]))
	s.Dst = netip.AddrPortFrom(s.Dst.Addr(), binary.BigEndian.Uint16(tcp[2:]))
	s.Seq = binary.BigEndian.Uint32(tcp[4:])
	s.Ack = binary.BigEndian.Uint32(tcp[8:])
	s.Flags = tcp[13]
	s.Window = binary.BigEndian.Uint16(tcp[14:])
	s.Options = append([]byte(nil), tcp[20:doff]...)
	s.Payload = append([]byte(nil), tcp[doff:]...)
	return s, nil
}
