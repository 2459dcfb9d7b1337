// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package packets

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fullnat/fullnat/internal/pktfix"
)

// TestFixturesParse: every fixture in testdata/packets parses on the host, so a typo fails in
// `make unit` rather than in the VM.
func TestFixturesParse(t *testing.T) {
	files, err := filepath.Glob("../../testdata/packets/*.pkt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures (%v)", err)
	}
	for _, f := range files {
		steps, err := parseFixture(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		expects := 0
		for _, s := range steps {
			if s.verb == "expect" {
				expects++
			}
		}
		if expects == 0 {
			t.Errorf("%s: no expect step; a fixture that expects nothing cannot fail", filepath.Base(f))
		}
	}
}

func TestParseStepErrors(t *testing.T) {
	for text, want := range map[string]string{
		"bogus client":                       "unknown step",
		"send client":                        "want send NODE",
		"expect rs1 sideways tcp4 a:1 > b:2": "want expect NODE in|out",
		"expect rs1 in tcp4 192.0.2.1:1 > 192.0.2.2:2 ttl=1": "tos missing",
		"quiet rs1 in soon":                            "invalid duration",
		"send router tcp4 192.0.2.1:1 > 192.0.2.2:2":   "not client, director or rs1",
		"send director tcp4 192.0.2.1:1 > 192.0.2.2:2": "captured on client and rs1",
		"sleep": "want sleep DURATION",
		"send client tcp4 192.0.2.1:1 > 192.0.2.2:2 color=red": "no field",
	} {
		_, err := parseSteps("x.pkt", strings.NewReader("# comment\n\n"+text+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "x.pkt:3") {
			t.Errorf("%q: %v, want an error at x.pkt:3 with %q", text, err, want)
		}
	}
	steps, err := parseSteps("ok.pkt", strings.NewReader("run director ipvsadm -C # flush\nsleep 10ms\n"))
	if err != nil || len(steps) != 2 || steps[0].arg != "ipvsadm -C" || steps[1].dur.Milliseconds() != 10 {
		t.Errorf("good steps: %+v %v", steps, err)
	}
}

// TestClassify: the runner takes every IP packet, not only the TCP and UDP ones the language
// describes: ICMP, fragments and IPv6 extension headers come back as "other" (and so fail an
// expect or a quiet step); only ARP, neighbour discovery, MLD and IGMP are passed over.
func TestClassify(t *testing.T) {
	tcp := mustMarshal(t, "tcp4 192.0.2.3:42000 > 203.0.113.10:80 flags=S seq=1")
	tcp6 := mustMarshal(t, "tcp6 [2001:db8:1::3]:42000 > [2001:db8:10::10]:80 flags=S seq=1")
	ip4 := func(proto byte, frag uint16, payload ...byte) []byte {
		b := append([]byte{0x45, 0, 0, byte(20 + len(payload)), 0x12, 0x34, byte(frag >> 8), byte(frag), 64, proto, 0, 0,
			192, 0, 2, 1, 192, 0, 2, 3}, payload...)
		return b
	}
	ip6 := func(next byte, payload ...byte) []byte {
		b := make([]byte, 40, 40+len(payload))
		b[0], b[5], b[6], b[7] = 0x60, byte(len(payload)), next, 64
		copy(b[8:], netip.MustParseAddr("2001:db8:1::1").AsSlice())
		copy(b[24:], netip.MustParseAddr("2001:db8:1::3").AsSlice())
		return append(b, payload...)
	}
	for _, c := range []struct {
		name  string
		ether uint16
		data  []byte
		want  frameKind
	}{
		{"tcp4", etherIPv4, tcp, framePacket},
		{"tcp6", etherIPv6, tcp6, framePacket},
		{"arp", 0x0806, make([]byte, 28), frameSkip},
		{"icmp echo", etherIPv4, ip4(1, 0, 8, 0, 0, 0, 0, 0, 0, 0), frameOther},
		{"icmp frag needed", etherIPv4, ip4(1, 0, 3, 4, 0, 0, 0, 0, 5, 0xdc), frameOther},
		{"first fragment", etherIPv4, ip4(17, 0x2000, tcp[20:28]...), frameOther},
		{"later fragment", etherIPv4, ip4(17, 0x0010, 1, 2, 3, 4, 5, 6, 7, 8), frameOther},
		{"igmp", etherIPv4, ip4(2, 0, 0x16, 0, 0, 0, 224, 0, 0, 251), frameSkip},
		{"gre", etherIPv4, ip4(47, 0, 0, 0, 8, 0), frameOther},
		{"icmp6 too big", etherIPv6, ip6(58, 2, 0, 0, 0, 0, 0, 5, 0xdc), frameOther},
		{"icmp6 neighbour solicitation", etherIPv6, ip6(58, 135, 0, 0, 0, 0, 0, 0, 0), frameSkip},
		{"mld report after hop-by-hop", etherIPv6, ip6(0, 58, 0, 5, 2, 0, 0, 1, 0, 143, 0, 0, 0, 0, 0, 0, 0), frameSkip},
		{"tcp after hop-by-hop", etherIPv6, ip6(0, append([]byte{6, 0, 1, 4, 0, 0, 0, 0}, tcp6[40:]...)...), frameOther},
		{"tcp6 fragment", etherIPv6, ip6(44, append([]byte{6, 0, 0, 1, 0, 0, 0, 1}, tcp6[40:]...)...), frameOther},
	} {
		kind, _, desc := classify(c.ether, c.data, false)
		if kind != c.want {
			t.Errorf("%s: kind %d, want %d (%s)", c.name, kind, c.want, desc)
		}
		if kind == frameOther && desc == "" {
			t.Errorf("%s: no description", c.name)
		}
		t.Logf("%s: %s", c.name, desc)
	}
}

func mustMarshal(t *testing.T, line string) []byte {
	t.Helper()
	tp, err := pktfix.Parse(line)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tp.Build(pktfix.Vars{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
