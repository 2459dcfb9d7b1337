// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package synproxy

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/tcpopt"
	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
)

// agreed connects from ns to vip:80 and returns the TCP options the client's socket agreed
// and those the real server's socket did (lvs-peer's "opts" request).
func agreed(ns vmnet.NS, vip netip.Addr) (client, server tcpopt.Options, err error) {
	err = vmnet.InNetns(string(ns), func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(vip, 80).String(), 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if client, err = tcpopt.Agreed(c); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(c, "opts\n"); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading the server's options: %w", err)
		}
		n, err := strconv.ParseUint(strings.TrimSpace(line), 10, 8)
		if err != nil {
			return fmt.Errorf("server's options %q: %w", line, err)
		}
		server = tcpopt.Options(n)
		return nil
	})
	return client, server, err
}

// TestSynProxyTimestamps: with synproxy_timestamp=1 the client and the real server both agree
// timestamps through the proxy, for FULLNAT and NAT, IPv4 and IPv6, and transfers with loss
// (where PAWS and the RTT estimate read them) arrive intact; with the default 0 neither side
// has them. The exact translation is pinned by testdata/packets/synproxy-ts*.pkt.
func TestSynProxyTimestamps(t *testing.T) {
	f := newFixture(t)
	d := f.tp.Director
	const key = "/proc/sys/net/ipv4/vs/synproxy_timestamp"
	if _, err := d.Try("/bin/sh", "-c", "echo 2 > "+key); err == nil {
		t.Errorf("synproxy_timestamp accepted 2")
	}
	d.Sysctl(t, "net.ipv4.vs.synproxy_timestamp", "1")
	f.eachService(t, func(t *testing.T, vip netip.Addr) {
		for i := 0; i < 4; i++ { // both real servers, round robin
			c, s, err := agreed(f.tp.Client, vip)
			if err != nil {
				t.Fatal(err)
			}
			if c&tcpopt.Timestamps == 0 || s&tcpopt.Timestamps == 0 || c&tcpopt.SACK == 0 || s&tcpopt.SACK == 0 {
				t.Errorf("connection %d: client agreed %v, real server %v; want ts and sack on both", i, c, s)
			}
		}
		f.tp.Client.Run(t, "/usr/sbin/tc", "qdisc", "add", "dev", "eth0", "root", "netem", "loss", "2%")
		defer f.tp.Client.Run(t, "/usr/sbin/tc", "qdisc", "del", "dev", "eth0", "root")
		g := vmnet.Dial(t, f.tp.Client, "--addr", netip.AddrPortFrom(vip, 80).String(), "--op", "get", "--size", "1048576", "--count", "4", "--parallel", "2", "--timeout", "120s")
		p := vmnet.Dial(t, f.tp.Client, "--addr", netip.AddrPortFrom(vip, 80).String(), "--op", "put", "--size", "1048576", "--count", "4", "--parallel", "2", "--timeout", "120s")
		if g.OK != 4 || p.OK != 4 {
			t.Errorf("1 MB transfers with timestamps and 2%% loss: get %d/4, put %d/4 (%v %v)", g.OK, p.OK, g.Errors, p.Errors)
		}
		t.Logf("4 x 1 MB with timestamps and 2%% loss: get %d ms, put %d ms", g.ElapsedMS, p.ElapsedMS)
	})

	// Real servers that refuse timestamps: the client keeps the ones it agreed with the
	// director, the real servers get none back, and transfers still arrive intact.
	t.Run("RealServersWithout", func(t *testing.T) {
		for _, rs := range f.tp.Servers {
			rs.Sysctl(t, "net.ipv4.tcp_timestamps", "0")
			defer rs.Sysctl(t, "net.ipv4.tcp_timestamps", "1")
		}
		s := f.service(t, f.tp.VIP, ipvs.FullNAT, true)
		defer func() { _ = f.c.DeleteService(t.Context(), s) }()
		c, srv, err := agreed(f.tp.Client, f.tp.VIP)
		if err != nil {
			t.Fatal(err)
		}
		if c&tcpopt.Timestamps == 0 || srv&tcpopt.Timestamps != 0 {
			t.Errorf("client agreed %v, real server %v; want ts on the client only", c, srv)
		}
		addr := netip.AddrPortFrom(f.tp.VIP, 80).String()
		g := vmnet.Dial(t, f.tp.Client, "--addr", addr, "--op", "get", "--size", "1048576", "--count", "4", "--parallel", "2", "--timeout", "120s")
		p := vmnet.Dial(t, f.tp.Client, "--addr", addr, "--op", "put", "--size", "1048576", "--count", "4", "--parallel", "2", "--timeout", "120s")
		if g.OK != 4 || p.OK != 4 {
			t.Errorf("1 MB transfers: get %d/4, put %d/4 (%v %v)", g.OK, p.OK, g.Errors, p.Errors)
		}
	})

	d.Sysctl(t, "net.ipv4.vs.synproxy_timestamp", "0")
	f.service(t, f.tp.VIP, ipvs.FullNAT, true)
	c, s, err := agreed(f.tp.Client, f.tp.VIP)
	if err != nil {
		t.Fatal(err)
	}
	if c&tcpopt.Timestamps != 0 || s&tcpopt.Timestamps != 0 {
		t.Errorf("synproxy_timestamp=0: client agreed %v, real server %v; want no timestamps", c, s)
	}
}
