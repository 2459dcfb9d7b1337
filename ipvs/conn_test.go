// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

const stockConns = `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP C0000202 D431 CB00710A 0050 C6336410 0050 TIME_WAIT         119
UDP C0000202 9C40 C0000201 13C4 C633640B 13C4 UDP               298 sip 1-2-3@example.org
TCP 2001:0db8:0001:0000:0000:0000:0000:0002 A0F2 2001:0db8:0010:0000:0000:0000:0000:0010 0050 2001:0db8:0002:0000:0000:0000:0000:0011 0050 ESTABLISHED       899
TCP C0000202 0000 CB00710A 0050 2001:0db8:0002:0000:0000:0000:0000:0015 0050 NONE              300
`

const fnatConns = `Pro FromIP   FPrt ToIP     TPrt LocalIP  LPrt DestIP   DPrt State       Expires PEName PEData
TCP C0000202 D431 CB00710A 0050 C6336401 1388 C6336410 0050 ESTABLISHED       899
TCP 2001:0db8:0001:0000:0000:0000:0000:0002 A0F2 2001:0db8:0010:0000:0000:0000:0000:0010 0050 2001:0db8:0002:0000:0000:0000:0000:0001 C350 2001:0db8:0002:0000:0000:0000:0000:0011 0050 SYN_RECV           30
`

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func collect(t *testing.T, r io.Reader) ([]Connection, error) {
	t.Helper()
	var out []Connection
	for c, err := range ParseConnections(r) {
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, nil
}

func TestParseConnections(t *testing.T) {
	got, err := collect(t, strings.NewReader(stockConns))
	if err != nil {
		t.Fatal(err)
	}
	want := []Connection{
		{Protocol: "TCP", Client: ap("192.0.2.2:54321"), Virtual: ap("203.0.113.10:80"), Destination: ap("198.51.100.16:80"),
			State: "TIME_WAIT", Expires: 119 * time.Second},
		{Protocol: "UDP", Client: ap("192.0.2.2:40000"), Virtual: ap("192.0.2.1:5060"), Destination: ap("198.51.100.11:5060"),
			State: "UDP", Expires: 298 * time.Second, PEName: "sip", PEData: "1-2-3@example.org"},
		{Protocol: "TCP", Client: ap("[2001:db8:1::2]:41202"), Virtual: ap("[2001:db8:10::10]:80"), Destination: ap("[2001:db8:2::11]:80"),
			State: "ESTABLISHED", Expires: 899 * time.Second},
		{Protocol: "TCP", Client: ap("192.0.2.2:0"), Virtual: ap("203.0.113.10:80"), Destination: ap("[2001:db8:2::15]:80"),
			State: "NONE", Expires: 300 * time.Second},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}

	got, err = collect(t, strings.NewReader(fnatConns))
	if err != nil {
		t.Fatal(err)
	}
	want = []Connection{
		{Protocol: "TCP", Client: ap("192.0.2.2:54321"), Virtual: ap("203.0.113.10:80"), Local: ap("198.51.100.1:5000"),
			Destination: ap("198.51.100.16:80"), State: "ESTABLISHED", Expires: 899 * time.Second},
		{Protocol: "TCP", Client: ap("[2001:db8:1::2]:41202"), Virtual: ap("[2001:db8:10::10]:80"), Local: ap("[2001:db8:2::1]:50000"),
			Destination: ap("[2001:db8:2::11]:80"), State: "SYN_RECV", Expires: 30 * time.Second},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fnat: got\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseConnectionsErrors(t *testing.T) {
	hdr := strings.SplitN(stockConns, "\n", 2)[0] + "\n"
	for name, text := range map[string]string{
		"bad header":    "Pro FromIP FPrt\n",
		"half fnat":     "Pro FromIP   FPrt ToIP     TPrt LocalIP DestIP   DPrt State       Expires\n",
		"short line":    hdr + "TCP C0000202 D431\n",
		"bad address":   hdr + "TCP C00002XX D431 CB00710A 0050 C6336410 0050 NONE 1\n",
		"bad port":      hdr + "TCP C0000202 D43 CB00710A 0050 C6336410 0050 NONE 1\n",
		"bad expires":   hdr + "TCP C0000202 D431 CB00710A 0050 C6336410 0050 NONE x\n",
		"zoned v6":      hdr + "TCP fe80::1%eth0 D431 CB00710A 0050 C6336410 0050 NONE 1\n",
		"too many cols": hdr + "TCP C0000202 D431 CB00710A 0050 C6336410 0050 NONE 1 sip a b\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := collect(t, strings.NewReader(text))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "ipvs: connection table") {
				t.Errorf("error %q lacks context", err)
			}
		})
	}
	// the line number is reported
	_, err := collect(t, strings.NewReader(hdr+"TCP C0000202 D431 CB00710A 0050 C6336410 0050 NONE 1\nbad\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error %v does not name line 3", err)
	}
}

// connGen produces a table of n lines without holding it in memory.
type connGen struct {
	n, i int
	buf  []byte
}

func (g *connGen) Read(p []byte) (int, error) {
	for len(g.buf) < len(p) && g.i <= g.n {
		if g.i == 0 {
			g.buf = append(g.buf, "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n"...)
		} else {
			g.buf = fmt.Appendf(g.buf, "TCP %08X %04X CB00710A 0050 C6336410 0050 ESTABLISHED     %3d\n", 0xC6120000+g.i, g.i%65536, g.i%900)
		}
		g.i++
	}
	if len(g.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

func TestParseConnectionsStreaming(t *testing.T) {
	const n = 200000
	count := 0
	for c, err := range ParseConnections(&connGen{n: n}) {
		if err != nil {
			t.Fatal(err)
		}
		count++
		if c.Client.Port() != uint16(count%65536) {
			t.Fatalf("entry %d: %+v", count, c)
		}
	}
	if count != n {
		t.Errorf("parsed %d entries, want %d", count, n)
	}
	// stopping early stops reading
	g := &connGen{n: n}
	seen := 0
	for range ParseConnections(g) {
		seen++
		if seen == 10 {
			break
		}
	}
	if g.i >= n {
		t.Errorf("reader was drained after break (line %d)", g.i)
	}
}

func TestReadConnectionsMissing(t *testing.T) {
	for _, err := range ReadConnections(t.TempDir() + "/nosuch") {
		if err == nil || !strings.Contains(err.Error(), "nosuch") {
			t.Errorf("err = %v", err)
		}
		return
	}
	t.Error("no error for a missing file")
}

func BenchmarkParseConnections(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		for _, err := range ParseConnections(&connGen{n: 10000}) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
