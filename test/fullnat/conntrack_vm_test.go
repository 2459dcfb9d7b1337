// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package fullnat

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/fullnat/fullnat/internal/vmnet"
	"golang.org/x/sys/unix"
)

// TestFullNATConntrack: FULLNAT works with conntrack active in the director's namespace and
// net.ipv4.vs.conntrack=1. A NAT service on port 21 makes IPVS register conntrack's hooks (the
// FTP helper needs them), so every packet passes through conntrack.
func TestFullNATConntrack(t *testing.T) {
	f := newFixture(t, 2)
	d := f.tp.Director
	d.Sysctl(t, "net.ipv4.vs.conntrack", "1")
	ftp := netip.AddrPortFrom(f.tp.VIP, 21).String()
	d.Run(t, cipvsadm, "-A", "-t", ftp, "-s", "rr")
	d.Run(t, cipvsadm, "-a", "-t", ftp, "-r", netip.AddrPortFrom(f.tp.ServerAddrs[0], 21).String(), "-m")
	// conntrack sees the director's own traffic: a ping leaves an entry.
	f.tp.Client.Run(t, "/bin/ping", "-c", "1", "-W", "2", "192.0.2.1")
	if n := strings.TrimSpace(d.Run(t, "/bin/cat", "/proc/sys/net/netfilter/nf_conntrack_count")); n == "0" {
		t.Fatalf("conntrack tracks nothing in the director (nf_conntrack_count %s)", n)
	}
	for _, sd := range f.sides() {
		t.Run(sd.name, func(t *testing.T) {
			f.fullnatService(t, unix.IPPROTO_TCP, sd.vip, sd.rss, sd.laddrs)
			f.fullnatService(t, unix.IPPROTO_UDP, sd.vip, sd.rss, sd.laddrs)
			vip := netip.AddrPortFrom(sd.vip, 80)
			t.Cleanup(func() {
				d.Run(t, cipvsadm, "-D", "-t", vip.String())
				d.Run(t, cipvsadm, "-D", "-u", vip.String())
			})
			s := vmnet.Dial(t, f.tp.Client, "--addr", vip.String(), "--count", "100", "--parallel", "8")
			if s.OK != 100 {
				t.Errorf("TCP with conntrack: %d of 100 connections, errors %v", s.OK, s.Errors)
			}
			onlyFrom(t, "TCP with conntrack", s, sd.laddrs)
			g := vmnet.Dial(t, f.tp.Client, "--addr", vip.String(), "--op", "get", "--size", "2097152", "--count", "2")
			p := vmnet.Dial(t, f.tp.Client, "--addr", vip.String(), "--op", "put", "--size", "2097152", "--count", "2")
			if g.Bytes != 4<<20 || p.Bytes != 4<<20 {
				t.Errorf("bulk with conntrack: %d bytes down, %d up, want %d each", g.Bytes, p.Bytes, 4<<20)
			}
			u := vmnet.Dial(t, f.tp.Client, "--udp", "--addr", vip.String(), "--count", "10")
			if u.OK != 10 {
				t.Errorf("UDP with conntrack: %+v", u)
			}
		})
	}
}
