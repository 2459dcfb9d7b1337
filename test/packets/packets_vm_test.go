// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package packets

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/pktfix"
	"github.com/fullnat/fullnat/internal/vmnet"
)

// The ghost client's addresses (see run).
const (
	ghost4 = "192.0.2.3"
	ghost6 = "2001:db8:1::3"
)

// shellPrelude puts our binaries first and makes ip and tc iproute2's: busybox sh would run
// its own applets otherwise.
const shellPrelude = "PATH=" + vmnet.Bin + ":/usr/sbin:/sbin:/usr/bin:/bin; " +
	`ip() { /usr/sbin/ip "$@"; }; tc() { /usr/sbin/tc "$@"; }; `

// expectWait bounds how long an expect step waits for its packet.
const expectWait = 3 * time.Second

func TestPacketFixtures(t *testing.T) {
	files, err := filepath.Glob("../../testdata/packets/*.pkt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata/packets (%v)", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".pkt"), func(t *testing.T) {
			steps, err := parseFixture(file)
			if err != nil {
				t.Fatal(err)
			}
			run(t, steps)
		})
	}
}

func run(t *testing.T, steps []step) {
	tp := vmnet.New(t, vmnet.Options{Servers: 1})
	d := tp.Director
	d.Run(t, "/sbin/modprobe", "ip_vs")
	d.Run(t, "/sbin/modprobe", "ip_vs_rr")
	// port 80: the lvs-peer protocol; port 81: the same after a PROXY protocol header; port 82:
	// a banner (the server speaks first) after a PROXY protocol header
	var args []string
	for _, a := range []netip.Addr{tp.ServerAddrs[0], tp.ServerAddrs6[0]} {
		ap := netip.AddrPortFrom(a, 80).String()
		args = append(args, "--listen", ap, "--udp", ap, "--proxy-listen", netip.AddrPortFrom(a, 81).String(),
			"--proxy-banner", netip.AddrPortFrom(a, 82).String())
	}
	vmnet.ServeArgs(t, tp.Servers[0], append([]string{"--name", "rs1"}, args...)...)
	// The ghost client: addresses whose packets reach the client's eth0 (and its capture) but not
	// its stack, so a handshake played on a raw socket is not reset by the client's kernel.
	var mac string
	if err := vmnet.InNetns(string(tp.Client), func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err == nil {
			mac = ifi.HardwareAddr.String()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, ghost := range []string{ghost4, ghost6} {
		d.Run(t, vmnet.IP, "neigh", "replace", ghost, "lladdr", mac, "dev", "c0", "nud", "permanent")
	}
	nodes := map[string]vmnet.NS{"client": tp.Client, "director": d, "rs1": tp.Servers[0]}
	caps := map[string]*vmnet.Capture{"client": vmnet.OpenCapture(t, tp.Client, "eth0"), "rs1": vmnet.OpenCapture(t, tp.Servers[0], "eth0")}
	streams := map[string]*stream{}
	streamOf := func(s step) *stream {
		key := s.node + " " + s.dir
		if streams[key] == nil {
			streams[key] = &stream{c: caps[s.node], out: s.dir == "out"}
		}
		return streams[key]
	}
	vars := pktfix.Vars{}
	for _, s := range steps {
		ns := nodes[s.node]
		switch s.verb {
		case "run":
			cmd := ns.Command("/bin/sh", "-c", shellPrelude+s.arg)
			cmd.Env = append(os.Environ(), vars.Environ()...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: run %s: %v\n%s", s.where, s.arg, err, out)
			}
		case "send":
			p, err := s.packet.Build(vars)
			if err == nil {
				err = sendRaw(ns, p)
			}
			if err != nil {
				t.Fatalf("%s: send: %v", s.where, err)
			}
		case "expect":
			if err := streamOf(s).expect(s.packet, vars, expectWait); err != nil {
				t.Fatalf("%s: expect %s %s: %v", s.where, s.node, s.dir, err)
			}
		case "quiet":
			// Any IP packet breaks the silence, whether the language describes it or not.
			if p := streamOf(s).pending; len(p) > 0 {
				t.Fatalf("%s: quiet %s %s: got %s earlier, which no step expected", s.where, s.node, s.dir, pktfix.Format(p[0]))
			}
			if p, err := next(caps[s.node], s.dir, s.dur); err == nil {
				t.Fatalf("%s: quiet %s %s: got %s", s.where, s.node, s.dir, pktfix.Format(p))
			} else if !errors.Is(err, errNone) {
				t.Fatalf("%s: quiet %s %s: got %v", s.where, s.node, s.dir, err)
			}
		case "sleep":
			time.Sleep(s.dur)
		}
	}
	for key, st := range streams {
		if len(st.pending) > 0 {
			t.Errorf("%s: got %s, which no step expected", key, pktfix.Format(st.pending[0]))
		}
	}
}

// A stream is what one node receives or sends, as the expect steps consume it. Two packets
// the director forwards may leave it in either order: with two CPUs, a real server's ACK (sent
// from the softirq that took the data) and its answer (sent by the program) enter the director
// on different CPUs' backlogs. So an expect step takes the first packet that matches, among
// those read earlier and not yet expected and those that come within its wait; the others
// wait for a later step. A packet that no step expects still fails the fixture: at the next
// quiet step of its stream, or at the end.
type stream struct {
	c       *vmnet.Capture
	out     bool
	pending []pktfix.Packet
}

// expect finds the packet that t describes, binding t's variables in vars only when it matches.
func (s *stream) expect(t *pktfix.Template, vars pktfix.Vars, wait time.Duration) error {
	try := func(p pktfix.Packet) error {
		v := maps.Clone(vars)
		if err := t.Match(p, v); err != nil {
			return err
		}
		maps.Copy(vars, v)
		return nil
	}
	var first error
	for i, p := range s.pending {
		err := try(p)
		if err == nil {
			s.pending = slices.Delete(s.pending, i, i+1)
			return nil
		}
		if first == nil {
			first = err
		}
	}
	deadline := time.Now().Add(wait)
	for {
		p, err := next(s.c, s.dir(), time.Until(deadline))
		if errors.Is(err, errNone) {
			if first != nil {
				return first
			}
			return fmt.Errorf("%w\n  want: %s", err, t)
		}
		if err != nil {
			return err
		}
		if err := try(p); err == nil {
			return nil
		} else if first == nil {
			first = err
		}
		s.pending = append(s.pending, p)
	}
}

func (s *stream) dir() string {
	if s.out {
		return "out"
	}
	return "in"
}

// sendRaw sends p from namespace ns on a raw socket that takes the whole IP packet.
func sendRaw(ns vmnet.NS, p pktfix.Packet) error {
	b, err := p.Marshal()
	if err != nil {
		return err
	}
	return vmnet.SendRaw(ns, b, p.Dst.Addr())
}

// next returns the next IP packet of direction dir ("in" or "out") that c sees within timeout,
// when it is a TCP or UDP packet, or an error that describes it (ICMP, fragments, extension
// headers...) or says none came. ARP, neighbour discovery, MLD and IGMP are skipped.
func next(c *vmnet.Capture, dir string, timeout time.Duration) (pktfix.Packet, error) {
	var p pktfix.Packet
	var other string
	_, err := c.Next(dir == "out", timeout, func(f vmnet.Frame) bool {
		var kind frameKind
		kind, p, other = classify(f.EtherType, f.Data, f.Partial)
		return kind != frameSkip
	})
	if err != nil {
		return pktfix.Packet{}, fmt.Errorf("%w: no IP packet within %s", errNone, timeout)
	}
	if other != "" {
		return pktfix.Packet{}, fmt.Errorf("a packet the fixture language does not describe: %s", other)
	}
	return p, nil
}

// errNone says no packet came.
var errNone = errors.New("nothing")
