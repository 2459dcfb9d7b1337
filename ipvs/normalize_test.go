// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"slices"
	"testing"

	"github.com/fullnat/fullnat/ipvs"
	"github.com/fullnat/fullnat/ipvs/ipvstest"
)

// sparse are services as a control plane writes them, every default left
// out; each is created and read back in TestEqualRoundTrip.
var sparse = []ipvs.Service{
	{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80},
	{Protocol: ipvs.UDP, Address: netip.MustParseAddr("::ffff:192.0.2.2"), Port: 53, Scheduler: "rr"},
	{Protocol: ipvs.TCP, Address: netip.MustParseAddr("2001:db8::1"), Port: 443, Flags: ipvs.FlagPersistent, Timeout: 300},
	{Protocol: ipvs.TCP, Address: netip.MustParseAddr("2001:db8::2"), Port: 443, Flags: ipvs.FlagPersistent, Timeout: 60, Netmask: 64},
	{FWMark: 7, Scheduler: "sh"},
	{FWMark: 8, Family: ipvs.INET6},
	{FWMark: 9, Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.9"), Port: 80},
}

func fakeClient(t *testing.T) *ipvs.Client {
	t.Helper()
	c, err := ipvstest.New(ipvstest.Options{}).Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// What is created from a sparse service and destination reads back Equal
// to it, though the kernel filled in defaults, set FlagHashed and counts.
func TestEqualRoundTrip(t *testing.T) {
	c := fakeClient(t)
	ctx := context.Background()
	d4 := ipvs.Destination{Address: netip.MustParseAddr("::ffff:198.51.100.1"), Port: 8080, Weight: 1}
	d6 := ipvs.Destination{Address: netip.MustParseAddr("2001:db8:2::1"), Port: 8080, Weight: 1}
	for _, want := range sparse {
		if err := c.CreateService(ctx, want); err != nil {
			t.Fatalf("CreateService(%+v): %v", want, err)
		}
		got, err := c.Service(ctx, want)
		if err != nil {
			t.Fatalf("Service(%+v): %v", want, err)
		}
		if got == want {
			t.Errorf("%v: read back unchanged; the test needs a sparse service", want)
		}
		if !want.Equal(got) || !got.Equal(want) {
			t.Errorf("created %+v, read back %+v: not Equal\n%+v\n%+v", want, got, want.Normalized(), got.Normalized())
		}
		if got.Flags&ipvs.FlagHashed == 0 {
			t.Errorf("%v: the fake did not report FlagHashed", got)
		}
		if want.Normalized().Normalized() != want.Normalized() {
			t.Errorf("Normalized is not idempotent on %+v", want)
		}
		d := d4
		if want.Normalized().Family == ipvs.INET6 {
			d = d6
		}
		if err := c.CreateDestination(ctx, want, d); err != nil {
			t.Fatalf("CreateDestination(%v): %v", want, err)
		}
		ds, err := c.Destinations(ctx, want)
		if err != nil || len(ds) != 1 {
			t.Fatalf("Destinations(%v) = %+v, %v", want, ds, err)
		}
		if !d.Equal(ds[0]) {
			t.Errorf("destination %+v read back as %+v: not Equal", d, ds[0])
		}
	}
}

// Each field a reconciler sets makes a difference; counters do not.
func TestEqualDifferences(t *testing.T) {
	base := ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80}
	differ := map[string]func(*ipvs.Service){
		"scheduler": func(s *ipvs.Service) { s.Scheduler = "rr" },
		"port":      func(s *ipvs.Service) { s.Port = 81 },
		"address":   func(s *ipvs.Service) { s.Address = netip.MustParseAddr("192.0.2.2") },
		"protocol":  func(s *ipvs.Service) { s.Protocol = ipvs.UDP },
		"flags":     func(s *ipvs.Service) { s.Flags = ipvs.FlagSynProxy },
		"timeout":   func(s *ipvs.Service) { s.Timeout = 1 },
		"netmask":   func(s *ipvs.Service) { s.Netmask = 0xffffff00 },
		"pe":        func(s *ipvs.Service) { s.PEName = "sip" },
		"est":       func(s *ipvs.Service) { s.EstablishedTimeout = 30 },
		"fwmark":    func(s *ipvs.Service) { s.FWMark = 1 },
	}
	for name, f := range differ {
		s := base
		f(&s)
		if base.Equal(s) {
			t.Errorf("%s: %+v Equal %+v", name, base, s)
		}
	}
	same := map[string]func(*ipvs.Service){
		"wlc":     func(s *ipvs.Service) { s.Scheduler = "wlc" },
		"mask":    func(s *ipvs.Service) { s.Netmask = 0xffffffff },
		"family":  func(s *ipvs.Service) { s.Family = ipvs.INET },
		"hashed":  func(s *ipvs.Service) { s.Flags = ipvs.FlagHashed },
		"stats":   func(s *ipvs.Service) { s.Stats.Connections, s.Stats64.BytesIn = 3, 9 },
		"mapped":  func(s *ipvs.Service) { s.Address = netip.MustParseAddr("::ffff:192.0.2.1") },
		"zone":    func(s *ipvs.Service) { s.Address = s.Address.WithZone("eth0") },
		"nothing": func(*ipvs.Service) {},
	}
	for name, f := range same {
		s := base
		f(&s)
		if !base.Equal(s) {
			t.Errorf("%s: %+v not Equal %+v", name, base, s)
		}
	}

	d := ipvs.Destination{Address: netip.MustParseAddr("2001:db8::5"), Port: 80, Weight: 1}
	e := d
	e.ActiveConns, e.InactiveConns, e.PersistConns, e.Stats.Connections, e.Family = 1, 2, 3, 4, ipvs.INET6
	if !d.Equal(e) {
		t.Errorf("%+v not Equal %+v", d, e)
	}
	e.Weight = 0
	if d.Equal(e) {
		t.Errorf("weight 0 Equal weight 1")
	}
}

// Compare what a control plane wants with what the kernel has, knowing
// none of the kernel's defaults (here against the in-memory fake).
func ExampleService_Equal() {
	ctx := context.Background()
	c, err := ipvstest.New(ipvstest.Options{}).Client()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	want := ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80}
	if err := c.CreateService(ctx, want); err != nil {
		log.Fatal(err)
	}
	got, err := c.Service(ctx, want)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Scheduler, got == want, want.Equal(got))
	want.Scheduler = "rr"
	fmt.Println(want.Equal(got))
	// Output:
	// wlc false true
	// false
}

// reconcile makes the kernel's services those of want and says how many
// changes that took (README.md's example).
func reconcile(ctx context.Context, c *ipvs.Client, want []ipvs.Service) (int, error) {
	have, err := c.Services(ctx)
	if err != nil {
		return 0, err
	}
	var b ipvs.Batch
	for _, w := range want {
		i := slices.IndexFunc(have, func(h ipvs.Service) bool { return sameKey(h, w) })
		switch {
		case i < 0:
			b.CreateService(w)
		case !w.Equal(have[i]):
			b.UpdateService(w)
		}
	}
	for _, h := range have {
		if !slices.ContainsFunc(want, func(w ipvs.Service) bool { return sameKey(h, w) }) {
			b.DeleteService(h)
		}
	}
	return b.Len(), c.Apply(ctx, &b)
}

// sameKey: the same virtual service (protocol, address and port, or fwmark), whatever its settings.
func sameKey(a, b ipvs.Service) bool {
	a, b = a.Normalized(), b.Normalized()
	return a.Family == b.Family && a.FWMark == b.FWMark && a.Protocol == b.Protocol &&
		a.Address == b.Address && a.Port == b.Port
}

// Reconcile the kernel's table with a desired one: create what is missing,
// update what differs, delete the rest; a second pass changes nothing.
func Example_reconcile() {
	ctx := context.Background()
	c, err := ipvstest.New(ipvstest.Options{}).Client()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	vip := netip.MustParseAddr("192.0.2.1")
	_ = c.CreateService(ctx, ipvs.Service{Protocol: ipvs.TCP, Address: vip, Port: 80, Scheduler: "wlc"})
	_ = c.CreateService(ctx, ipvs.Service{Protocol: ipvs.TCP, Address: vip, Port: 443})
	_ = c.CreateService(ctx, ipvs.Service{Protocol: ipvs.UDP, Address: vip, Port: 53})

	want := []ipvs.Service{
		{Protocol: ipvs.TCP, Address: vip, Port: 80},                   // the same: left alone
		{Protocol: ipvs.TCP, Address: vip, Port: 443, Scheduler: "rr"}, // updated
		{Protocol: ipvs.TCP, Address: vip, Port: 8080},                 // created; UDP 53 deleted
	}
	for pass := 1; pass <= 2; pass++ {
		n, err := reconcile(ctx, c, want)
		if err != nil {
			log.Fatal(err)
		}
		have, _ := c.Services(ctx)
		slices.SortFunc(have, func(a, b ipvs.Service) int { return int(a.Port) - int(b.Port) })
		fmt.Printf("pass %d, %d changes:", pass, n)
		for _, h := range have {
			fmt.Printf(" %v:%d %s", h.Protocol, h.Port, h.Scheduler)
		}
		fmt.Println()
	}
	// Output:
	// pass 1, 3 changes: TCP:80 wlc TCP:443 rr TCP:8080 wlc
	// pass 2, 0 changes: TCP:80 wlc TCP:443 rr TCP:8080 wlc
}
