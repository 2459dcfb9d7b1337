// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/fullnat/fullnat/ipvs"
)

// kernel is the backend on the ipvs library (generic netlink).
type kernel struct {
	c *ipvs.Client
}

func init() {
	openKernel = func() (backend, error) {
		c, err := ipvs.New()
		if err != nil {
			return nil, fmt.Errorf("open IPVS: %w", err)
		}
		return &kernel{c: c}, nil
	}
}

// libErr turns the library's not-supported error into ours.
func libErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ipvs.ErrNotSupported) {
		return fmt.Errorf("%w: %w", errNotSupported, err)
	}
	return err
}

func toLibService(s service) ipvs.Service {
	ls := ipvs.Service{
		Family:             ipvs.Family(s.AF),
		Protocol:           ipvs.Protocol(s.Protocol),
		Port:               s.Port,
		FWMark:             s.FWMark,
		Scheduler:          s.Sched,
		Flags:              ipvs.ServiceFlags(s.Flags),
		Timeout:            s.Timeout,
		Netmask:            s.Netmask,
		PEName:             s.PE,
		EstablishedTimeout: s.EstTimeout,
		ProxyProtocol:      ipvs.ProxyProtocol(s.ProxyProto),
	}
	// The library refuses a 16-byte engine name; the kernel would not
	// find such an engine either.
	if len(ls.PEName) > 15 {
		ls.PEName = ls.PEName[:15]
	}
	if s.FWMark == 0 {
		ls.Address = wireAddr(s.AF, s.Addr)
	}
	return ls
}

// wireAddr is the address as the kernel reads it for family af.
func wireAddr(af uint16, a netip.Addr) netip.Addr {
	r, _ := netip.ParseAddr(addrString(af, a))
	return r
}

func fromLibStats(s ipvs.Stats) stats {
	return stats{s.Connections, s.PacketsIn, s.PacketsOut, s.BytesIn, s.BytesOut,
		s.CPS, s.PPSIn, s.PPSOut, s.BPSIn, s.BPSOut}
}

func fromLibService(ls ipvs.Service) service {
	s := service{
		AF:         uint16(ls.Family),
		Protocol:   uint16(ls.Protocol),
		Addr:       ls.Address,
		Port:       ls.Port,
		FWMark:     ls.FWMark,
		Sched:      ls.Scheduler,
		PE:         ls.PEName,
		Flags:      uint32(ls.Flags),
		Timeout:    ls.Timeout,
		Netmask:    ls.Netmask,
		EstTimeout: ls.EstablishedTimeout,
		ProxyProto: uint8(ls.ProxyProtocol),
		Stats:      fromLibStats(ls.Stats64),
	}
	if ls.Stats64 == (ipvs.Stats{}) {
		s.Stats = fromLibStats(ls.Stats)
	}
	return s
}

func toLibDest(d dest) ipvs.Destination {
	return ipvs.Destination{
		Family:         ipvs.Family(d.AF),
		Address:        wireAddr(d.AF, d.Addr),
		Port:           d.Port,
		ForwardMethod:  ipvs.ForwardMethod(d.FwdMethod),
		Weight:         d.Weight,
		UpperThreshold: d.UThresh,
		LowerThreshold: d.LThresh,
		TunnelType:     ipvs.TunnelType(d.TunType),
		TunnelPort:     d.TunPort,
		TunnelFlags:    ipvs.TunnelFlags(d.TunFlags),
	}
}

func fromLibDest(ld *ipvs.Destination) dest {
	st := ld.Stats64
	if st == (ipvs.Stats{}) {
		st = ld.Stats
	}
	// ipvsadm 1.31 reads the destination's 64-bit counters with a 32-bit
	// getter: everything but the byte counters shows modulo 2^32.
	s := fromLibStats(st)
	for _, p := range []*uint64{&s.Conns, &s.InPkts, &s.OutPkts, &s.CPS, &s.InPPS, &s.OutPPS, &s.InBPS, &s.OutBPS} {
		*p = uint64(uint32(*p))
	}
	return dest{
		AF:        uint16(ld.Family),
		Addr:      ld.Address,
		Port:      ld.Port,
		FwdMethod: uint32(ld.ForwardMethod),
		Weight:    ld.Weight,
		UThresh:   ld.UpperThreshold,
		LThresh:   ld.LowerThreshold,
		Active:    ld.ActiveConns,
		Inactive:  ld.InactiveConns,
		Persist:   ld.PersistConns,
		TunType:   uint8(ld.TunnelType),
		TunPort:   ld.TunnelPort,
		TunFlags:  uint16(ld.TunnelFlags),
		Stats:     s,
	}
}

func (k *kernel) Close() error { return k.c.Close() }

func (k *kernel) Info() (info, error) {
	i, err := k.c.Info(context.Background())
	if err != nil {
		return info{}, err
	}
	v := uint32(i.Version.Major)<<16 | uint32(i.Version.Minor)<<8 | uint32(i.Version.Patch)
	return info{Version: v, Size: i.ConnTableSize, Features: uint32(i.Features)}, nil
}

func (k *kernel) Services() ([]service, error) {
	ls, err := k.c.Services(context.Background())
	if err != nil {
		return nil, err
	}
	out := make([]service, len(ls))
	for i := range ls {
		out[i] = fromLibService(ls[i])
	}
	return out, nil
}

func (k *kernel) Service(key service) (service, error) {
	ls, err := k.c.Service(context.Background(), toLibService(key))
	if err != nil {
		return service{}, err
	}
	return fromLibService(ls), nil
}

func (k *kernel) Dests(svc service) ([]dest, error) {
	ld, err := k.c.Destinations(context.Background(), toLibService(svc))
	if err != nil {
		return nil, err
	}
	out := make([]dest, len(ld))
	for i := range ld {
		out[i] = fromLibDest(&ld[i])
	}
	return out, nil
}

func (k *kernel) AddService(s service) error {
	return libErr(k.c.CreateService(context.Background(), toLibService(s)))
}
func (k *kernel) EditService(s service) error {
	return libErr(k.c.UpdateService(context.Background(), toLibService(s)))
}
func (k *kernel) DelService(s service) error {
	return libErr(k.c.DeleteService(context.Background(), toLibService(s)))
}
func (k *kernel) ZeroService(s service) error {
	return libErr(k.c.ZeroService(context.Background(), toLibService(s)))
}
func (k *kernel) ZeroAll() error { return libErr(k.c.ZeroAll(context.Background())) }
func (k *kernel) Flush() error   { return libErr(k.c.Flush(context.Background())) }

func (k *kernel) AddDest(s service, d dest) error {
	return libErr(k.c.CreateDestination(context.Background(), toLibService(s), toLibDest(d)))
}

func (k *kernel) EditDest(s service, d dest) error {
	return libErr(k.c.UpdateDestination(context.Background(), toLibService(s), toLibDest(d)))
}

func (k *kernel) DelDest(s service, d dest) error {
	return libErr(k.c.DeleteDestination(context.Background(), toLibService(s), toLibDest(d)))
}

func (k *kernel) Timeouts() (timeouts, error) {
	t, err := k.c.Timeouts(context.Background())
	if err != nil {
		return timeouts{}, err
	}
	return timeouts{uint32(t.TCP / time.Second), uint32(t.TCPFin / time.Second), uint32(t.UDP / time.Second)}, nil
}

func (k *kernel) SetTimeouts(t timeouts) error {
	return libErr(k.c.SetTimeouts(context.Background(), ipvs.Timeouts{
		TCP:    time.Duration(t.TCP) * time.Second,
		TCPFin: time.Duration(t.TCPFin) * time.Second,
		UDP:    time.Duration(t.UDP) * time.Second,
	}))
}

func (k *kernel) Daemons() ([]daemon, error) {
	ld, err := k.c.Daemons(context.Background())
	if err != nil {
		return nil, err
	}
	out := make([]daemon, len(ld))
	for i, d := range ld {
		out[i] = daemon{State: uint32(d.State), Ifname: d.Interface, SyncID: d.SyncID,
			SyncMaxLen: d.SyncMaxLen, Group: d.McastGroup, Port: d.McastPort, TTL: d.McastTTL}
	}
	return out, nil
}

func toLibDaemon(d daemon) ipvs.Daemon {
	return ipvs.Daemon{State: ipvs.DaemonState(d.State), Interface: d.Ifname, SyncID: d.SyncID,
		SyncMaxLen: d.SyncMaxLen, McastGroup: d.Group, McastPort: d.Port, McastTTL: d.TTL}
}

func (k *kernel) StartDaemon(d daemon) error {
	return libErr(k.c.StartDaemon(context.Background(), toLibDaemon(d)))
}
func (k *kernel) StopDaemon(d daemon) error {
	return libErr(k.c.StopDaemon(context.Background(), toLibDaemon(d)))
}

func (k *kernel) LocalAddrs(s service) ([]laddr, error) {
	ll, err := k.c.LocalAddresses(context.Background(), toLibService(s))
	if err != nil {
		return nil, libErr(err)
	}
	return fromLibLaddrs(ll), nil
}

func fromLibLaddrs(ll []ipvs.LocalAddress) []laddr {
	out := make([]laddr, len(ll))
	for i, l := range ll {
		out[i] = laddr{Addr: l.Address, PortConflicts: l.PortConflicts, Conns: l.Connections}
	}
	return out
}

func (k *kernel) AddLocalAddr(s service, a netip.Addr) error {
	return libErr(k.c.CreateLocalAddress(context.Background(), toLibService(s), ipvs.LocalAddress{Address: a}))
}

func (k *kernel) DelLocalAddr(s service, a netip.Addr) error {
	return libErr(k.c.DeleteLocalAddress(context.Background(), toLibService(s), ipvs.LocalAddress{Address: a}))
}

// Apply sends ops as one pipelined batch.
func (k *kernel) Apply(ops []kop) []error {
	var b ipvs.Batch
	for _, o := range ops {
		s, d := toLibService(o.Svc), toLibDest(o.Dest)
		switch o.Kind {
		case kopAddService:
			b.Add(ipvs.Op{Kind: ipvs.OpCreateService, Service: s})
		case kopEditService:
			var keep ipvs.ServiceKeep
			if o.KeepSyn {
				keep |= ipvs.KeepSynProxy
			}
			if o.KeepEst {
				keep |= ipvs.KeepEstablishedTimeout
			}
			if o.KeepProxy {
				keep |= ipvs.KeepProxyProtocol
			}
			b.Add(ipvs.Op{Kind: ipvs.OpUpdateService, Service: s, Keep: keep})
		case kopDelService:
			b.Add(ipvs.Op{Kind: ipvs.OpDeleteService, Service: s})
		case kopZeroService:
			b.Add(ipvs.Op{Kind: ipvs.OpZeroService, Service: s})
		case kopZeroAll:
			b.Add(ipvs.Op{Kind: ipvs.OpZeroAll})
		case kopAddDest:
			b.Add(ipvs.Op{Kind: ipvs.OpCreateDestination, Service: s, Destination: d})
		case kopEditDest:
			b.Add(ipvs.Op{Kind: ipvs.OpUpdateDestination, Service: s, Destination: d})
		case kopDelDest:
			b.Add(ipvs.Op{Kind: ipvs.OpDeleteDestination, Service: s, Destination: d})
		case kopAddLaddr:
			b.Add(ipvs.Op{Kind: ipvs.OpCreateLocalAddress, Service: s, LocalAddress: ipvs.LocalAddress{Address: o.Laddr}})
		case kopDelLaddr:
			b.Add(ipvs.Op{Kind: ipvs.OpDeleteLocalAddress, Service: s, LocalAddress: ipvs.LocalAddress{Address: o.Laddr}})
		case kopFlush:
			b.Add(ipvs.Op{Kind: ipvs.OpFlush})
		case kopSetTimeouts:
			t := o.Timeouts
			b.Add(ipvs.Op{Kind: ipvs.OpSetTimeouts, Timeouts: ipvs.Timeouts{
				TCP:    time.Duration(t.TCP) * time.Second,
				TCPFin: time.Duration(t.TCPFin) * time.Second,
				UDP:    time.Duration(t.UDP) * time.Second,
			}})
		}
	}
	errs := make([]error, len(ops))
	err := k.c.Apply(context.Background(), &b)
	if err == nil {
		return errs
	}
	var be *ipvs.BatchError
	if !errors.As(err, &be) {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	for _, f := range be.Failed {
		if f.Index >= 0 && f.Index < len(errs) {
			errs[f.Index] = libErr(f.Err)
		}
	}
	return errs
}

// ServicesWithDests lists the table with the library's table dump (or
// its parallel dumps), without the counters unless stats.
func (k *kernel) ServicesWithDests(stats bool) ([]svcDests, error) {
	var opts []ipvs.ListOption
	if !stats {
		opts = append(opts, ipvs.WithoutStats())
	}
	t, err := k.c.ServicesWithDestinations(context.Background(), opts...)
	if err != nil {
		return nil, err
	}
	tab := make([]svcDests, len(t))
	n := 0
	for i := range t {
		n += len(t[i].Destinations)
	}
	// every service's destinations in one array, each part capped
	all := make([]dest, n)
	for i := range t {
		tab[i].s = fromLibService(t[i].Service)
		n = len(t[i].Destinations)
		tab[i].d, all = all[:n:n], all[n:]
		for j := range t[i].Destinations {
			tab[i].d[j] = fromLibDest(&t[i].Destinations[j])
		}
		if len(t[i].LocalAddresses) > 0 {
			tab[i].l = fromLibLaddrs(t[i].LocalAddresses)
		}
	}
	return tab, nil
}
