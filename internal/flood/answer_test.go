// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package flood

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// TestReply: a SYN gets a SYN-ACK and a SYN-ACK its ACK, from the address and port the packet
// went to, acknowledging the packet's sequence number, with correct checksums; nothing else
// gets an answer.
func TestReply(t *testing.T) {
	client, vip := netip.MustParseAddr("198.18.0.7"), netip.MustParseAddr("203.0.113.10")
	for _, tc := range []struct {
		name      string
		flags     byte
		want      byte
		wantSeq   uint32
		wantMSS   bool
		answered  bool
		fragment  bool
		truncated bool
	}{
		{name: "SYN", flags: SYN, want: SYN | ACK, wantMSS: true, answered: true},
		{name: "SYN-ACK", flags: SYN | ACK, want: ACK, wantSeq: 0x0a0b0c0d, answered: true},
		{name: "ACK", flags: ACK},
		{name: "RST", flags: RST | ACK},
		{name: "SYN+FIN", flags: SYN | FIN},
		{name: "fragment", flags: SYN, fragment: true},
		{name: "truncated", flags: SYN, truncated: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Packet(make([]byte, 96), client, vip, 4242, 80, tc.flags, 0x01020304, 0x0a0b0c0d)
			if tc.fragment {
				binary.BigEndian.PutUint16(in[6:], 0x2000) // more fragments
			}
			if tc.truncated {
				in = in[:30]
			}
			p, ok := reply(make([]byte, 96), in)
			if ok != tc.answered {
				t.Fatalf("answered %v, want %v", ok, tc.answered)
			}
			if !ok {
				return
			}
			if netip.AddrFrom4([4]byte(p[12:16])) != vip || netip.AddrFrom4([4]byte(p[16:20])) != client {
				t.Fatalf("addresses % x", p[12:20])
			}
			verify(t, "IPv4 header", p[:20])
			tcp := p[20:]
			verify(t, "TCP", append(append([]byte{}, p[12:20]...), 0, 6, byte(len(tcp)>>8), byte(len(tcp))), tcp)
			if sp, dp := binary.BigEndian.Uint16(tcp), binary.BigEndian.Uint16(tcp[2:]); sp != 80 || dp != 4242 {
				t.Errorf("ports %d -> %d", sp, dp)
			}
			if tcp[13] != tc.want {
				t.Errorf("flags %#x, want %#x", tcp[13], tc.want)
			}
			if ack := binary.BigEndian.Uint32(tcp[8:]); ack != 0x01020305 {
				t.Errorf("ack %#x, want the packet's seq + 1", ack)
			}
			if seq := binary.BigEndian.Uint32(tcp[4:]); tc.wantSeq != 0 && seq != tc.wantSeq {
				t.Errorf("seq %#x, want %#x", seq, tc.wantSeq)
			}
			if hasMSS := len(tcp) == 24 && tcp[20] == 2 && binary.BigEndian.Uint16(tcp[22:]) == 1460; hasMSS != tc.wantMSS {
				t.Errorf("options % x (MSS wanted: %v)", tcp[20:], tc.wantMSS)
			}
		})
	}
}
