// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvstest_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/fullnat/fullnat/ipvs"
	"github.com/fullnat/fullnat/ipvs/ipvstest"
	"golang.org/x/sys/unix"
)

func client(t *testing.T, opts ipvstest.Options) *ipvs.Client {
	t.Helper()
	c, err := ipvstest.New(opts).Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestBehaviour(t *testing.T) {
	t.Run("ours", func(t *testing.T) {
		ipvstest.Behaviour(t, client(t, ipvstest.Options{}), netip.MustParseAddr("192.0.2.100"))
	})
	t.Run("stock", func(t *testing.T) {
		ipvstest.Behaviour(t, client(t, ipvstest.Options{Stock: true}), netip.Addr{})
	})
}

func TestInfo(t *testing.T) {
	c := client(t, ipvstest.Options{Features: ipvs.FeatureFullNAT, ConnTableSize: 1 << 20})
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Features != ipvs.FeatureFullNAT || info.ConnTableSize != 1<<20 || info.Version.String() != "1.2.1" {
		t.Errorf("Info = %+v", info)
	}
	svc := ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80, Flags: ipvs.FlagSynProxy}
	if err := c.CreateService(t.Context(), svc); !errors.Is(err, ipvs.ErrNotSupported) {
		t.Errorf("SYNPROXY without the feature: %v, want ErrNotSupported", err)
	}
}

func TestDaemons(t *testing.T) {
	c := client(t, ipvstest.Options{})
	ctx := t.Context()
	d := ipvs.Daemon{State: ipvs.DaemonMaster, Interface: "eth0", SyncID: 3}
	if err := c.StartDaemon(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := c.StartDaemon(ctx, d); !errors.Is(err, ipvs.ErrExist) {
		t.Errorf("second master: %v, want ErrExist", err)
	}
	got, err := c.Daemons(ctx)
	if err != nil || len(got) != 1 || got[0].Interface != "eth0" || got[0].SyncID != 3 || got[0].State != ipvs.DaemonMaster {
		t.Errorf("Daemons = %+v, %v", got, err)
	}
	if err := c.StopDaemon(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := c.StopDaemon(ctx, d); !errors.Is(err, ipvs.ErrNotFound) {
		t.Errorf("stopping a stopped daemon: %v, want ErrNotFound", err)
	}
}

// TestEstablishedTimeout: as our module, an update that does not carry the
// ESTABLISHED timeout keeps the service's, one that carries zero clears
// it, and one above 31 days is refused.
func TestEstablishedTimeout(t *testing.T) {
	c := client(t, ipvstest.Options{})
	ctx := t.Context()
	svc := ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 443, EstablishedTimeout: 600}
	if err := c.CreateService(ctx, svc); err != nil {
		t.Fatal(err)
	}
	upd := svc
	upd.Scheduler, upd.EstablishedTimeout = "wlc", 0
	if err := c.Apply(ctx, &ipvs.Batch{Ops: []ipvs.Op{{Kind: ipvs.OpUpdateService, Service: upd, Keep: ipvs.KeepEstablishedTimeout}}}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Service(ctx, svc); err != nil || got.Scheduler != "wlc" || got.EstablishedTimeout != 600 {
		t.Errorf("after an update without the timeout: %+v, %v; want wlc and 600", got, err)
	}
	if err := c.UpdateService(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Service(ctx, svc); err != nil || got.EstablishedTimeout != 0 {
		t.Errorf("after an update with timeout 0: %+v, %v; want 0", got, err)
	}
	upd.EstablishedTimeout = 31*24*3600 + 1
	if err := c.UpdateService(ctx, upd); err == nil || !errors.Is(err, unix.EINVAL) {
		t.Errorf("a timeout above 31 days: %v, want EINVAL", err)
	}
	upd.EstablishedTimeout = 31 * 24 * 3600
	if err := c.UpdateService(ctx, upd); err != nil {
		t.Errorf("a timeout of 31 days: %v", err)
	}
}

// TestMixedFamily: as ip_vs_ctl.c, a destination of another family than
// its service's only tunnels, and the sync daemons and such destinations
// exclude each other.
func TestMixedFamily(t *testing.T) {
	c := client(t, ipvstest.Options{})
	ctx := t.Context()
	svc := ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80}
	if err := c.CreateService(ctx, svc); err != nil {
		t.Fatal(err)
	}
	nat6 := ipvs.Destination{Family: ipvs.INET6, Address: netip.MustParseAddr("2001:db8::1"), Port: 80, ForwardMethod: ipvs.Masquerade, Weight: 1}
	tun6 := nat6
	tun6.ForwardMethod = ipvs.Tunnel
	d := ipvs.Daemon{State: ipvs.DaemonMaster, Interface: "sync0", SyncID: 1}
	if err := c.CreateDestination(ctx, svc, nat6); !errors.Is(err, unix.EINVAL) {
		t.Errorf("an IPv6 NAT real server of an IPv4 service: %v, want EINVAL", err)
	}
	if err := c.CreateDestination(ctx, svc, tun6); err != nil {
		t.Fatalf("an IPv6 tunnel real server of an IPv4 service: %v", err)
	}
	if err := c.StartDaemon(ctx, d); !errors.Is(err, unix.EINVAL) {
		t.Errorf("a sync daemon beside a mixed-family service: %v, want EINVAL", err)
	}
	if err := c.DeleteDestination(ctx, svc, tun6); err != nil {
		t.Fatal(err)
	}
	if err := c.StartDaemon(ctx, d); err != nil {
		t.Fatalf("a sync daemon: %v", err)
	}
	if err := c.CreateDestination(ctx, svc, tun6); !errors.Is(err, unix.EINVAL) {
		t.Errorf("an IPv6 tunnel real server of an IPv4 service while a sync daemon runs: %v, want EINVAL", err)
	}
}
