// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package pktfix is the language of the packet fixtures in testdata/packets: one line describes
// one IPv4 or IPv6 TCP or UDP packet, every header field of it, so that a fixture pins what the
// director makes of an input packet (FULLNAT, SYNPROXY and TOA rewriting) the way Katran's
// fixtures do, with variables for the values the director picks at random (local ports, ISN
// offsets, cookies).
//
//	tcp4 192.0.2.2:42000 > 203.0.113.10:80 ttl=64 tos=0 id=0x1234 df=1 flags=S seq=0x10000000
//	     ack=0 win=64240 urg=0 opts=mss:1460,sackok,ts:4660:0,nop,ws:7 data=- csum=ok
//	tcp4 198.51.100.201:$LPORT > 198.51.100.11:80 ttl=64 ... seq=$RSEQ ... opts=toa:192.0.2.2:42000,...
//
// A value is a literal (decimal or 0x hex number, address, flag letters, hex bytes), `*` (any),
// `$NAME` (binds NAME to the value the first time, must equal it after) or NAME followed by
// +N, -N, >>N or <<N, applied left to right (NAME must be bound; each step wraps at the field's
// width, so sequence numbers work; the shifts rescale windows); N may be a bound $OTHER, so
// `$TS+$OFF-$BASE` moves a timestamp from one clock to another and `$WIN<<$WS>>9` rescales a
// window by a scale the peer chose. data takes `$NAME`
// too, bound to the hex bytes.
//
// Fields, in this order: for IPv4 ttl, tos, id, df; for IPv6 hlim, tc, flow; for TCP flags (the
// letters of FSRPAUEC in that order, `-` for none), seq, ack, win, urg, opts; then data (hex,
// `-` for none) and csum: `ok` or `bad` for a complete checksum, `partial` when the packet
// still waits for checksum offload and its checksum field holds the right pseudo-header sum,
// `partial-bad` when that sum is wrong. For IPv4, csum covers the header checksum too.
//
// Options: mss:N, ws:N, sackok, ts:VAL:ECR, sack:L..R;L..R, toa:ADDR:PORT (kind 254 length 8 for
// IPv4, 253 length 20 for IPv6), nop, eol, and optK:HEX for any other kind K; `-` for none.
package pktfix

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/fullnat/fullnat/internal/inet"
)

// Checksum states of a packet (the csum field).
const (
	CsumOK         = "ok"
	CsumBad        = "bad"
	CsumPartial    = "partial"
	CsumPartialBad = "partial-bad"
)

// TCP option kinds the language names.
const (
	OptEOL    = 0
	OptNOP    = 1
	OptMSS    = 2
	OptWS     = 3
	OptSACKOK = 4
	OptSACK   = 5
	OptTS     = 8
	OptTOA6   = 253
	OptTOA4   = 254
)

// ErrNotIP is returned by Decode for what is not an IPv4 or IPv6 TCP or UDP packet.
var ErrNotIP = errors.New("not an IPv4 or IPv6 TCP or UDP packet")

// Option is one TCP option: its kind and the bytes after the length byte.
type Option struct {
	Kind byte
	Data []byte
}

// Packet is one IPv4 or IPv6 TCP or UDP packet, every field the language describes.
type Packet struct {
	Proto    byte // 6 (TCP) or 17 (UDP)
	Src, Dst netip.AddrPort

	TTL, TOS uint8 // IPv4
	ID       uint16
	DF       bool
	HopLimit uint8 // IPv6
	TC       uint8
	Flow     uint32

	Flags    uint8 // TCP
	Seq, Ack uint32
	Win, Urg uint16
	Opts     []Option

	Data []byte
	// Csum is one of the Csum constants: what Decode found, or what Marshal makes (ok or bad).
	Csum string
}

// Is6 reports whether p is an IPv6 packet.
func (p Packet) Is6() bool { return p.Src.Addr().Is6() }

// Marshal returns p as IP packet bytes with every checksum filled in (spoilt when p.Csum is
// CsumBad).
func (p Packet) Marshal() ([]byte, error) {
	if p.Src.Addr().Is6() != p.Dst.Addr().Is6() {
		return nil, fmt.Errorf("packet %v > %v: address families differ", p.Src, p.Dst)
	}
	var l4 []byte
	switch p.Proto {
	case 6:
		var opts []byte
		for _, o := range p.Opts {
			if o.Kind == OptEOL || o.Kind == OptNOP {
				opts = append(opts, o.Kind)
				continue
			}
			opts = append(opts, o.Kind, byte(2+len(o.Data)))
			opts = append(opts, o.Data...)
		}
		if len(opts)%4 != 0 || len(opts) > 40 {
			return nil, fmt.Errorf("packet %v > %v: %d option bytes, want a multiple of 4 up to 40", p.Src, p.Dst, len(opts))
		}
		l4 = make([]byte, 20, 20+len(opts)+len(p.Data))
		binary.BigEndian.PutUint16(l4[0:], p.Src.Port())
		binary.BigEndian.PutUint16(l4[2:], p.Dst.Port())
		binary.BigEndian.PutUint32(l4[4:], p.Seq)
		binary.BigEndian.PutUint32(l4[8:], p.Ack)
		l4[12] = byte((20+len(opts))/4) << 4
		l4[13] = p.Flags
		binary.BigEndian.PutUint16(l4[14:], p.Win)
		binary.BigEndian.PutUint16(l4[18:], p.Urg)
		l4 = append(append(l4, opts...), p.Data...)
	case 17:
		l4 = make([]byte, 8, 8+len(p.Data))
		binary.BigEndian.PutUint16(l4[0:], p.Src.Port())
		binary.BigEndian.PutUint16(l4[2:], p.Dst.Port())
		binary.BigEndian.PutUint16(l4[4:], uint16(8+len(p.Data)))
		l4 = append(l4, p.Data...)
	default:
		return nil, fmt.Errorf("packet %v > %v: protocol %d is neither TCP nor UDP", p.Src, p.Dst, p.Proto)
	}
	csumAt := 16
	if p.Proto == 17 {
		csumAt = 6
	}
	sum := inet.L4Checksum(p.Src.Addr(), p.Dst.Addr(), p.Proto, l4)
	if p.Proto == 17 && sum == 0 {
		sum = 0xffff
	}
	if p.Csum == CsumBad {
		sum ^= 0x0101
	}
	binary.BigEndian.PutUint16(l4[csumAt:], sum)
	if p.Is6() {
		ip := make([]byte, 40, 40+len(l4))
		binary.BigEndian.PutUint32(ip[0:], 6<<28|uint32(p.TC)<<20|p.Flow&0xfffff)
		binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
		ip[6] = p.Proto
		ip[7] = p.HopLimit
		s, d := p.Src.Addr().As16(), p.Dst.Addr().As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
		return append(ip, l4...), nil
	}
	ip := make([]byte, 20, 20+len(l4))
	ip[0] = 0x45
	ip[1] = p.TOS
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
	binary.BigEndian.PutUint16(ip[4:], p.ID)
	if p.DF {
		ip[6] = 0x40
	}
	ip[8] = p.TTL
	ip[9] = p.Proto
	s, d := p.Src.Addr().As4(), p.Dst.Addr().As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], inet.Checksum(ip))
	return append(ip, l4...), nil
}

// Decode parses an IP packet. partial says the packet still waits for checksum offload (the
// kernel's CHECKSUM_PARTIAL, seen by a packet socket as TP_STATUS_CSUMNOTREADY): its L4
// checksum field then holds the pseudo-header sum, which is what is checked.
func Decode(b []byte, partial bool) (Packet, error) {
	var p Packet
	var l4 []byte
	ipOK := true
	if len(b) < 1 {
		return p, ErrNotIP
	}
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0xf) * 4
		if ihl < 20 || len(b) < ihl {
			return p, fmt.Errorf("%w: IPv4 header of %d bytes in %d", ErrNotIP, ihl, len(b))
		}
		tot := int(binary.BigEndian.Uint16(b[2:]))
		if tot < ihl || tot > len(b) {
			return p, fmt.Errorf("%w: IPv4 total length %d of %d bytes", ErrNotIP, tot, len(b))
		}
		if binary.BigEndian.Uint16(b[6:])&0x3fff != 0 {
			return p, fmt.Errorf("%w: an IPv4 fragment", ErrNotIP)
		}
		p.TOS, p.ID, p.DF, p.TTL, p.Proto = b[1], binary.BigEndian.Uint16(b[4:]), b[6]&0x40 != 0, b[8], b[9]
		src, dst := netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		p.Src, p.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
		ipOK = inet.Checksum(b[:ihl]) == 0
		l4 = b[ihl:tot]
	case 6:
		if len(b) < 40 {
			return p, fmt.Errorf("%w: IPv6 header of %d bytes", ErrNotIP, len(b))
		}
		pl := int(binary.BigEndian.Uint16(b[4:]))
		if 40+pl > len(b) {
			return p, fmt.Errorf("%w: IPv6 payload length %d of %d bytes", ErrNotIP, pl, len(b)-40)
		}
		v := binary.BigEndian.Uint32(b[0:])
		p.TC, p.Flow, p.Proto, p.HopLimit = uint8(v>>20), v&0xfffff, b[6], b[7]
		src, dst := netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		p.Src, p.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
		l4 = b[40 : 40+pl]
	default:
		return p, ErrNotIP
	}
	csumAt := 16
	switch p.Proto {
	case 6:
		if len(l4) < 20 {
			return p, fmt.Errorf("%w: TCP header of %d bytes", ErrNotIP, len(l4))
		}
		doff := int(l4[12]>>4) * 4
		if doff < 20 || doff > len(l4) {
			return p, fmt.Errorf("%w: TCP data offset %d of %d bytes", ErrNotIP, doff, len(l4))
		}
		p.Seq, p.Ack = binary.BigEndian.Uint32(l4[4:]), binary.BigEndian.Uint32(l4[8:])
		p.Flags, p.Win, p.Urg = l4[13], binary.BigEndian.Uint16(l4[14:]), binary.BigEndian.Uint16(l4[18:])
		var err error
		if p.Opts, err = decodeOpts(l4[20:doff]); err != nil {
			return p, err
		}
		p.Data = append([]byte(nil), l4[doff:]...)
	case 17:
		if len(l4) < 8 {
			return p, fmt.Errorf("%w: UDP header of %d bytes", ErrNotIP, len(l4))
		}
		p.Data = append([]byte(nil), l4[8:]...)
		csumAt = 6
	default:
		return p, fmt.Errorf("%w: protocol %d", ErrNotIP, p.Proto)
	}
	p.Src = netip.AddrPortFrom(p.Src.Addr(), binary.BigEndian.Uint16(l4[0:]))
	p.Dst = netip.AddrPortFrom(p.Dst.Addr(), binary.BigEndian.Uint16(l4[2:]))
	l4OK := false
	if partial {
		// The field holds the folded, uncomplemented pseudo-header sum; the device adds the rest.
		want := ^inet.Checksum(inet.PseudoHeader(p.Src.Addr(), p.Dst.Addr(), p.Proto, len(l4)))
		l4OK = binary.BigEndian.Uint16(l4[csumAt:]) == want
	} else {
		l4OK = inet.L4Checksum(p.Src.Addr(), p.Dst.Addr(), p.Proto, l4) == 0
	}
	switch {
	case partial && ipOK && l4OK:
		p.Csum = CsumPartial
	case partial:
		p.Csum = CsumPartialBad
	case ipOK && l4OK:
		p.Csum = CsumOK
	default:
		p.Csum = CsumBad
	}
	return p, nil
}

func decodeOpts(b []byte) ([]Option, error) {
	var out []Option
	for len(b) > 0 {
		if b[0] == OptEOL || b[0] == OptNOP {
			out = append(out, Option{Kind: b[0]})
			b = b[1:]
			continue
		}
		if len(b) < 2 || int(b[1]) < 2 || int(b[1]) > len(b) {
			return nil, fmt.Errorf("%w: bad TCP option at % x", ErrNotIP, b)
		}
		out = append(out, Option{Kind: b[0], Data: append([]byte(nil), b[2:b[1]]...)})
		b = b[b[1]:]
	}
	return out, nil
}

// flagLetters are TCP's flag bits from the lowest, as the language writes them.
const flagLetters = "FSRPAUEC"

func formatFlags(f uint8) string {
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		if f&(1<<i) != 0 {
			sb.WriteByte(flagLetters[i])
		}
	}
	if sb.Len() == 0 {
		return "-"
	}
	return sb.String()
}

func parseFlags(s string) (uint8, error) {
	if s == "-" {
		return 0, nil
	}
	var f uint8
	for _, c := range s {
		i := strings.IndexRune(flagLetters, c)
		if i < 0 {
			return 0, fmt.Errorf("flag %q is not one of %s", c, flagLetters)
		}
		f |= 1 << i
	}
	return f, nil
}
