// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package synproxy

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
)

// TestProxyProtocolPMTU: on a FULLNAT service that inserts a PROXY protocol header (v1, IPv4
// and IPv6, with and without SYNPROXY), the client's bytes reach the real server moved by the
// header's length. A "fragmentation needed" / "packet too big" that the real server's side
// sends about a segment towards the real server quotes that moved sequence number; the
// director gives it to the client quoting the client's own, so the client's TCP accepts the
// error (no TcpExtOutOfWindowIcmps) and lowers its path MTU towards the VIP.
func TestProxyProtocolPMTU(t *testing.T) {
	f := newFixture(t)
	rs := f.tp.Servers[0]
	holdServer(t, rs, f.tp.ServerAddrs[0])
	holdServer(t, rs, f.tp.ServerAddrs6[0])
	const mtu = 1280
	for _, synproxy := range []bool{false, true} {
		for _, vip := range []netip.Addr{f.tp.VIP, f.tp.VIP6} {
			t.Run(fmt.Sprintf("synproxy=%v/%v", synproxy, vip), func(t *testing.T) {
				rsAddr, client, laddr := f.tp.ServerAddrs[0], f.tp.ClientAddr, f.laddrs[0]
				if vip.Is6() {
					rsAddr, client, laddr = f.tp.ServerAddrs6[0], f.tp.ClientAddr6, f.lad6[0]
				}
				s := ipvs.Service{Protocol: ipvs.Protocol(6), Address: vip, Port: pmtuPort, Scheduler: "rr",
					ProxyProtocol: ipvs.ProxyProtocolV1}
				if synproxy {
					s.Flags = ipvs.FlagSynProxy
				}
				if err := f.c.CreateService(t.Context(), s); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = f.c.DeleteService(context.Background(), s) })
				if err := f.c.CreateDestination(t.Context(), s, ipvs.Destination{Address: rsAddr, Port: pmtuPort, ForwardMethod: ipvs.FullNAT, Weight: 1}); err != nil {
					t.Fatal(err)
				}
				if err := f.c.CreateLocalAddress(t.Context(), s, ipvs.LocalAddress{Address: laddr}); err != nil {
					t.Fatal(err)
				}
				cl := f.tp.Client
				cl.Run(t, vmnet.IP, "-4", "route", "flush", "cache")
				cl.Run(t, vmnet.IP, "-6", "route", "flush", "cache")
				if m := pathMTU(t, cl, vip); m != 0 && m <= mtu {
					t.Fatalf("the client's route to %s already has mtu %d", vip, m)
				}

				onCl := vmnet.OpenCapture(t, cl, "eth0")
				onRS := vmnet.OpenCapture(t, rs, "eth0")
				cport := holdExchange(t, cl, netip.AddrPortFrom(vip, pmtuPort))
				// The client's next sequence number as the client knows it, and as the real
				// server does (behind the header).
				clSeq, _, _, err := sentEnd(onCl, true, netip.AddrPortFrom(client, cport), netip.AddrPortFrom(vip, pmtuPort))
				if err != nil {
					t.Fatalf("the request on the client: %v", err)
				}
				rsSeq, lport, first, err := sentEnd(onRS, false, netip.AddrPortFrom(laddr, 0), netip.AddrPortFrom(rsAddr, pmtuPort))
				if err != nil {
					t.Fatalf("the request on the real server: %v", err)
				}
				if !strings.HasPrefix(first, "PROXY TCP") {
					t.Fatalf("the real server's first data is %q, not a PROXY protocol header: the test proves nothing", first)
				}
				// FULLNAT also moves the client's sequence numbers by an offset of its own: the
				// director must take off both.
				t.Logf("the client's next sequence: %d on the client, %d on the real server", clSeq, rsSeq)

				oow := tcpExt(t, cl)["OutOfWindowIcmps"]
				// From the real server's side to the local address, about laddr:lport -> rs.
				pkt := fragNeeded(netip.AddrPortFrom(rsAddr, pmtuPort), netip.AddrPortFrom(laddr, lport), rsSeq, mtu)
				if err := vmnet.SendRaw(rs, pkt, laddr); err != nil {
					t.Fatal(err)
				}
				tooBigArrives(t, onCl, cl, "the client", netip.AddrPortFrom(client, cport), netip.AddrPortFrom(vip, pmtuPort),
					clSeq, rsSeq, mtu, vip, oow)
			})
		}
	}
}

// sentEnd reads from c the data segments from src (any port when src's port is 0) to dst
// until none comes for a second, and returns the sequence number after the last, its source
// port and the start of the first one's data.
func sentEnd(c *vmnet.Capture, out bool, src, dst netip.AddrPort) (uint32, uint16, string, error) {
	var end uint32
	var port uint16
	var first string
	for n := 0; ; n++ {
		wait := time.Second
		if n == 0 {
			wait = 10 * time.Second
		}
		var s tcpSeg
		fr, err := c.Next(out, wait, func(fr vmnet.Frame) bool {
			var ok bool
			s, ok = parseTCP(fr.Data)
			return ok && s.dst == dst && s.src.Addr() == src.Addr() && s.payload > 0 &&
				(src.Port() == 0 || s.src.Port() == src.Port())
		})
		if err != nil {
			if n == 0 {
				return 0, 0, "", err
			}
			return end, port, first, nil
		}
		if n == 0 && s.payload <= len(fr.Data) {
			data := fr.Data[len(fr.Data)-s.payload:]
			first = string(data[:min(len(data), 16)])
		}
		end, port = s.seq+uint32(s.payload), s.src.Port()
	}
}
