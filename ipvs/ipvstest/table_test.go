// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvstest_test

import (
	"context"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/fullnat/fullnat/ipvs"
	"github.com/fullnat/fullnat/ipvs/ipvstest"
)

// tableServices are services of every kind with their destinations:
// IPv4 and IPv6, address and fwmark services, one without destinations.
var tableServices = []ipvs.ServiceDestinations{
	{Service: ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80, Scheduler: "rr"},
		Destinations: []ipvs.Destination{
			{Address: netip.MustParseAddr("198.51.100.1"), Port: 8080, Weight: 1, ForwardMethod: ipvs.Masquerade},
			{Address: netip.MustParseAddr("198.51.100.2"), Port: 8080, Weight: 2, ForwardMethod: ipvs.DirectRoute},
			{Address: netip.MustParseAddr("198.51.100.3"), Port: 80, Weight: 3, ForwardMethod: ipvs.Tunnel,
				TunnelType: ipvs.TunnelGUE, TunnelPort: 6080},
		}},
	{Service: ipvs.Service{Protocol: ipvs.UDP, Address: netip.MustParseAddr("2001:db8::1"), Port: 53, Scheduler: "sh",
		Flags: ipvs.FlagSHPort}},
	{Service: ipvs.Service{Protocol: ipvs.UDP, Address: netip.MustParseAddr("2001:db8::2"), Port: 53, Scheduler: "wlc"},
		Destinations: []ipvs.Destination{
			{Address: netip.MustParseAddr("2001:db8:2::1"), Port: 53, Weight: 1},
			{Address: netip.MustParseAddr("2001:db8:2::2"), Port: 53, Weight: 5, UpperThreshold: 100, LowerThreshold: 10},
		}},
	{Service: ipvs.Service{FWMark: 7, Scheduler: "wrr"},
		Destinations: []ipvs.Destination{
			{Address: netip.MustParseAddr("198.51.100.7"), Port: 0, Weight: 1, ForwardMethod: ipvs.DirectRoute},
		}},
	{Service: ipvs.Service{FWMark: 8, Family: ipvs.INET6, Scheduler: "lc", Flags: ipvs.FlagPersistent, Timeout: 60, Netmask: 64},
		Destinations: []ipvs.Destination{
			{Address: netip.MustParseAddr("2001:db8:3::1"), Port: 0, Weight: 1, ForwardMethod: ipvs.DirectRoute},
			{Address: netip.MustParseAddr("2001:db8:3::2"), Port: 0, Weight: 2, ForwardMethod: ipvs.DirectRoute},
		}},
	{Service: ipvs.Service{Protocol: ipvs.SCTP, Address: netip.MustParseAddr("192.0.2.2"), Port: 9, Scheduler: "mh"},
		Destinations: []ipvs.Destination{
			{Address: netip.MustParseAddr("198.51.100.9"), Port: 9, Weight: 1, ForwardMethod: ipvs.Masquerade},
		}},
}

// listedSeparately is the table as Services and one Destinations per
// service list it.
func listedSeparately(ctx context.Context, t *testing.T, c *ipvs.Client) []ipvs.ServiceDestinations {
	t.Helper()
	svcs, err := c.Services(ctx)
	if err != nil {
		t.Fatalf("Services: %v", err)
	}
	out := []ipvs.ServiceDestinations{}
	for _, s := range svcs {
		ds, err := c.Destinations(ctx, s)
		if err != nil {
			t.Fatalf("Destinations of %v: %v", s, err)
		}
		out = append(out, ipvs.ServiceDestinations{Service: s, Destinations: ds})
	}
	return out
}

// sameTable reports whether two listings are the same, a service without
// destinations being the same with a nil or an empty slice.
func sameTable(a, b []ipvs.ServiceDestinations) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Service != b[i].Service || len(a[i].Destinations) != len(b[i].Destinations) ||
			(len(a[i].Destinations) > 0 && !reflect.DeepEqual(a[i].Destinations, b[i].Destinations)) {
			return false
		}
	}
	return true
}

// TestServicesWithDestinations: the table in one listing (IPVS_CMD_GET_TABLE
// when the fake reports FeatureTableDump, the per-service dumps otherwise)
// is what Services and Destinations list, in the same order, which is
// the kernel's: services with an address before fwmark services.
func TestServicesWithDestinations(t *testing.T) {
	all := ipvs.FeatureFullNAT | ipvs.FeatureSynProxy | ipvs.FeatureEstTimeout | ipvs.FeatureProxyProtocol | ipvs.FeatureConnDump
	for _, tc := range []struct {
		name  string
		opts  ipvstest.Options
		table bool // FeatureTableDump reported
	}{
		{"default", ipvstest.Options{}, true},
		{"table dump only", ipvstest.Options{Features: ipvs.FeatureTableDump}, true},
		{"table dump with its counters left out", ipvstest.Options{Features: ipvs.FeatureTableDump | ipvs.FeatureTableNoStats}, true},
		{"without table dump", ipvstest.Options{Features: all}, false},
		{"stock", ipvstest.Options{Stock: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			c := client(t, tc.opts)
			info, err := c.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.Features.Has(ipvs.FeatureTableDump) != tc.table {
				t.Fatalf("features %v: table dump %v, want %v", info.Features, !tc.table, tc.table)
			}
			got, err := c.ServicesWithDestinations(ctx)
			if err != nil || got == nil || len(got) != 0 {
				t.Fatalf("empty table: ServicesWithDestinations = %#v, %v; want an empty listing", got, err)
			}
			var b ipvs.Batch
			for _, sd := range tableServices {
				b.CreateService(sd.Service)
				for _, d := range sd.Destinations {
					b.CreateDestination(sd.Service, d)
				}
			}
			if err := c.Apply(ctx, &b); err != nil {
				t.Fatal(err)
			}
			want := listedSeparately(ctx, t, c)
			if len(want) != len(tableServices) {
				t.Fatalf("%d services listed, want %d", len(want), len(tableServices))
			}
			// each once, those with an address before the fwmark services
			// (the kernel's two tables)
			fwmark := false
			for i, sd := range want {
				j := slices.IndexFunc(tableServices, func(c ipvs.ServiceDestinations) bool { return c.Service.SameKey(sd.Service) })
				if j < 0 || !tableServices[j].Service.Equal(sd.Service) || len(sd.Destinations) != len(tableServices[j].Destinations) {
					t.Fatalf("listed %d: %+v, not as created", i, sd)
				}
				if sd.Service.FWMark != 0 {
					fwmark = true
				} else if fwmark {
					t.Errorf("listed %d: %v after a fwmark service", i, sd.Service)
				}
			}
			got, err = c.ServicesWithDestinations(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !sameTable(got, want) {
				t.Errorf("ServicesWithDestinations =\n%+v\nServices and Destinations =\n%+v", got, want)
			}
			// without the counters (all zero in the fake), whether the
			// kernel can leave them out or not
			got, err = c.ServicesWithDestinations(ctx, ipvs.WithoutStats())
			if err != nil {
				t.Fatalf("WithoutStats (features %v): %v", info.Features, err)
			}
			if !sameTable(got, want) {
				t.Errorf("ServicesWithDestinations(WithoutStats) =\n%+v\nServices and Destinations =\n%+v", got, want)
			}
			// a change shows in the next listing
			if err := c.DeleteDestination(ctx, tableServices[0].Service, tableServices[0].Destinations[1]); err != nil {
				t.Fatal(err)
			}
			if err := c.DeleteService(ctx, tableServices[3].Service); err != nil {
				t.Fatal(err)
			}
			want = listedSeparately(ctx, t, c)
			got, err = c.ServicesWithDestinations(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) != len(tableServices)-1 || !sameTable(got, want) {
				t.Errorf("after the deletes: ServicesWithDestinations =\n%+v\nServices and Destinations =\n%+v", got, want)
			}
		})
	}
}

// TestServicesWithDestinationsLocalAddresses: with FeatureTableLaddrs the
// table dump gives every service's local addresses, as LocalAddresses
// lists them, address and fwmark services alike (none for a service
// without); without the feature the listing leaves them nil.
func TestServicesWithDestinationsLocalAddresses(t *testing.T) {
	fnat := ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80, Scheduler: "rr"}
	mark := ipvs.Service{FWMark: 9, Family: ipvs.INET6, Scheduler: "rr"}
	nat := ipvs.Service{Protocol: ipvs.UDP, Address: netip.MustParseAddr("192.0.2.1"), Port: 53, Scheduler: "rr"}
	laddrs := map[ipvs.Service][]string{
		fnat: {"198.51.100.101", "198.51.100.102"},
		mark: {"2001:db8:2::101"},
	}
	base := ipvs.FeatureFullNAT | ipvs.FeatureTableDump
	for _, tc := range []struct {
		name   string
		opts   ipvstest.Options
		listed bool
	}{
		{"default", ipvstest.Options{}, true},
		{"with", ipvstest.Options{Features: base | ipvs.FeatureTableLaddrs}, true},
		{"without", ipvstest.Options{Features: base}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			c := client(t, tc.opts)
			var b ipvs.Batch
			for _, s := range []ipvs.Service{fnat, mark, nat} {
				b.CreateService(s)
				for _, a := range laddrs[s] {
					b.CreateLocalAddress(s, ipvs.LocalAddress{Address: netip.MustParseAddr(a)})
				}
			}
			b.CreateDestination(fnat, ipvs.Destination{Address: netip.MustParseAddr("198.51.100.1"), Port: 8080, Weight: 1, ForwardMethod: ipvs.FullNAT})
			if err := c.Apply(ctx, &b); err != nil {
				t.Fatal(err)
			}
			check := func(when string) {
				t.Helper()
				got, err := c.ServicesWithDestinations(ctx)
				if err != nil || len(got) != 3 {
					t.Fatalf("%s: ServicesWithDestinations = %+v, %v", when, got, err)
				}
				for _, sd := range got {
					want, err := c.LocalAddresses(ctx, sd.Service)
					if err != nil {
						t.Fatal(err)
					}
					switch {
					case !tc.listed && sd.LocalAddresses != nil:
						t.Errorf("%s: %v: local addresses %v without FeatureTableLaddrs", when, sd.Service, sd.LocalAddresses)
					case tc.listed && !reflect.DeepEqual(sd.LocalAddresses, want):
						t.Errorf("%s: %v: local addresses %v, LocalAddresses lists %v", when, sd.Service, sd.LocalAddresses, want)
					}
				}
			}
			check("created")
			if err := c.DeleteLocalAddress(ctx, fnat, ipvs.LocalAddress{Address: netip.MustParseAddr("198.51.100.101")}); err != nil {
				t.Fatal(err)
			}
			check("after a delete")
		})
	}
}
