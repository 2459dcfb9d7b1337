// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package synproxy

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
)

// dialTCP connects from ns to dst and says how it ended: nil (connected), ECONNREFUSED (a
// RST), or a timeout (the SYN was dropped).
func dialTCP(ns vmnet.NS, dst netip.AddrPort) error {
	return vmnet.InNetns(string(ns), func() error {
		c, err := net.DialTimeout("tcp", dst.String(), 1500*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestSynProxyDefence: on an address with a SYNPROXY service, TCP to a port without a service
// and UDP to a port without a UDP service are dropped and counted (defence_tcp_drop,
// defence_udp_drop) instead of being answered by the director's stack; a UDP service there
// still works, other addresses are left alone, and the sysctls at 0 or the flag taken off the
// service give the stack's answers back. defence_frag_drop (off by default) drops fragments.
func TestSynProxyDefence(t *testing.T) {
	f := newFixture(t)
	d := f.tp.Director
	s := f.service(t, f.tp.VIP, ipvs.FullNAT, true)
	udp := ipvs.Service{Protocol: ipvs.UDP, Address: f.tp.VIP, Port: 80, Scheduler: "rr"}
	udp6 := ipvs.Service{Protocol: ipvs.UDP, Address: f.tp.VIP6, Port: 80, Scheduler: "rr"}
	for i, u := range []ipvs.Service{udp, udp6} {
		if err := f.c.CreateService(t.Context(), u); err != nil {
			t.Fatal(err)
		}
		rs := f.tp.ServerAddrs[0]
		if i == 1 {
			rs = f.tp.ServerAddrs6[0]
		}
		if err := f.c.CreateDestination(t.Context(), u, ipvs.Destination{Address: rs, Port: 80, ForwardMethod: ipvs.Masquerade, Weight: 1}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = f.c.DeleteService(context.Background(), udp)
		_ = f.c.DeleteService(context.Background(), udp6)
	})
	port81 := netip.AddrPortFrom(f.tp.VIP, 81)
	port53 := netip.AddrPortFrom(f.tp.VIP, 53)

	before := spStats(t, d)
	if err := dialTCP(f.tp.Client, port81); !isTimeout(err) {
		t.Errorf("TCP to %v (no service, SYNPROXY address): %v, want a timeout (dropped)", port81, err)
	}
	if _, _, err := vmnet.UDPExchange(f.tp.Client, port53, []byte("hello"), time.Second); !isTimeout(err) {
		t.Errorf("UDP to %v (no service, SYNPROXY address): %v, want a timeout (dropped)", port53, err)
	}
	if reply, _, err := vmnet.UDPExchange(f.tp.Client, netip.AddrPortFrom(f.tp.VIP, 80), []byte("hello"), 3*time.Second); err != nil || !strings.HasPrefix(reply, "rs1 ") {
		t.Errorf("UDP service on the SYNPROXY address: %q, %v", reply, err)
	}
	after := spStats(t, d)
	for _, k := range []string{"defence_tcp_drop", "defence_udp_drop"} {
		if after[k] <= before[k] {
			t.Errorf("%s did not grow (%d -> %d)", k, before[k], after[k])
		}
	}
	// An address without a SYNPROXY service: the director's stack answers.
	if err := dialTCP(f.tp.Client, netip.AddrPortFrom(f.tp.VIP6, 81)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("TCP to [%v]:81 (no SYNPROXY service there): %v, want ECONNREFUSED", f.tp.VIP6, err)
	}

	// The sysctls at 0.
	d.Sysctl(t, "net.ipv4.vs.defence_tcp_drop", "0")
	d.Sysctl(t, "net.ipv4.vs.defence_udp_drop", "0")
	if err := dialTCP(f.tp.Client, port81); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("defence_tcp_drop=0: TCP to %v: %v, want ECONNREFUSED", port81, err)
	}
	if _, _, err := vmnet.UDPExchange(f.tp.Client, port53, []byte("hello"), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("defence_udp_drop=0: UDP to %v: %v, want ECONNREFUSED", port53, err)
	}
	d.Sysctl(t, "net.ipv4.vs.defence_tcp_drop", "1")
	d.Sysctl(t, "net.ipv4.vs.defence_udp_drop", "1")

	// The flag off (-E), back on, and the service gone: the address leaves and joins the scope.
	s.Flags = 0
	if err := f.c.UpdateService(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if err := dialTCP(f.tp.Client, port81); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("after -E without SYNPROXY: TCP to %v: %v, want ECONNREFUSED", port81, err)
	}
	s.Flags = ipvs.FlagSynProxy
	if err := f.c.UpdateService(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if err := dialTCP(f.tp.Client, port81); !isTimeout(err) {
		t.Errorf("after -E with SYNPROXY again: TCP to %v: %v, want a timeout", port81, err)
	}
	if err := f.c.DeleteService(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if err := dialTCP(f.tp.Client, port81); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("after the SYNPROXY service went: TCP to %v: %v, want ECONNREFUSED", port81, err)
	}

	// defence_frag_drop: off by default; on, every fragment is dropped before reassembly.
	if v := strings.TrimSpace(d.Run(t, "/bin/cat", "/proc/sys/net/ipv4/vs/defence_frag_drop")); v != "0" {
		t.Errorf("defence_frag_drop defaults to %s, want 0", v)
	}
	if _, err := d.Try("/bin/sh", "-c", "echo 2 > /proc/sys/net/ipv4/vs/defence_frag_drop"); err == nil {
		t.Errorf("defence_frag_drop accepted 2")
	}
	big := bytes.Repeat([]byte("fragment"), 400) // 3,200 bytes: three fragments at MTU 1500
	for _, vip := range []netip.Addr{f.tp.VIP, f.tp.VIP6} {
		dst := netip.AddrPortFrom(vip, 80)
		if _, _, err := vmnet.UDPExchange(f.tp.Client, dst, big, 3*time.Second); err != nil {
			t.Errorf("3,200-byte datagram to %v, defence_frag_drop=0: %v", dst, err)
		}
		d.Sysctl(t, "net.ipv4.vs.defence_frag_drop", "1")
		b := spStats(t, d)["defence_ip_frag_drop"]
		if reply, _, err := vmnet.UDPExchange(f.tp.Client, dst, big, time.Second); !isTimeout(err) {
			t.Errorf("3,200-byte datagram to %v, defence_frag_drop=1: %q, %v; want it dropped", dst, reply, err)
		}
		if a := spStats(t, d)["defence_ip_frag_drop"]; a < b+3 {
			t.Errorf("defence_ip_frag_drop %d -> %d for a datagram in three fragments", b, a)
		}
		if _, _, err := vmnet.UDPExchange(f.tp.Client, dst, []byte("hello"), 3*time.Second); err != nil {
			t.Errorf("a datagram that needs no fragments, defence_frag_drop=1: %v", err)
		}
		d.Sysctl(t, "net.ipv4.vs.defence_frag_drop", "0")
		if _, _, err := vmnet.UDPExchange(f.tp.Client, dst, big, 3*time.Second); err != nil {
			t.Errorf("3,200-byte datagram to %v, defence_frag_drop back to 0: %v", dst, err)
		}
	}
}
