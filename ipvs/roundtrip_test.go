// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
)

func encodeNest(t testing.TB, fn func(ae *attrWriter) error) []byte {
	t.Helper()
	var w attrWriter
	if err := fn(&w); err != nil {
		t.Fatal(err)
	}
	return w.b
}

func TestRoundTrip(t *testing.T) {
	svcs := append([]Service{}, goldenServices...)
	svcs = append(svcs, Service{Family: INET, Protocol: TCP, Address: netip.MustParseAddr("192.0.2.9"), Port: 443,
		Scheduler: "wlc", Flags: FlagSynProxy, Netmask: 0xffffffff, EstablishedTimeout: 120, ProxyProtocol: ProxyProtocolV1},
		Service{Family: INET6, FWMark: 9, Scheduler: "rr", Netmask: 128, ProxyProtocol: ProxyProtocolV2})
	for _, s := range svcs {
		b := encodeNest(t, func(ae *attrWriter) error {
			return encodeService(ae, s, true, FeatureEstTimeout|FeatureProxyProtocol)
		})
		got, err := decodeService(b)
		if err != nil || got != s {
			t.Errorf("service %v: round trip gives %+v, %v", s, got, err)
		}
	}
	dests := append([]Destination{goldenDest6}, goldenDests...)
	dests = append(dests, Destination{Family: INET, Address: netip.MustParseAddr("198.51.100.20"), Port: 80, ForwardMethod: FullNAT, Weight: 9})
	for _, d := range dests {
		b := encodeNest(t, func(ae *attrWriter) error { return encodeDest(ae, d, INET, true) })
		got, err := decodeDest(b, INET)
		if err != nil || got != d {
			t.Errorf("destination %v: round trip gives %+v, %v", d, got, err)
		}
	}
	for _, d := range goldenDaemonsListed {
		b := encodeNest(t, func(ae *attrWriter) error { return encodeDaemon(ae, d, true) })
		got, err := decodeDaemon(b)
		if err != nil || got != d {
			t.Errorf("daemon %v: round trip gives %+v, %v", d, got, err)
		}
	}
	for _, la := range []LocalAddress{{Address: netip.MustParseAddr("203.0.113.1")}, {Address: netip.MustParseAddr("2001:db8::5")}} {
		f := INET
		if la.Address.Is6() {
			f = INET6
		}
		b := encodeNest(t, func(ae *attrWriter) error { return encodeLaddr(ae, la, f) })
		got, err := decodeLaddr(b, f)
		if err != nil || got != la {
			t.Errorf("local address %v: round trip gives %+v, %v", la, got, err)
		}
	}
	tm := Timeouts{TCP: time.Hour, TCPFin: 2 * time.Minute, UDP: 5 * time.Minute}
	b := encodeNest(t, func(ae *attrWriter) error { return encodeTimeouts(ae, tm) })
	if got, err := decodeTimeouts(b); err != nil || got != tm {
		t.Errorf("timeouts: round trip gives %+v, %v", got, err)
	}
}

// goldenSeeds returns the payloads of every golden fixture message, for
// fuzz seeds.
func goldenSeeds(f *testing.F) [][]byte {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "ipvs", "*", "*.bin"))
	var out [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		msgs, err := splitMessages(b)
		if err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		for _, m := range msgs {
			if len(m.Data) >= 4 {
				out = append(out, m.Data[4:])
			}
		}
	}
	return out
}

// nestSeeds returns the nests of type typ inside the golden payloads.
func nestSeeds(f *testing.F, typ uint16) [][]byte {
	var out [][]byte
	for _, p := range goldenSeeds(f) {
		if n, ok, err := nestOf(p, typ); err == nil && ok {
			out = append(out, n)
		}
	}
	return out
}

func FuzzDecodeService(f *testing.F) {
	for _, s := range nestSeeds(f, cmdAttrService) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s1, err := decodeService(b)
		if err != nil {
			return
		}
		// re-encoding a decoded service is stable after one step
		enc := func(s Service) (Service, bool) {
			var ae attrWriter
			if err := encodeService(&ae, s, true, FeatureEstTimeout|FeatureProxyProtocol); err != nil {
				return Service{}, false
			}
			out, err := decodeService(ae.b)
			if err != nil {
				t.Fatalf("decode of encoded %+v: %v", s, err)
			}
			return out, true
		}
		s2, ok := enc(s1)
		if !ok {
			return
		}
		s3, ok := enc(s2)
		if !ok || s3 != s2 {
			t.Fatalf("unstable round trip: %+v -> %+v (%v)", s2, s3, ok)
		}
	})
}

func FuzzDecodeDest(f *testing.F) {
	for _, s := range nestSeeds(f, cmdAttrDest) {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		fam := INET
		if v6 {
			fam = INET6
		}
		d1, err := decodeDest(b, fam)
		if err != nil {
			return
		}
		var ae attrWriter
		if err := encodeDest(&ae, d1, fam, true); err != nil {
			return
		}
		d2, err := decodeDest(ae.b, fam)
		d1.Stats, d1.Stats64 = Stats{}, Stats{}
		d1.ActiveConns, d1.InactiveConns, d1.PersistConns = 0, 0, 0
		if err != nil || d2 != d1 {
			t.Fatalf("round trip %+v -> %+v, %v", d1, d2, err)
		}
	})
}

func FuzzDecodeDaemon(f *testing.F) {
	for _, s := range nestSeeds(f, cmdAttrDaemon) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d1, err := decodeDaemon(b)
		if err != nil {
			return
		}
		var ae attrWriter
		if err := encodeDaemon(&ae, d1, true); err != nil {
			return
		}
		d2, err := decodeDaemon(ae.b)
		if err != nil {
			t.Fatal(err)
		}
		if d1.McastGroup.Is4In6() {
			return // sent as IPv4, read back as IPv4
		}
		if d2 != d1 {
			t.Fatalf("round trip %+v -> %+v", d1, d2)
		}
	})
}

func FuzzDecodeLaddr(f *testing.F) {
	f.Add(attrs(f, func(ae *netlink.AttributeEncoder) {
		ae.Bytes(laddrAttrAddr, ip16("203.0.113.5"))
		ae.Uint64(laddrAttrPortConflict, 3)
		ae.Uint32(laddrAttrConnCounts, 4)
	}), false)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		fam := INET
		if v6 {
			fam = INET6
		}
		la, err := decodeLaddr(b, fam)
		if err != nil {
			return
		}
		if !la.Address.IsValid() {
			t.Fatalf("decoded without address: %+v", la)
		}
	})
}

func FuzzDecodeInfo(f *testing.F) {
	for _, s := range goldenSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeInfo(b)
		_, _ = decodeTimeouts(b)
		_, _ = decodeStats(b)
	})
}

func FuzzDecodeMessages(f *testing.F) {
	for _, s := range goldenSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = decodeServiceMsg(b)
		_, _, _ = decodeDestMsg(b, INET6)
		_, _, _ = decodeLaddrMsg(b, INET)
		_, _, _ = decodeDaemonMsg(b)
	})
}

func FuzzParseConnections(f *testing.F) {
	f.Add(stockConns)
	f.Add(fnatConns)
	f.Fuzz(func(t *testing.T, text string) {
		n := 0
		for c, err := range ParseConnections(strings.NewReader(text)) {
			if err != nil {
				return
			}
			if !c.Client.IsValid() || !c.Virtual.IsValid() || !c.Destination.IsValid() {
				t.Fatalf("entry with invalid address: %+v", c)
			}
			n++
		}
		if n > strings.Count(text, "\n")+1 {
			t.Fatalf("%d entries from %d lines", n, strings.Count(text, "\n")+1)
		}
	})
}

// TestUpdateServiceKeep checks what an update that keeps SYNPROXY, the
// ESTABLISHED timeout or the PROXY protocol sends: a flags mask without
// FlagSynProxy (the kernel starts from the service's flags), no ESTABLISHED
// timeout, no PROXY protocol version.
func TestUpdateServiceKeep(t *testing.T) {
	s := Service{Family: INET, Protocol: TCP, Address: netip.MustParseAddr("192.0.2.9"), Port: 443,
		Scheduler: "wlc", EstablishedTimeout: 120, ProxyProtocol: ProxyProtocolV1}
	for _, tc := range []struct {
		keep    ServiceKeep
		mask    uint32
		estAttr bool
		ppAttr  bool
	}{
		{0, 0xffffffff, true, true},
		{KeepSynProxy, 0xffffffff &^ uint32(FlagSynProxy), true, true},
		{KeepEstablishedTimeout, 0xffffffff, false, true},
		{KeepProxyProtocol, 0xffffffff, true, false},
		{KeepSynProxy | KeepEstablishedTimeout | KeepProxyProtocol, 0xffffffff &^ uint32(FlagSynProxy), false, false},
	} {
		b := encodeNest(t, func(ae *attrWriter) error {
			return encodeServiceKeep(ae, s, true, FeatureEstTimeout|FeatureProxyProtocol, tc.keep)
		})
		ad, err := netlink.NewAttributeDecoder(b)
		if err != nil {
			t.Fatal(err)
		}
		var mask uint32
		est, pp := false, false
		for ad.Next() {
			switch ad.Type() {
			case svcAttrFlags:
				mask = binary.NativeEndian.Uint32(ad.Bytes()[4:8])
			case svcAttrEstTimeout:
				est = true
			case svcAttrProxyProtocol:
				pp = true
			}
		}
		if mask != tc.mask || est != tc.estAttr || pp != tc.ppAttr {
			t.Errorf("keep %#x: flags mask %#x, ESTABLISHED timeout sent %v, PROXY protocol sent %v; want %#x, %v, %v",
				tc.keep, mask, est, pp, tc.mask, tc.estAttr, tc.ppAttr)
		}
	}
}

// TestProxyProtocolEncoding: the version goes out as one byte only to a
// module that has the feature, a version the kernel does not know is
// refused before anything is sent, and the names read as ipvsadm writes
// them.
func TestProxyProtocolEncoding(t *testing.T) {
	s := Service{Protocol: TCP, Address: netip.MustParseAddr("192.0.2.9"), Port: 443}
	for _, have := range []Features{0, FeatureProxyProtocol} {
		b := encodeNest(t, func(ae *attrWriter) error { return encodeService(ae, s, true, have) })
		n, ok, err := nestOf(b, svcAttrProxyProtocol)
		if err != nil || ok != (have != 0) || (ok && string(n) != "\x00") {
			t.Errorf("features %v: PROXY protocol attribute %q, sent %v, %v", have, n, ok, err)
		}
	}
	s.ProxyProtocol = 3
	var w attrWriter
	err := encodeService(&w, s, true, FeatureProxyProtocol)
	if err == nil || !strings.Contains(err.Error(), "ProxyProtocol(3)") {
		t.Errorf("version 3: err = %v, want one naming the version", err)
	}
	for p, want := range map[ProxyProtocol]string{ProxyProtocolOff: "off", ProxyProtocolV1: "v1", ProxyProtocolV2: "v2", 7: "ProxyProtocol(7)"} {
		if p.String() != want {
			t.Errorf("ProxyProtocol(%d).String() = %q, want %q", uint8(p), p.String(), want)
		}
	}
	if got := (FeatureFullNAT | FeatureProxyProtocol | FeatureTableLaddrs | FeatureTableNoStats | 0x200).String(); got != "fullnat|proxy-protocol|table-laddrs|table-no-stats|0x200" {
		t.Errorf("Features.String() = %q", got)
	}
}
