//go:build vmtest

package compat

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/fullnat/fullnat/internal/vmnet"
)

const cipvsadm = "/usr/sbin/ipvsadm"

func TestNATDebianIpvsadm(t *testing.T) {
	tp := vmnet.New(t, vmnet.Options{Servers: 2, RouteBack: true})
	d := tp.Director
	for i, rs := range tp.Servers {
		vmnet.Serve(t, rs, fmt.Sprintf("rs%d", i+1), 80, tp.ServerAddrs[i], tp.ServerAddrs6[i])
	}
	for _, tc := range []struct {
		name string
		vip  netip.Addr
		rss  []netip.Addr
	}{
		{"IPv4", tp.VIP, tp.ServerAddrs},
		{"IPv6", tp.VIP6, tp.ServerAddrs6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vip := netip.AddrPortFrom(tc.vip, 80).String()
			d.Run(t, cipvsadm, "-A", "-t", vip, "-s", "rr")
			d.Run(t, cipvsadm, "-A", "-u", vip, "-s", "rr")
			for _, rs := range tc.rss {
				rip := netip.AddrPortFrom(rs, 80).String()
				d.Run(t, cipvsadm, "-a", "-t", vip, "-r", rip, "-m")
				d.Run(t, cipvsadm, "-a", "-u", vip, "-r", rip, "-m")
			}
			t.Cleanup(func() { d.Run(t, cipvsadm, "-C") })

			s := vmnet.Dial(t, tp.Client, "--addr", vip, "--count", "200", "--parallel", "8")
			if s.OK != 200 || s.Servers["rs1"] != 100 || s.Servers["rs2"] != 100 {
				t.Errorf("TCP: want 200 connections split 100/100 over rs1/rs2, got %+v", s)
			}
			// NAT keeps the client's address: the real servers see it.
			for peer := range s.Peers {
				ap := netip.MustParseAddrPort(peer)
				if want := clientOf(tp, tc.vip); ap.Addr() != want {
					t.Errorf("real server saw peer %s, want the client %s", ap, want)
				}
			}
			g := vmnet.Dial(t, tp.Client, "--addr", vip, "--op", "get", "--size", "1048576", "--count", "4", "--parallel", "2")
			p := vmnet.Dial(t, tp.Client, "--addr", vip, "--op", "put", "--size", "1048576", "--count", "4", "--parallel", "2")
			if g.Bytes != 4<<20 || p.Bytes != 4<<20 {
				t.Errorf("bulk transfer: got %d bytes down, %d up, want %d each", g.Bytes, p.Bytes, 4<<20)
			}
			u := vmnet.Dial(t, tp.Client, "--udp", "--addr", vip, "--count", "20")
			if u.OK != 20 || len(u.Servers) != 2 {
				t.Errorf("UDP: want 20 replies from both real servers, got %+v", u)
			}

			out := d.Run(t, cipvsadm, "-Ln", "--stats")
			t.Logf("ipvsadm -Ln --stats:\n%s", out)
			for _, rs := range tc.rss {
				if !strings.Contains(out, netip.AddrPortFrom(rs, 80).String()) {
					t.Errorf("-Ln --stats does not list real server %s", rs)
				}
			}
			if conns := d.Run(t, cipvsadm, "-Lnc"); !strings.Contains(conns, "ESTABLISHED") && !strings.Contains(conns, "TIME_WAIT") && !strings.Contains(conns, "FIN_WAIT") && !strings.Contains(conns, "CLOSE") {
				t.Errorf("-Lnc shows no TCP connection entries:\n%s", conns)
			}
		})
	}
}

func clientOf(tp *vmnet.Topology, vip netip.Addr) netip.Addr {
	if vip.Is4() {
		return tp.ClientAddr
	}
	return tp.ClientAddr6
}
