// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package pktfix

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
)

// IPv6 extension headers Describe walks, by next-header value.
var ext6 = map[byte]string{0: "hbh", 43: "rt", 44: "frag", 60: "dst", 51: "ah"}

// Describe summarises any IPv4 or IPv6 packet in one line, including what the packet language
// has no words for (ICMP, fragments, extension headers, other protocols): addresses, protocol,
// ICMP type and code, fragment offset, extension headers, and its first bytes in hex.
func Describe(b []byte) string {
	head := b
	if len(head) > 64 {
		head = head[:64]
	}
	return fmt.Sprintf("%s len=%d bytes=%s", describe(b), len(b), hex.EncodeToString(head))
}

func describe(b []byte) string {
	var sb strings.Builder
	if len(b) < 1 {
		return "empty"
	}
	var proto byte
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 || int(b[0]&0xf)*4 < 20 || len(b) < int(b[0]&0xf)*4 {
			sb.WriteString("ipv4 (short)")
			return sb.String()
		}
		ihl := int(b[0]&0xf) * 4
		fmt.Fprintf(&sb, "ipv4 %s > %s ttl=%d", netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20])), b[8])
		proto, l4 = b[9], b[ihl:]
		if fo := binary.BigEndian.Uint16(b[6:]); fo&0x3fff != 0 {
			fmt.Fprintf(&sb, " fragment id=%#x offset=%d more=%d", binary.BigEndian.Uint16(b[4:]), (fo&0x1fff)*8, fo>>13&1)
			if fo&0x1fff != 0 {
				l4 = nil // no transport header in a later fragment
			}
		}
	case 6:
		if len(b) < 40 {
			sb.WriteString("ipv6 (short)")
			return sb.String()
		}
		fmt.Fprintf(&sb, "ipv6 %s > %s hlim=%d", netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40])), b[7])
		proto, l4 = b[6], b[40:]
		for {
			name, ok := ext6[proto]
			if !ok || len(l4) < 8 {
				break
			}
			n := (int(l4[1]) + 1) * 8
			if proto == 51 {
				n = (int(l4[1]) + 2) * 4
			}
			if proto == 44 {
				fo := binary.BigEndian.Uint16(l4[2:])
				fmt.Fprintf(&sb, " ext=frag(offset=%d,more=%d)", fo&^7, fo&1)
				n = 8
				if fo&^7 != 0 {
					proto, l4 = l4[0], nil
					break
				}
			} else {
				fmt.Fprintf(&sb, " ext=%s", name)
			}
			if n > len(l4) {
				l4 = nil
				break
			}
			proto, l4 = l4[0], l4[n:]
		}
	default:
		fmt.Fprintf(&sb, "not IP (version %d)", b[0]>>4)
		return sb.String()
	}
	switch {
	case (proto == 1 || proto == 58) && len(l4) >= 2:
		name := "icmp"
		if proto == 58 {
			name = "icmp6"
		}
		fmt.Fprintf(&sb, " %s type=%d code=%d", name, l4[0], l4[1])
	case (proto == 6 || proto == 17) && len(l4) >= 4:
		name := "tcp"
		if proto == 17 {
			name = "udp"
		}
		fmt.Fprintf(&sb, " %s %d > %d", name, binary.BigEndian.Uint16(l4[0:]), binary.BigEndian.Uint16(l4[2:]))
	default:
		fmt.Fprintf(&sb, " proto=%d", proto)
	}
	return sb.String()
}
