// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvstest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/fullnat/fullnat/ipvs"
)

// Behaviour runs the table of IPVS behaviours that Kernel promises to share
// with the real kernel against c, which must start on an empty table with
// no local-address configuration needs (the fake accepts any local
// address; the real kernel needs it configured on the director, so the
// table creates local addresses only when laddr is valid). It leaves the
// table empty. The same table runs against ipvstest in the unit tests and
// against the kernels of the test rig in the VM tests.
func Behaviour(t *testing.T, c *ipvs.Client, laddr netip.Addr) {
	ctx := t.Context()
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	fullnat := info.Features.Has(ipvs.FeatureFullNAT)
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	t.Cleanup(func() { _ = c.Flush(context.Background()) })

	svc := ipvs.Service{Family: ipvs.INET, Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80,
		Scheduler: "rr", Netmask: 0xffffffff}
	missing := svc
	missing.Port = 81
	d1 := ipvs.Destination{Address: netip.MustParseAddr("198.51.100.1"), Port: 8080, Weight: 1}
	d2 := ipvs.Destination{Address: netip.MustParseAddr("198.51.100.2"), Port: 8080, Weight: 2}
	if fullnat {
		d1.ForwardMethod, d2.ForwardMethod = ipvs.FullNAT, ipvs.FullNAT
	}

	steps := []step{
		{"create service", func() error { return c.CreateService(ctx, svc) }, nil},
		{"create it again", func() error { return c.CreateService(ctx, svc) }, ipvs.ErrExist},
		{"get a missing service", func() error { _, err := c.Service(ctx, missing); return err }, ipvs.ErrNotFound},
		{"update a missing service", func() error { return c.UpdateService(ctx, missing) }, ipvs.ErrNotFound},
		{"delete a missing service", func() error { return c.DeleteService(ctx, missing) }, ipvs.ErrNotFound},
		{"create with an unknown scheduler", func() error {
			s := missing
			s.Scheduler = "nosuch"
			return c.CreateService(ctx, s)
		}, ipvs.ErrModuleNotFound},
		{"create with an unknown persistence engine", func() error {
			s := missing
			s.PEName = "nosuch"
			return c.CreateService(ctx, s)
		}, ipvs.ErrModuleNotFound},
		{"update to an unknown scheduler", func() error {
			s := svc
			s.Scheduler = "nosuch"
			return c.UpdateService(ctx, s)
		}, ipvs.ErrModuleNotFound},
		{"listed with the hashed flag", func() error {
			got, err := c.Services(ctx)
			if err != nil {
				return err
			}
			if len(got) != 1 || got[0].Address != svc.Address || got[0].Port != svc.Port || got[0].Scheduler != "rr" || got[0].Flags != ipvs.FlagHashed {
				return fmt.Errorf("listed: Services = %+v, want %v with FlagHashed", got, svc)
			}
			return nil
		}, nil},
		{"update scheduler", func() error {
			s := svc
			s.Scheduler = "wlc"
			if err := c.UpdateService(ctx, s); err != nil {
				return err
			}
			got, err := c.Service(ctx, svc)
			if err == nil && got.Scheduler != "wlc" {
				err = fmt.Errorf("after update: scheduler %q, want wlc", got.Scheduler)
			}
			return err
		}, nil},
		{"create destinations", func() error {
			if err := c.CreateDestination(ctx, svc, d1); err != nil {
				return err
			}
			return c.CreateDestination(ctx, svc, d2)
		}, nil},
		{"create a destination again", func() error { return c.CreateDestination(ctx, svc, d1) }, ipvs.ErrExist},
		{"destination of a missing service", func() error { return c.CreateDestination(ctx, missing, d1) }, ipvs.ErrNotFound},
		{"update a missing destination", func() error {
			d := d1
			d.Port = 1
			return c.UpdateDestination(ctx, svc, d)
		}, ipvs.ErrNotFound},
		{"delete a missing destination", func() error {
			d := d1
			d.Port = 1
			return c.DeleteDestination(ctx, svc, d)
		}, ipvs.ErrNotFound},
		{"destinations newest first", func() error {
			d := d1
			d.Weight = 7
			if err := c.UpdateDestination(ctx, svc, d); err != nil {
				return err
			}
			got, err := c.Destinations(ctx, svc)
			if err != nil {
				return err
			}
			if len(got) != 2 || got[0].Address != d2.Address || got[1].Address != d1.Address || got[1].Weight != 7 ||
				got[0].ForwardMethod != d2.ForwardMethod || got[0].Family != ipvs.INET {
				return fmt.Errorf("listed: Destinations = %+v, want d2 then d1 with weight 7", got)
			}
			return nil
		}, nil},
		{"destinations of a missing service: empty", func() error {
			got, err := c.Destinations(ctx, missing)
			if err == nil && len(got) != 0 {
				err = fmt.Errorf("listed: Destinations = %+v, want none", got)
			}
			return err
		}, nil},
		{"delete a destination", func() error {
			if err := c.DeleteDestination(ctx, svc, d2); err != nil {
				return err
			}
			got, err := c.Destinations(ctx, svc)
			if err == nil && len(got) != 1 {
				err = fmt.Errorf("listed: Destinations = %+v, want one", got)
			}
			return err
		}, nil},
		{"timeouts", func() error {
			if err := c.SetTimeouts(ctx, ipvs.Timeouts{TCP: 1000 * time.Second, TCPFin: 100 * time.Second, UDP: 200 * time.Second}); err != nil {
				return err
			}
			got, err := c.Timeouts(ctx)
			if err == nil && got != (ipvs.Timeouts{TCP: 1000 * time.Second, TCPFin: 100 * time.Second, UDP: 200 * time.Second}) {
				err = fmt.Errorf("listed: Timeouts = %+v", got)
			}
			return err
		}, nil},
		{"zero a missing service", func() error { return c.ZeroService(ctx, missing) }, ipvs.ErrNotFound},
		{"zero all", func() error { return c.ZeroAll(ctx) }, nil},
	}
	steps = append(steps, step{"sparse services and destinations read back Equal", func() error {
		return sparseRoundTrip(ctx, c)
	}, nil})
	if fullnat && laddr.IsValid() {
		la := ipvs.LocalAddress{Address: laddr}
		steps = append(steps,
			step{"create a local address", func() error { return c.CreateLocalAddress(ctx, svc, la) }, nil},
			step{"create it again", func() error { return c.CreateLocalAddress(ctx, svc, la) }, ipvs.ErrExist},
			step{"local address of a missing service", func() error { return c.CreateLocalAddress(ctx, missing, la) }, ipvs.ErrNotFound},
			step{"list local addresses", func() error {
				got, err := c.LocalAddresses(ctx, svc)
				if err == nil && (len(got) != 1 || got[0].Address != laddr) {
					err = fmt.Errorf("listed: LocalAddresses = %+v, want %v", got, laddr)
				}
				return err
			}, nil},
			step{"delete the local address", func() error { return c.DeleteLocalAddress(ctx, svc, la) }, nil},
			step{"delete it again", func() error { return c.DeleteLocalAddress(ctx, svc, la) }, ipvs.ErrNotFound},
		)
	}
	if !fullnat {
		steps = append(steps, step{"local addresses need the extension", func() error {
			_, err := c.LocalAddresses(ctx, svc)
			return err
		}, ipvs.ErrNotSupported})
	}
	if info.Features.Has(ipvs.FeatureProxyProtocol | ipvs.FeatureFullNAT) {
		steps = append(steps, proxyProtocolSteps(ctx, c)...)
	} else {
		steps = append(steps, step{"the PROXY protocol needs the extension", func() error {
			s := missing
			s.ProxyProtocol = ipvs.ProxyProtocolV1
			return c.CreateService(ctx, s)
		}, ipvs.ErrNotSupported})
	}
	steps = append(steps,
		step{"batch: failures by index", func() error {
			var b ipvs.Batch
			b.CreateService(missing)
			b.CreateService(missing) // exists by then
			b.CreateDestination(missing, d1)
			b.DeleteDestination(missing, d2) // never created
			err := c.Apply(ctx, &b)
			var be *ipvs.BatchError
			if !errors.As(err, &be) || len(be.Failed) != 2 || be.Failed[0].Index != 1 || !errors.Is(be.Failed[0], ipvs.ErrExist) ||
				be.Failed[1].Index != 3 || !errors.Is(be.Failed[1], ipvs.ErrNotFound) {
				return fmt.Errorf("listed: Apply = %v, want operations 1 (exists) and 3 (not found) failed", err)
			}
			return nil
		}, nil},
		step{"list the whole table (parallel dumps)", func() error {
			var b ipvs.Batch
			for i := range 40 {
				s := svc
				s.Address = netip.AddrFrom4([4]byte{198, 18, 0, byte(i)})
				b.CreateService(s)
				for j := range i % 3 {
					d := d1
					d.Address = netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + j)})
					b.CreateDestination(s, d)
				}
			}
			if err := c.Apply(ctx, &b); err != nil {
				return err
			}
			all, err := c.ServicesWithDestinations(ctx)
			if err != nil {
				return err
			}
			if len(all) != 42 {
				return fmt.Errorf("%d services listed, want 42", len(all))
			}
			for _, sd := range all {
				a := sd.Service.Address.As4()
				if a[0] == 198 && a[1] == 18 && len(sd.Destinations) != int(a[3])%3 {
					return fmt.Errorf("%v has %d destinations, want %d", sd.Service, len(sd.Destinations), int(a[3])%3)
				}
			}
			return nil
		}, nil},
		step{"flush", func() error {
			if err := c.Flush(ctx); err != nil {
				return err
			}
			got, err := c.Services(ctx)
			if err == nil && len(got) != 0 {
				err = fmt.Errorf("after Flush: %d services", len(got))
			}
			return err
		}, nil},
	)
	for _, s := range steps {
		err := s.do()
		switch {
		case s.want == nil && err != nil:
			t.Errorf("%s: %v", s.name, err)
		case s.want != nil && !errors.Is(err, s.want):
			t.Errorf("%s: err = %v, want %v", s.name, err, s.want)
		case s.want != nil && slices.Contains([]error{ipvs.ErrNotFound, ipvs.ErrModuleNotFound}, s.want) &&
			errors.Is(err, ipvs.ErrNotFound) == errors.Is(err, ipvs.ErrModuleNotFound):
			t.Errorf("%s: err = %v matches both or neither of ErrNotFound and ErrModuleNotFound", s.name, err)
		}
	}
}

// step is one behaviour: what is done and the error it must match.
type step struct {
	name string
	do   func() error
	want error // nil: success
}

// proxyProtocolSteps set the PROXY protocol, read it back, keep it over an
// update that does not carry it, turn it off, and check the kernel's
// refusals: a UDP service, a NAT real server on a service that has it, a
// DR or NAT real server on a service it is turned on for. They delete
// their services again.
func proxyProtocolSteps(ctx context.Context, c *ipvs.Client) []step {
	pp := ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.20"), Port: 80, Scheduler: "rr",
		ProxyProtocol: ipvs.ProxyProtocolV1}
	plain := ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.21"), Port: 80}
	fwm := ipvs.Service{FWMark: 20, ProxyProtocol: ipvs.ProxyProtocolV2}
	udp := ipvs.Service{Protocol: ipvs.UDP, Address: netip.MustParseAddr("192.0.2.20"), Port: 53, ProxyProtocol: ipvs.ProxyProtocolV2}
	fnat := ipvs.Destination{Address: netip.MustParseAddr("198.51.100.20"), Port: 8080, ForwardMethod: ipvs.FullNAT, Weight: 1}
	nat := ipvs.Destination{Address: netip.MustParseAddr("198.51.100.21"), Port: 8080, ForwardMethod: ipvs.Masquerade, Weight: 1}
	dr := ipvs.Destination{Address: netip.MustParseAddr("198.51.100.22"), Port: 80, ForwardMethod: ipvs.DirectRoute, Weight: 1}
	// reads checks the version the kernel reports for s, by itself and
	// in the whole table.
	reads := func(s ipvs.Service, want ipvs.ProxyProtocol) error {
		got, err := c.Service(ctx, s)
		if err != nil {
			return err
		}
		if got.ProxyProtocol != want {
			return fmt.Errorf("%v: PROXY protocol %v, want %v", s, got.ProxyProtocol, want)
		}
		tab, err := c.ServicesWithDestinations(ctx)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(tab, func(sd ipvs.ServiceDestinations) bool { return s.SameKey(sd.Service) })
		if i < 0 || tab[i].Service.ProxyProtocol != want {
			return fmt.Errorf("%v: not listed with PROXY protocol %v: %+v", s, want, tab)
		}
		return nil
	}
	return []step{
		{"PROXY protocol: create with v1, read back", func() error {
			if err := c.CreateService(ctx, pp); err != nil {
				return err
			}
			if err := reads(pp, ipvs.ProxyProtocolV1); err != nil {
				return err
			}
			got, err := c.Service(ctx, pp)
			if err == nil && !pp.Equal(got) {
				err = fmt.Errorf("created %+v, read back %+v: not Equal", pp, got)
			}
			return err
		}, nil},
		{"PROXY protocol: update to v2 with a FULLNAT real server", func() error {
			if err := c.CreateDestination(ctx, pp, fnat); err != nil {
				return err
			}
			s := pp
			s.ProxyProtocol = ipvs.ProxyProtocolV2
			if err := c.UpdateService(ctx, s); err != nil {
				return err
			}
			return reads(pp, ipvs.ProxyProtocolV2)
		}, nil},
		{"PROXY protocol: an update without it keeps it", func() error {
			s := pp
			s.Scheduler, s.ProxyProtocol = "wlc", ipvs.ProxyProtocolOff
			if err := c.Apply(ctx, &ipvs.Batch{Ops: []ipvs.Op{{Kind: ipvs.OpUpdateService, Service: s, Keep: ipvs.KeepProxyProtocol}}}); err != nil {
				return err
			}
			if got, err := c.Service(ctx, pp); err != nil || got.Scheduler != "wlc" {
				return fmt.Errorf("after the update: %+v, %v; want scheduler wlc", got, err)
			}
			return reads(pp, ipvs.ProxyProtocolV2)
		}, nil},
		{"PROXY protocol: a NAT real server is refused", func() error { return c.CreateDestination(ctx, pp, nat) },
			ipvs.ErrProxyProtocolNotAllowed},
		{"PROXY protocol: a FULLNAT real server changed to NAT is refused", func() error {
			d := fnat
			d.ForwardMethod = ipvs.Masquerade
			return c.UpdateDestination(ctx, pp, d)
		}, ipvs.ErrProxyProtocolNotAllowed},
		{"PROXY protocol: turned off, NAT is taken", func() error {
			s := pp
			s.ProxyProtocol = ipvs.ProxyProtocolOff
			if err := c.UpdateService(ctx, s); err != nil {
				return err
			}
			if err := reads(pp, ipvs.ProxyProtocolOff); err != nil {
				return err
			}
			return c.CreateDestination(ctx, pp, nat)
		}, nil},
		{"PROXY protocol: turning it on with a NAT real server is refused", func() error { return c.UpdateService(ctx, pp) },
			ipvs.ErrProxyProtocolNotAllowed},
		{"PROXY protocol: turning it on with a DR real server is refused", func() error {
			if err := c.CreateService(ctx, plain); err != nil {
				return err
			}
			if err := c.CreateDestination(ctx, plain, dr); err != nil {
				return err
			}
			s := plain
			s.ProxyProtocol = ipvs.ProxyProtocolV1
			return c.UpdateService(ctx, s)
		}, ipvs.ErrProxyProtocolNotAllowed},
		{"PROXY protocol: still off after the refusals", func() error {
			if err := reads(plain, ipvs.ProxyProtocolOff); err != nil {
				return err
			}
			return reads(pp, ipvs.ProxyProtocolOff)
		}, nil},
		{"PROXY protocol: a UDP service is refused", func() error { return c.CreateService(ctx, udp) },
			ipvs.ErrProxyProtocolNotAllowed},
		{"PROXY protocol: a fwmark service takes it", func() error {
			if err := c.CreateService(ctx, fwm); err != nil {
				return err
			}
			return reads(fwm, ipvs.ProxyProtocolV2)
		}, nil},
		{"PROXY protocol: delete the services", func() error {
			return errors.Join(c.DeleteService(ctx, pp), c.DeleteService(ctx, plain), c.DeleteService(ctx, fwm))
		}, nil},
	}
}

// sparseRoundTrip creates services and destinations as a control plane
// writes them, every default left out, and checks that what is listed back
// (through ServicesWithDestinations) is Equal to them but not ==, so the
// defaults were filled in, and that a changed scheduler is not Equal. It
// deletes them again.
func sparseRoundTrip(ctx context.Context, c *ipvs.Client) error {
	sparse := []ipvs.Service{
		{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.11"), Port: 80},
		{Protocol: ipvs.UDP, Address: netip.MustParseAddr("::ffff:192.0.2.12"), Port: 53, Scheduler: "rr"},
		{Protocol: ipvs.TCP, Address: netip.MustParseAddr("2001:db8::1"), Port: 443, Flags: ipvs.FlagPersistent, Timeout: 300},
		{Protocol: ipvs.TCP, Address: netip.MustParseAddr("2001:db8::2"), Port: 443, Flags: ipvs.FlagPersistent, Timeout: 60, Netmask: 64},
		{FWMark: 7, Scheduler: "sh"},
		{FWMark: 8, Family: ipvs.INET6},
		{FWMark: 9, Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.9"), Port: 80},
	}
	d4 := ipvs.Destination{Address: netip.MustParseAddr("::ffff:198.51.100.1"), Port: 8080, Weight: 1}
	d6 := ipvs.Destination{Address: netip.MustParseAddr("2001:db8:2::1"), Port: 8080, Weight: 1}
	defer func() {
		for _, s := range sparse {
			_ = c.DeleteService(ctx, s)
		}
	}()
	for _, want := range sparse {
		if err := c.CreateService(ctx, want); err != nil {
			return err
		}
		d := d4
		if want.Normalized().Family == ipvs.INET6 {
			d = d6
		}
		if err := c.CreateDestination(ctx, want, d); err != nil {
			return err
		}
	}
	tab, err := c.ServicesWithDestinations(ctx)
	if err != nil {
		return err
	}
	for _, want := range sparse {
		if want.Normalized().Normalized() != want.Normalized() {
			return fmt.Errorf("normalized twice, %+v changes", want)
		}
		i := slices.IndexFunc(tab, func(sd ipvs.ServiceDestinations) bool { return want.SameKey(sd.Service) })
		if i < 0 {
			return fmt.Errorf("%v: not listed", want)
		}
		got := tab[i]
		if got.Service == want || !want.Equal(got.Service) || !got.Service.Equal(want) {
			return fmt.Errorf("created %+v, listed %+v: want Equal, not ==", want, got.Service)
		}
		if got.Service.Flags&ipvs.FlagHashed == 0 {
			return fmt.Errorf("%v: listed without FlagHashed", got.Service)
		}
		if len(got.Destinations) != 1 || (!got.Destinations[0].Equal(d4) && !got.Destinations[0].Equal(d6)) {
			return fmt.Errorf("%v: destinations %+v, want one Equal to %v or %v", want, got.Destinations, d4, d6)
		}
		other := want
		other.Scheduler = "lc"
		if other.Equal(got.Service) {
			return fmt.Errorf("%v with scheduler lc Equal the listed %+v", want, got.Service)
		}
	}
	return nil
}
