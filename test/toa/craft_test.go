// Copyright The fullnat Authors.
// SPDX-License-Identifier: Apache-2.0

package toa

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/fullnat/fullnat/internal/inet"
)

func TestTOAOptionLayout(t *testing.T) {
	got := TOAv4(netip.MustParseAddrPort("203.0.113.7:41000"))
	want := []byte{254, 8, 0xa0, 0x28, 203, 0, 113, 7}
	if !bytes.Equal(got, want) {
		t.Errorf("TOAv4 = % x, want % x", got, want)
	}
	got = TOAv6(KindTOAv6, netip.MustParseAddrPort("[2001:db8::7]:80"))
	want = []byte{253, 20, 0, 80, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}
	if !bytes.Equal(got, want) {
		t.Errorf("TOAv6 = % x, want % x", got, want)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	src, dst := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
	for _, c := range []struct{ src, dst string }{
		{"198.51.100.1:40000", "198.51.100.11:80"},
		{"[2001:db8:2::1]:40000", "[2001:db8:2::11]:80"},
	} {
		s := Segment{
			Src: netip.MustParseAddrPort(c.src), Dst: netip.MustParseAddrPort(c.dst),
			Seq: 0x01020304, Ack: 0xa0b0c0d0, Flags: FlagACK | FlagPSH,
			Options: TOAv4(netip.MustParseAddrPort("203.0.113.7:41000"))[:7], // padded to 8
			Payload: []byte("hello"),
		}
		f, err := s.Frame(src, dst)
		if err != nil {
			t.Fatalf("%s: Frame: %v", c.src, err)
		}
		if !bytes.Equal(f[0:6], dst) || !bytes.Equal(f[6:12], src) {
			t.Errorf("%s: MAC addresses % x", c.src, f[:12])
		}
		p, err := ParseFrame(f)
		if err != nil {
			t.Fatalf("%s: ParseFrame: %v", c.src, err)
		}
		if p.Src != s.Src || p.Dst != s.Dst || p.Seq != s.Seq || p.Ack != s.Ack || p.Flags != s.Flags ||
			p.Window != 65535 || string(p.Payload) != "hello" {
			t.Errorf("%s: parsed %+v, sent %+v", c.src, p, s)
		}
		wantOpts := append(append([]byte(nil), s.Options...), 0)
		if !bytes.Equal(p.Options, wantOpts) {
			t.Errorf("%s: options % x, want % x", c.src, p.Options, wantOpts)
		}
		// A packet with a correct checksum sums to zero.
		tcp, err := s.TCP()
		if err != nil {
			t.Fatal(err)
		}
		if sum := inet.L4Checksum(s.Src.Addr(), s.Dst.Addr(), 6, tcp); sum != 0 {
			t.Errorf("%s: TCP checksum does not verify (%#04x)", c.src, sum)
		}
		if s.Src.Addr().Is4() {
			if sum := inet.Checksum(f[14:34]); sum != 0 {
				t.Errorf("IPv4 header checksum does not verify (%#04x)", sum)
			}
		}
	}
}

func TestSegmentErrors(t *testing.T) {
	s := Segment{
		Src: netip.MustParseAddrPort("198.51.100.1:1"), Dst: netip.MustParseAddrPort("198.51.100.11:2"),
		Options: NOPs(MaxOptions + 1),
	}
	if _, err := s.TCP(); err == nil {
		t.Error("41 option bytes accepted")
	}
	s.Options = NOPs(MaxOptions)
	tcp, err := s.TCP()
	if err != nil || len(tcp) != 60 || tcp[12]>>4 != 15 {
		t.Errorf("40 option bytes: len %d doff %d err %v", len(tcp), tcp[12]>>4, err)
	}
	s.Dst = netip.MustParseAddrPort("[2001:db8::1]:2")
	if _, err := s.TCP(); err == nil {
		t.Error("mixed address families accepted")
	}
	if _, err := ParseFrame([]byte{1, 2, 3}); !errors.Is(err, ErrNotTCP) {
		t.Errorf("short frame: %v, want ErrNotTCP", err)
	}
	arp := make([]byte, 60)
	arp[12], arp[13] = 0x08, 0x06
	if _, err := ParseFrame(arp); !errors.Is(err, ErrNotTCP) {
		t.Errorf("ARP frame: %v, want ErrNotTCP", err)
	}
}
