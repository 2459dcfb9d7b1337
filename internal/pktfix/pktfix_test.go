// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package pktfix

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/fullnat/fullnat/internal/inet"
)

func mustParse(t *testing.T, line string) *Template {
	t.Helper()
	tp, err := Parse(line)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// TestRoundTrip: a line builds a packet whose bytes decode to the same packet, whose
// Format is a complete line matching the packet again.
func TestRoundTrip(t *testing.T) {
	for _, line := range []string{
		"tcp4 192.0.2.2:42000 > 203.0.113.10:80 flags=S seq=0x10000000 opts=mss:1460,sackok,ts:4660:0,nop,ws:7",
		"tcp4 192.0.2.2:42000 > 203.0.113.10:80 ttl=3 tos=0x10 id=7 df=0 flags=PA seq=1 ack=2 win=512 urg=0 opts=toa:192.0.2.2:42000,nop,nop,sack:0x10..0x20;0xfffffff0..0x5 data=68656c6c6f",
		"tcp6 [2001:db8:1::2]:42000 > [2001:db8:10::10]:80 hlim=9 tc=4 flow=0x12345 flags=FA seq=5 ack=6 opts=toa:[2001:db8:1::2]:42000,opt99:0102,nop,nop,eol,eol",
		"udp4 192.0.2.2:5353 > 203.0.113.10:53 data=00ff",
		"udp6 [2001:db8:1::2]:5353 > [2001:db8:10::10]:53 data=-",
	} {
		t.Run(line[:4], func(t *testing.T) {
			tp := mustParse(t, line)
			p, err := tp.Build(Vars{})
			if err != nil {
				t.Fatal(err)
			}
			b, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b, false)
			if err != nil {
				t.Fatal(err)
			}
			if err := tp.Match(got, Vars{}); err != nil {
				t.Fatalf("decoded packet does not match its line: %v", err)
			}
			if got.Csum != CsumOK {
				t.Errorf("csum %s, want ok", got.Csum)
			}
			back := mustParse(t, Format(got))
			if err := back.Complete(); err != nil {
				t.Errorf("Format is not a complete line: %v", err)
			}
			if err := back.Match(got, Vars{}); err != nil {
				t.Errorf("Format does not match its own packet: %v", err)
			}
		})
	}
}

func TestVariables(t *testing.T) {
	vars := Vars{}
	syn := mustParse(t, "tcp4 198.51.100.201:$LPORT > 198.51.100.11:80 flags=S seq=$RSEQ")
	p, _ := mustParse(t, "tcp4 198.51.100.201:5001 > 198.51.100.11:80 flags=S seq=0xffffffff").Build(Vars{})
	if err := syn.Match(p, vars); err != nil {
		t.Fatal(err)
	}
	if vars["LPORT"] != "5001" || vars["RSEQ"] != "4294967295" {
		t.Fatalf("bound %v", vars)
	}
	// $RSEQ+1 wraps at 32 bits; the bound port must be the same one.
	ack := mustParse(t, "tcp4 198.51.100.201:$LPORT > 198.51.100.11:80 flags=A seq=$RSEQ+1 ack=$X")
	p2, _ := mustParse(t, "tcp4 198.51.100.201:5001 > 198.51.100.11:80 flags=A seq=0 ack=77").Build(Vars{})
	if err := ack.Match(p2, vars); err != nil {
		t.Fatal(err)
	}
	p3, _ := mustParse(t, "tcp4 198.51.100.201:5002 > 198.51.100.11:80 flags=A seq=0 ack=77").Build(Vars{})
	if err := ack.Match(p3, vars); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "source") {
		t.Errorf("a different port: %v", err)
	}
	// A sent packet uses the bound values.
	reply, err := mustParse(t, "tcp4 198.51.100.11:80 > 198.51.100.201:$LPORT flags=SA seq=9 ack=$RSEQ+1 opts=sack:$X-7..$X+3").Build(vars)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Dst.Port() != 5001 || reply.Ack != 0 || binary.BigEndian.Uint32(reply.Opts[0].Data) != 70 || binary.BigEndian.Uint32(reply.Opts[0].Data[4:]) != 80 {
		t.Errorf("built %s", Format(reply))
	}
	if _, err := mustParse(t, "tcp4 192.0.2.2:1 > 192.0.2.3:2 seq=$NOPE").Build(vars); err == nil || !strings.Contains(err.Error(), "$NOPE is not bound") {
		t.Errorf("unbound variable: %v", err)
	}
	if err := mustParse(t, "tcp4 198.51.100.201:5001 > 198.51.100.11:80 seq=$NEW+1").Match(p, Vars{}); err == nil {
		t.Error("an offset from an unbound variable matched")
	}
	// Addresses bind too.
	av := Vars{}
	if err := mustParse(t, "tcp4 $LADDR:* > 198.51.100.11:80").Match(p, av); err != nil || av["LADDR"] != "198.51.100.201" {
		t.Errorf("address variable: %v %v", err, av)
	}
}

func TestMismatchNamesField(t *testing.T) {
	p, _ := mustParse(t, "tcp4 192.0.2.2:42000 > 203.0.113.10:80 flags=S seq=1 opts=mss:1460,ws:7").Build(Vars{})
	for line, field := range map[string]string{
		"tcp4 192.0.2.2:42000 > 203.0.113.10:80 ttl=63":                  "ttl",
		"tcp4 192.0.2.2:42000 > 203.0.113.10:80 flags=SA":                "flags",
		"tcp4 192.0.2.2:42000 > 203.0.113.10:80 opts=mss:1460":           "opts",
		"tcp4 192.0.2.2:42000 > 203.0.113.10:80 opts=mss:1400,ws:7":      "opts",
		"tcp4 192.0.2.2:42000 > 203.0.113.10:80 opts=mss:1460,sackok":    "opts",
		"tcp4 192.0.2.2:42000 > 203.0.113.10:80 csum=bad":                "csum",
		"tcp4 192.0.2.2:42000 > 203.0.113.10:81":                         "destination",
		"tcp6 [2001:db8::1]:42000 > [2001:db8::2]:80":                    "kind",
		"tcp4 192.0.2.2:42000 > 203.0.113.10:80 data=00":                 "data",
		"tcp4 192.0.2.2:42000 > 203.0.113.10:80 seq=2 ack=* win=* urg=*": "seq",
	} {
		err := mustParse(t, line).Match(p, Vars{})
		if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), ": "+field+": ") {
			t.Errorf("%s: %v, want a mismatch in %s", line, err, field)
		}
	}
}

func TestChecksumStates(t *testing.T) {
	tp := mustParse(t, "tcp6 [2001:db8:1::2]:42000 > [2001:db8:10::10]:80 flags=A seq=1 ack=1 data=41 csum=bad")
	p, _ := tp.Build(Vars{})
	b, _ := p.Marshal()
	got, err := Decode(b, false)
	if err != nil || got.Csum != CsumBad {
		t.Errorf("spoilt checksum decodes as %q (%v)", got.Csum, err)
	}
	// CHECKSUM_PARTIAL: the field holds the uncomplemented pseudo-header sum.
	l4 := b[40:]
	binary.BigEndian.PutUint16(l4[16:], ^inet.Checksum(inet.PseudoHeader(p.Src.Addr(), p.Dst.Addr(), 6, len(l4))))
	if got, _ := Decode(b, true); got.Csum != CsumPartial {
		t.Errorf("partial checksum decodes as %q", got.Csum)
	}
	l4[16] ^= 1
	if got, _ := Decode(b, true); got.Csum != CsumPartialBad {
		t.Errorf("wrong partial checksum decodes as %q", got.Csum)
	}
	// IPv4: a spoilt header checksum is bad too.
	p4, _ := mustParse(t, "udp4 192.0.2.2:1 > 192.0.2.3:2 data=00").Build(Vars{})
	b4, _ := p4.Marshal()
	b4[10] ^= 0xff
	if got, _ := Decode(b4, false); got.Csum != CsumBad {
		t.Errorf("spoilt IPv4 header checksum decodes as %q", got.Csum)
	}
}

func TestParseErrors(t *testing.T) {
	for _, line := range []string{
		"tcp4 192.0.2.2:1 192.0.2.3:2",
		"sctp4 192.0.2.2:1 > 192.0.2.3:2",
		"tcp4 192.0.2.2:1 > 192.0.2.3:2 hlim=3",
		"udp4 192.0.2.2:1 > 192.0.2.3:2 seq=3",
		"tcp4 192.0.2.2:1 > 192.0.2.3:2 ttl=1 ttl=2",
		"tcp4 192.0.2.2:1 > 192.0.2.3:2 ttl",
	} {
		if _, err := Parse(line); err == nil {
			t.Errorf("Parse(%q): no error", line)
		}
	}
	for _, line := range []string{
		"tcp4 192.0.2.2:1 > 192.0.2.3:2 opts=bogus:1",
		"tcp4 192.0.2.2:1 > 192.0.2.3:2 opts=ts:1",
		"tcp4 192.0.2.2:1 > 192.0.2.3:2 opts=sack:1-2",
		"tcp4 192.0.2.2:1 > 192.0.2.3:2 opts=nop:3",
		"tcp4 192.0.2.2:1 > 192.0.2.3:2 ttl=300",
		"tcp4 192.0.2.2:1 > 192.0.2.3:2 flags=SX",
		"tcp4 192.0.2.2:1 > 192.0.2.3:2 csum=partial",
		"tcp4 192.0.2.2:1 > [2001:db8::1]:2",
		"tcp4 192.0.2.2:1 > 192.0.2.3:2 opts=mss:1460,ws:7",
		"tcp4 192.0.2.2:1 > 192.0.2.3:2 ack=*",
	} {
		tp, err := Parse(line)
		if err != nil {
			t.Errorf("Parse(%q): %v", line, err)
			continue
		}
		p, err := tp.Build(Vars{})
		if err == nil {
			_, err = p.Marshal()
		}
		if err == nil {
			t.Errorf("%q: built and marshalled without error", line)
		}
	}
	if err := mustParse(t, "tcp4 192.0.2.2:1 > 192.0.2.3:2 ttl=1").Complete(); err == nil || !strings.Contains(err.Error(), "tos missing") {
		t.Errorf("Complete: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	p, _ := mustParse(t, "tcp4 192.0.2.2:1 > 192.0.2.3:2 data=0102").Build(Vars{})
	b, _ := p.Marshal()
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"truncated": b[:30],
		"fragment":  func() []byte { c := append([]byte(nil), b...); c[6] |= 0x20; return c }(),
		"icmp":      func() []byte { c := append([]byte(nil), b...); c[9] = 1; return c }(),
		"doff":      func() []byte { c := append([]byte(nil), b...); c[32] = 0xf0; return c }(),
	} {
		if _, err := Decode(bad, false); !errors.Is(err, ErrNotIP) {
			t.Errorf("%s: %v, want ErrNotIP", name, err)
		}
	}
}

func TestDataVariable(t *testing.T) {
	vars := Vars{}
	p, _ := mustParse(t, "udp4 198.51.100.11:80 > 198.51.100.201:5001 data=72733120").Build(Vars{})
	if err := mustParse(t, "udp4 198.51.100.11:80 > 198.51.100.201:5001 data=$REPLY").Match(p, vars); err != nil || vars["REPLY"] != "72733120" {
		t.Fatalf("binding data: %v %v", err, vars)
	}
	q, err := mustParse(t, "udp4 203.0.113.10:80 > 192.0.2.3:42000 data=$REPLY").Build(vars)
	if err != nil || string(q.Data) != "rs1 " {
		t.Fatalf("building from bound data: %q %v", q.Data, err)
	}
	p.Data = []byte("rs2 ")
	if err := mustParse(t, "udp4 198.51.100.11:80 > 198.51.100.201:5001 data=$REPLY").Match(p, vars); !errors.Is(err, ErrMismatch) {
		t.Errorf("other data matched a bound variable: %v", err)
	}
}

func TestExpressions(t *testing.T) {
	vars := Vars{"W": "1000", "S": "4294967290", "H": "7"}
	for expr, want := range map[string]uint64{
		"$W>>2":         250,
		"$W<<7>>9":      250,
		"$W+24>>3":      128,
		"$S+10":         4,
		"$S-4294967290": 0,
		"$W":            1000,
		"$W+$S":         994,
		"$S-$W+$W":      4294967290,
		"$W-$W+7":       7,
		"$W<<$H>>9":     250,
	} {
		if got, err := evalNum(expr, 32, vars); err != nil || got != want {
			t.Errorf("%s = %d (%v), want %d", expr, got, err, want)
		}
	}
	if got, _ := evalNum("$W<<7", 16, vars); got != 1000<<7&0xffff {
		t.Errorf("16-bit shift does not wrap: %d", got)
	}
	for _, bad := range []string{"$W*2", "$W>>", "$W+x", "$W>2", "$W>>$W", "$W>>$NOPE", "$W+$NOPE", "$W+$"} {
		if _, err := evalNum(bad, 32, vars); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestEnviron(t *testing.T) {
	got := Vars{"LPORT": "5001", "A": "1"}.Environ()
	if strings.Join(got, " ") != "A=1 LPORT=5001" {
		t.Errorf("Environ() = %q", got)
	}
}
