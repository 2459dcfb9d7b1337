// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package fullnat

import (
	"net/netip"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/pktfix"
	"github.com/fullnat/fullnat/internal/vmnet"
	"golang.org/x/sys/unix"
)

// TestFullNATRouteChange: towards a real server FULLNAT takes the route cached in the
// destination, as NAT, DR and TUN do (patch 0015), and that cache follows the routing table. A
// more specific route to the real server over a second link takes the next connections there,
// and removing it brings them back to the bridge, in both families.
func TestFullNATRouteChange(t *testing.T) {
	f := newFixture(t, 1)
	d, rs := f.tp.Director, f.tp.Servers[0]
	for _, ns := range []vmnet.NS{d, rs} {
		ns.Sysctl(t, "net.ipv6.conf.default.accept_dad", "0")
	}
	vmnet.Veth(t, d, "x0", rs, "eth1")
	d.Addr(t, "x0", "10.99.0.1/24")
	d.Addr(t, "x0", "2001:db8:99::1/64")
	rs.Addr(t, "eth1", "10.99.0.2/24")
	rs.Addr(t, "eth1", "2001:db8:99::2/64")
	for _, sd := range f.sides() {
		t.Run(sd.name, func(t *testing.T) {
			f.fullnatService(t, unix.IPPROTO_TCP, sd.vip, sd.rss[:1], sd.laddrs)
			t.Cleanup(func() { d.Run(t, cipvsadm, "-C") })
			vip := netip.AddrPortFrom(sd.vip, 80).String()
			rsa := sd.rss[0]
			host, gw := netip.PrefixFrom(rsa, 32).String(), "10.99.0.2"
			if rsa.Is6() {
				host, gw = netip.PrefixFrom(rsa, 128).String(), "2001:db8:99::2"
			}
			// via makes ten connections and wants their SYNs to the real server out of ifname
			via := func(ifname string) {
				t.Helper()
				c := vmnet.OpenCapture(t, d, ifname)
				if s := vmnet.Dial(t, f.tp.Client, "--addr", vip, "--count", "10"); s.OK != 10 {
					t.Fatalf("10 connections through %s: %+v", ifname, s)
				}
				if _, err := c.Next(true, 3*time.Second, func(fr vmnet.Frame) bool {
					p, err := pktfix.Decode(fr.Data, fr.Partial)
					return err == nil && p.Proto == unix.IPPROTO_TCP && p.Dst.Addr() == rsa && p.Flags&0x12 == 0x02
				}); err != nil {
					t.Errorf("no SYN to %s left the director through %s: %v", rsa, ifname, err)
				}
			}
			via("br0")
			d.Run(t, vmnet.IP, "route", "add", host, "via", gw, "dev", "x0")
			via("x0")
			d.Run(t, vmnet.IP, "route", "del", host, "via", gw, "dev", "x0")
			via("br0")
		})
	}
}
