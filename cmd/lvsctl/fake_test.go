// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"iter"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fullnat/fullnat/ipvs"
)

// fake is an in-memory backend that records the changes it is asked for.
type fake struct {
	info   ipvs.Info
	table  []ipvs.ServiceDestinations
	laddrs map[string][]ipvs.LocalAddress
	conns  []ipvs.Connection
	calls  []string
	last   any // the argument of the last change
	err    error
	// deadline is whether Table's context had one.
	deadline bool
}

func (f *fake) find(key ipvs.Service) int {
	return slices.IndexFunc(f.table, func(sd ipvs.ServiceDestinations) bool { return serviceID(sd.Service) == serviceID(key) })
}

func (f *fake) rec(call string, arg any) error {
	f.calls = append(f.calls, call)
	f.last = arg
	return f.err
}

func (f *fake) Info(context.Context) (ipvs.Info, error) { return f.info, nil }
func (f *fake) Table(ctx context.Context) ([]ipvs.ServiceDestinations, error) {
	_, f.deadline = ctx.Deadline()
	return f.table, ctx.Err()
}
func (f *fake) Service(_ context.Context, key ipvs.Service) (ipvs.Service, error) {
	if i := f.find(key); i >= 0 {
		return f.table[i].Service, nil
	}
	return ipvs.Service{}, &ipvs.Error{Op: "get service", Object: key.String(), Err: os.ErrNotExist}
}
func (f *fake) CreateService(_ context.Context, s ipvs.Service) error {
	return f.rec("CreateService", s)
}
func (f *fake) UpdateService(_ context.Context, s ipvs.Service) error {
	return f.rec("UpdateService", s)
}
func (f *fake) DeleteService(_ context.Context, s ipvs.Service) error {
	return f.rec("DeleteService", s)
}
func (f *fake) Destinations(_ context.Context, s ipvs.Service) ([]ipvs.Destination, error) {
	if i := f.find(s); i >= 0 {
		return f.table[i].Destinations, nil
	}
	return nil, nil
}
func (f *fake) CreateDestination(_ context.Context, _ ipvs.Service, d ipvs.Destination) error {
	return f.rec("CreateDestination", d)
}
func (f *fake) UpdateDestination(_ context.Context, _ ipvs.Service, d ipvs.Destination) error {
	return f.rec("UpdateDestination", d)
}
func (f *fake) DeleteDestination(_ context.Context, _ ipvs.Service, d ipvs.Destination) error {
	return f.rec("DeleteDestination", d)
}
func (f *fake) LocalAddresses(_ context.Context, s ipvs.Service) ([]ipvs.LocalAddress, error) {
	return f.laddrs[serviceID(s)], nil
}
func (f *fake) CreateLocalAddress(_ context.Context, _ ipvs.Service, la ipvs.LocalAddress) error {
	return f.rec("CreateLocalAddress", la)
}
func (f *fake) DeleteLocalAddress(_ context.Context, _ ipvs.Service, la ipvs.LocalAddress) error {
	return f.rec("DeleteLocalAddress", la)
}
func (f *fake) Connections(_ context.Context, svc *ipvs.Service) iter.Seq2[ipvs.Connection, error] {
	return func(yield func(ipvs.Connection, error) bool) {
		for _, c := range f.conns {
			if svc != nil && (svc.FWMark != c.FWMark || (svc.FWMark == 0 &&
				(c.Protocol != strings.ToUpper(svc.Protocol.String()) || c.Virtual != netip.AddrPortFrom(svc.Address, svc.Port)))) {
				continue
			}
			if !yield(c, nil) {
				return
			}
		}
	}
}
func (f *fake) Close() error { return nil }

var (
	vip     = netip.MustParseAddr("203.0.113.10")
	fnatSvc = ipvs.Service{Family: ipvs.INET, Protocol: ipvs.TCP, Address: vip, Port: 80, Scheduler: "rr",
		Flags: ipvs.FlagHashed | ipvs.FlagSynProxy, Netmask: 0xffffffff, EstablishedTimeout: 300, ProxyProtocol: ipvs.ProxyProtocolV2,
		Stats64: ipvs.Stats{Connections: 100, PacketsIn: 1000, PacketsOut: 900, BytesIn: 1 << 40, BytesOut: 5000, CPS: 3, BPSIn: 7}}
	v6Svc = ipvs.Service{Family: ipvs.INET6, Protocol: ipvs.UDP, Address: netip.MustParseAddr("2001:db8:10::10"), Port: 53,
		Scheduler: "wlc", Flags: ipvs.FlagHashed | ipvs.FlagPersistent | ipvs.FlagOnePacket, Timeout: 360, Netmask: 64,
		Stats: ipvs.Stats{Connections: 2}}
	fwmSvc = ipvs.Service{Family: ipvs.INET, FWMark: 7, Scheduler: "sh", Flags: ipvs.FlagHashed | ipvs.FlagSched1}
)

// newFake has a FULLNAT service with SYNPROXY, two real servers and two
// local addresses, an IPv6 UDP service with a tunnel real server and a
// firewall-mark service.
func newFake() *fake {
	return &fake{
		info: ipvs.Info{Version: ipvs.Version{Major: 1, Minor: 2, Patch: 1}, ConnTableSize: 4096,
			Features: ipvs.FeatureFullNAT | ipvs.FeatureSynProxy | ipvs.FeatureEstTimeout},
		table: []ipvs.ServiceDestinations{
			{Service: fnatSvc, Destinations: []ipvs.Destination{
				{Address: netip.MustParseAddr("198.51.100.11"), Port: 8080, ForwardMethod: ipvs.FullNAT, Weight: 3,
					ActiveConns: 5, InactiveConns: 1, Stats64: ipvs.Stats{Connections: 60, PacketsIn: 600}},
				{Address: netip.MustParseAddr("198.51.100.12"), Port: 8080, ForwardMethod: ipvs.FullNAT, Weight: 1,
					UpperThreshold: 100, LowerThreshold: 50, Stats64: ipvs.Stats{Connections: 40}},
			}},
			{Service: v6Svc, Destinations: []ipvs.Destination{
				{Address: netip.MustParseAddr("2001:db8:2::11"), Port: 53, ForwardMethod: ipvs.Tunnel, Weight: 1,
					TunnelType: ipvs.TunnelGUE, TunnelPort: 6080, TunnelFlags: ipvs.TunnelChecksum},
			}},
			{Service: fwmSvc},
		},
		laddrs: map[string][]ipvs.LocalAddress{
			"tcp:203.0.113.10:80": {
				{Address: netip.MustParseAddr("198.51.100.101"), Connections: 4, PortConflicts: 2},
				{Address: netip.MustParseAddr("198.51.100.102"), Connections: 1},
			},
		},
		conns: []ipvs.Connection{
			{Protocol: "TCP", Client: netip.MustParseAddrPort("192.0.2.2:40000"), Virtual: netip.MustParseAddrPort("203.0.113.10:80"),
				Local: netip.MustParseAddrPort("198.51.100.101:5001"), Destination: netip.MustParseAddrPort("198.51.100.11:8080"),
				State: "ESTABLISHED", Expires: 899e9, Family: ipvs.INET, Flags: ipvs.ConnFlags(ipvs.FullNAT) | ipvs.ConnSynProxy,
				Timeout: 900e9, SynProxyAnswered: true},
			{Protocol: "UDP", Client: netip.MustParseAddrPort("[2001:db8:1::2]:5353"), Virtual: netip.MustParseAddrPort("[2001:db8:10::10]:53"),
				Destination: netip.MustParseAddrPort("[2001:db8:2::11]:53"), State: "UDP", Expires: 290e9},
		},
	}
}

// fakeProc writes a proc tree with the module's counters and sysctls.
func fakeProc(t *testing.T) procFS {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, sysctlDir), 0o755))
	must(os.MkdirAll(filepath.Join(root, "net"), 0o755))
	for name, v := range map[string]string{
		"fullnat_lport_min": "5000", "fullnat_lport_max": "65535", "synproxy_syn_retry": "3", "defence_tcp_drop": "1",
		"am_droprate": "10", // stock, not listed
	} {
		must(os.WriteFile(filepath.Join(root, sysctlDir, name), []byte(v+"\n"), 0o644))
	}
	ext := "                                  CPU0       CPU1       \n" +
		"fullnat_lport_exhausted  :         2          3 \n" +
		"fullnat_no_laddr         :         0          0 \n" +
		"synproxy_ack_resent      :        10          1 \n" +
		"defence_tcp_drop         :         7          0 \n" +
		"future_counter           :         1          1 \n"
	must(os.WriteFile(filepath.Join(root, extStatsFile), []byte(ext), 0o444))
	return procFS{root: root}
}

// runCmd runs lvsctl with args against f (nil: opening IPVS fails the test).
func runCmd(t *testing.T, f *fake, proc procFS, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	en := &env{stdout: &o, stderr: &e, proc: proc, open: func() (backend, error) {
		if f == nil {
			t.Errorf("lvsctl %q opened IPVS", args)
			return nil, os.ErrPermission
		}
		return f, nil
	}}
	code = en.run(context.Background(), append([]string{"lvsctl"}, args...))
	return o.String(), e.String(), code
}
