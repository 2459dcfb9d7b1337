// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package packets

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
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
			p, err := next(caps[s.node], s.dir, expectWait)
			if err != nil {
				t.Fatalf("%s: expect %s %s: %v\n  want: %s", s.where, s.node, s.dir, err, s.arg)
			}
			if err := s.packet.Match(p, vars); err != nil {
				t.Fatalf("%s: expect %s %s: %v", s.where, s.node, s.dir, err)
			}
		case "quiet":
			// Any IP packet breaks the silence, whether the language describes it or not.
			if p, err := next(caps[s.node], s.dir, s.dur); err == nil {
				t.Fatalf("%s: quiet %s %s: got %s", s.where, s.node, s.dir, pktfix.Format(p))
			} else if !errors.Is(err, errNone) {
				t.Fatalf("%s: quiet %s %s: got %v", s.where, s.node, s.dir, err)
			}
		case "sleep":
			time.Sleep(s.dur)
		}
	}
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
