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
		"proxy":     func(s *ipvs.Service) { s.ProxyProtocol = ipvs.ProxyProtocolV1 },
		"fwmark":    func(s *ipvs.Service) { s.FWMark = 1 },
	}
	keyed := map[string]bool{"port": true, "address": true, "protocol": true, "fwmark": true}
	for name, f := range differ {
		s := base
		f(&s)
		if base.Equal(s) {
			t.Errorf("%s: %+v Equal %+v", name, base, s)
		}
		if base.SameKey(s) == keyed[name] {
			t.Errorf("%s: SameKey(%+v, %+v) = %v", name, base, s, !keyed[name])
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
		if !base.SameKey(s) {
			t.Errorf("%s: %+v not SameKey %+v", name, base, s)
		}
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
		i := slices.IndexFunc(have, w.SameKey)
		switch {
		case i < 0:
			b.CreateService(w)
		case !w.Equal(have[i]):
			b.UpdateService(w)
		}
	}
	for _, h := range have {
		if !slices.ContainsFunc(want, h.SameKey) {
			b.DeleteService(h)
		}
	}
	return b.Len(), c.Apply(ctx, &b)
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
