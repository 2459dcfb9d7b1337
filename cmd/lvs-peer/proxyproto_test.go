// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

func TestReadProxyHeader(t *testing.T) {
	v2 := func(h string) string {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tc := range []struct {
		name, in string
		want     proxyHeader
	}{
		{"v1 tcp4", "PROXY TCP4 192.0.2.3 203.0.113.10 42000 80\r\nhello\n",
			proxyHeader{1, netip.MustParseAddrPort("192.0.2.3:42000"), netip.MustParseAddrPort("203.0.113.10:80")}},
		{"v1 tcp6", "PROXY TCP6 2001:db8:1::3 2001:db8:10::10 42000 443\r\nhello\n",
			proxyHeader{1, netip.MustParseAddrPort("[2001:db8:1::3]:42000"), netip.MustParseAddrPort("[2001:db8:10::10]:443")}},
		{"v2 tcp4", v2("0d0a0d0a000d0a515549540a"+"21"+"11"+"000c"+"c0000203"+"cb00710a"+"a410"+"0050") + "hello\n",
			proxyHeader{2, netip.MustParseAddrPort("192.0.2.3:42000"), netip.MustParseAddrPort("203.0.113.10:80")}},
		{"v2 tcp6 with a TLV", v2("0d0a0d0a000d0a515549540a"+"21"+"21"+"0028"+"20010db8000100000000000000000003"+"20010db8001000000000000000000010"+"a410"+"01bb"+"0400014"+"1") + "hello\n",
			proxyHeader{2, netip.MustParseAddrPort("[2001:db8:1::3]:42000"), netip.MustParseAddrPort("[2001:db8:10::10]:443")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tc.in))
			got, err := readProxyHeader(r)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			// what follows the header is the stream's
			rest, _ := io.ReadAll(r)
			if string(rest) != "hello\n" {
				t.Errorf("after the header: %q", rest)
			}
		})
	}
}

func TestReadProxyHeaderBad(t *testing.T) {
	for _, in := range []string{
		"hello\n",
		"PROXY TCP4 192.0.2.3 203.0.113.10 42000 80\n",
		"PROXY TCP4 2001:db8::1 203.0.113.10 42000 80\r\n",
		"PROXY TCP4 192.0.2.3 203.0.113.10 42000 080\r\n",
		"PROXY TCP4 192.0.2.3 203.0.113.10 42000 65536\r\n",
		"PROXY UDP4 192.0.2.3 203.0.113.10 42000 80\r\n",
		"PROXY TCP4 192.0.2.3 203.0.113.10 42000 80 " + strings.Repeat("x", 100) + "\r\n",
		"\r\n\r\n\x00\r\nQUIT\n\x20\x11\x00\x0c" + strings.Repeat("\x00", 12),
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04" + strings.Repeat("\x00", 4),
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + strings.Repeat("\x00", 5),
	} {
		_, err := readProxyHeader(bufio.NewReader(strings.NewReader(in)))
		if !errors.Is(err, errProxyHeader) {
			t.Errorf("%q: got %v, want errProxyHeader", in, err)
		}
	}
}
