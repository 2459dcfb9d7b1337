// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/fullnat/fullnat/ipvs"
	"github.com/fullnat/fullnat/ipvs/ipvstest"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// connFixture is a kernel with two services and connections of each: a
// FULLNAT+SYNPROXY one, a NAT one, a persistence template, an IPv6 one and
// a firewall-mark one.
func connFixture(t *testing.T) (*ipvstest.Kernel, *ipvs.Client, []ipvs.Connection) {
	t.Helper()
	k := ipvstest.New(ipvstest.Options{})
	c, err := k.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, s := range []ipvs.Service{
		{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80, Scheduler: "rr"},
		{Protocol: ipvs.UDP, Address: netip.MustParseAddr("192.0.2.1"), Port: 53, Scheduler: "rr"},
		{Protocol: ipvs.TCP, Address: netip.MustParseAddr("2001:db8::1"), Port: 443, Scheduler: "rr"},
		{Family: ipvs.INET, FWMark: 7, Scheduler: "rr"},
	} {
		if err := c.CreateService(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	conns := []ipvs.Connection{
		{Protocol: "TCP", Client: ap("198.51.100.7:40000"), Virtual: ap("192.0.2.1:80"), Local: ap("10.0.0.5:5001"),
			Destination: ap("10.0.1.1:8080"), State: "ESTABLISHED", Expires: 899500 * time.Millisecond,
			Family: ipvs.INET, Flags: ipvs.ConnFlags(ipvs.FullNAT) | ipvs.ConnSynProxy, Timeout: 900 * time.Second,
			SynProxyAnswered: true},
		{Protocol: "TCP", Client: ap("198.51.100.8:40001"), Virtual: ap("192.0.2.1:80"),
			Destination: ap("10.0.1.2:8080"), State: "SYN_RECV", Expires: 59 * time.Second,
			Family: ipvs.INET, Flags: ipvs.ConnFlags(ipvs.Masquerade) | ipvs.ConnInactive, Timeout: 60 * time.Second},
		{Protocol: "UDP", Client: ap("198.51.100.9:0"), Virtual: ap("192.0.2.1:53"),
			Destination: ap("10.0.1.3:53"), State: "NONE", Expires: 300 * time.Second,
			Family: ipvs.INET, Flags: ipvs.ConnTemplate | ipvs.ConnNoCPort, Timeout: 300 * time.Second},
		{Protocol: "TCP", Client: ap("[2001:db8:1::9]:50000"), Virtual: ap("[2001:db8::1]:443"),
			Destination: ap("[2001:db8:2::1]:443"), State: "FIN_WAIT", Expires: 2 * time.Minute,
			Family: ipvs.INET6, Flags: ipvs.ConnFlags(ipvs.DirectRoute), Timeout: 2 * time.Minute,
			PEName: "sip", PEData: "call-1@example"},
		{Protocol: "TCP", Client: ap("198.51.100.10:1234"), Virtual: ap("192.0.2.9:25"),
			Destination: ap("10.0.1.4:25"), State: "ESTABLISHED", Expires: time.Second,
			Family: ipvs.INET, FWMark: 7, Timeout: 900 * time.Second},
	}
	for _, conn := range conns {
		if err := k.AddConnection(conn); err != nil {
			t.Fatal(err)
		}
	}
	return k, c, conns
}

func collect(t *testing.T, seq func(func(ipvs.Connection, error) bool)) ([]ipvs.Connection, error) {
	t.Helper()
	var out []ipvs.Connection
	for conn, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, conn)
	}
	return out, nil
}

// Every field the dump carries comes back as it went in.
func TestConnectionsDump(t *testing.T) {
	_, c, want := connFixture(t)
	got, err := collect(t, c.Connections(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got\n%+v\nwant\n%+v", got, want)
	}
	if got[0].Flags.ForwardMethod() != ipvs.FullNAT || got[3].Flags.ForwardMethod() != ipvs.DirectRoute {
		t.Errorf("forward methods %v, %v", got[0].Flags.ForwardMethod(), got[3].Flags.ForwardMethod())
	}
}

func TestServiceConnections(t *testing.T) {
	_, c, all := connFixture(t)
	for _, tc := range []struct {
		svc  ipvs.Service
		want []ipvs.Connection
	}{
		{ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80}, all[:2]},
		{ipvs.Service{Protocol: ipvs.UDP, Address: netip.MustParseAddr("192.0.2.1"), Port: 53}, all[2:3]},
		{ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("2001:db8::1"), Port: 443}, all[3:4]},
		{ipvs.Service{Family: ipvs.INET, FWMark: 7}, all[4:5]},
	} {
		got, err := collect(t, c.ServiceConnections(t.Context(), tc.svc))
		if err != nil {
			t.Fatalf("%v: %v", tc.svc, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%v: got %+v, want %+v", tc.svc, got, tc.want)
		}
	}
	_, err := collect(t, c.ServiceConnections(t.Context(),
		ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 81}))
	if !errors.Is(err, ipvs.ErrNotFound) {
		t.Errorf("a missing service: %v, want ErrNotFound", err)
	}
}

// A loop that stops early, or whose context ends, leaves the client
// usable; the client is free while the loop runs.
func TestConnectionsStopEarly(t *testing.T) {
	k, c, _ := connFixture(t)
	for i := range 200 {
		_ = k.AddConnection(ipvs.Connection{Protocol: "TCP", Client: netip.AddrPortFrom(netip.MustParseAddr("198.51.100.50"), uint16(1024+i)),
			Virtual: ap("192.0.2.1:80"), Destination: ap("10.0.1.1:8080"), State: "ESTABLISHED"})
	}
	n := 0
	for _, err := range c.Connections(t.Context()) {
		if err != nil {
			t.Fatal(err)
		}
		// the client answers other calls meanwhile
		if _, err := c.Services(t.Context()); err != nil {
			t.Fatalf("Services during the loop: %v", err)
		}
		if n++; n == 3 {
			break
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	n = 0
	var last error
	for _, err := range c.Connections(ctx) {
		if err != nil {
			last = err
			break
		}
		if n++; n == 20 {
			cancel()
		}
	}
	if !errors.Is(last, context.Canceled) || n != 20 {
		t.Errorf("cancelled listing ended with %v after %d entries, want context.Canceled after 20", last, n)
	}
	got, err := collect(t, c.Connections(t.Context()))
	if err != nil || len(got) != 205 {
		t.Fatalf("listing after: %d entries, %v; want 205", len(got), err)
	}
}

// A stock module has no connection dump; a client that cannot read /proc
// in its namespace (a fake's) says so.
func TestConnectionsStock(t *testing.T) {
	k := ipvstest.New(ipvstest.Options{Stock: true})
	c, err := k.Client()
	if err != nil {
		t.Fatal(err)
	}
	_, err = collect(t, c.Connections(t.Context()))
	if !errors.Is(err, ipvs.ErrNotSupported) {
		t.Errorf("got %v, want ErrNotSupported", err)
	}
}
