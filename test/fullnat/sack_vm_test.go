// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package fullnat

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/fullnat/fullnat/internal/vmnet"
	"golang.org/x/sys/unix"
)

// tcpExt reads the TcpExt counters of /proc/net/netstat in ns.
func tcpExt(t *testing.T, ns vmnet.NS) map[string]int64 {
	t.Helper()
	lines := strings.Split(ns.Run(t, "/bin/cat", "/proc/net/netstat"), "\n")
	m := map[string]int64{}
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "TcpExt:") || !strings.HasPrefix(lines[i+1], "TcpExt:") {
			continue
		}
		names, vals := strings.Fields(lines[i])[1:], strings.Fields(lines[i+1])[1:]
		for j := range names {
			if j < len(vals) {
				v, _ := strconv.ParseInt(vals[j], 10, 64)
				m[names[j]] = v
			}
		}
		break
	}
	return m
}

// TestFullNATSACK: with packet loss between the client and the director, the real server's SACK
// blocks reach the client translated into the client's sequence space: the upload completes
// with SACK recoveries and the client discards none of the blocks as invalid.
func TestFullNATSACK(t *testing.T) {
	f := newFixture(t, 1)
	c := f.tp.Client
	c.Run(t, "/sbin/modprobe", "sch_netem")
	c.Run(t, "/usr/sbin/tc", "qdisc", "add", "dev", "eth0", "root", "netem", "loss", "2%")
	// TCP builds GSO packets of up to 64 KB, split after the qdisc: netem would drop them
	// whole, and three 4 MB uploads (some 190 of them) pass without a loss in about one
	// run of fifty. One segment per packet (read by each socket as it connects) gives
	// netem some 9000 segments to drop from.
	c.Run(t, vmnet.IP, "link", "set", "dev", "eth0", "gso_max_segs", "1")
	t.Cleanup(func() { c.Run(t, vmnet.IP, "link", "set", "dev", "eth0", "gso_max_segs", "65535") })
	for _, sd := range f.sides() {
		t.Run(sd.name, func(t *testing.T) {
			f.fullnatService(t, unix.IPPROTO_TCP, sd.vip, sd.rss[:1], sd.laddrs)
			t.Cleanup(func() { f.tp.Director.Run(t, cipvsadm, "-C") })
			vip := netip.AddrPortFrom(sd.vip, 80).String()
			before := tcpExt(t, c)
			p := vmnet.Dial(t, c, "--addr", vip, "--op", "put", "--size", "4194304", "--count", "3", "--timeout", "120s")
			after := tcpExt(t, c)
			if p.Bytes != 3*4194304 {
				t.Errorf("upload with loss: %d bytes verified, want %d", p.Bytes, 3*4194304)
			}
			rec := after["TCPSackRecovery"] - before["TCPSackRecovery"]
			disc := after["TCPSACKDiscard"] - before["TCPSACKDiscard"]
			t.Logf("client: %d SACK recoveries, %d SACK blocks discarded, upload %d ms", rec, disc, p.ElapsedMS)
			if rec == 0 {
				t.Errorf("no SACK recovery on the client: the loss did not exercise SACK")
			}
			if disc != 0 {
				t.Errorf("the client discarded %d SACK blocks as invalid: SACK blocks not translated", disc)
			}
		})
	}
}
