// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"net/netip"
	"syscall"
)

// fakeKernel is an in-memory IPVS with the kernel's error behaviour,
// for golden tests. Services are dumped in insertion order (fwmark
// services last), destinations newest first, as the kernel does.
type fakeKernel struct {
	inf      info
	svcs     []*fakeSvc
	timeouts timeouts
	daemons  []daemon
	ifaces   map[string]bool
	// batches counts Apply calls.
	batches int
}

type fakeSvc struct {
	s      service
	dests  []dest
	laddrs []laddr
}

func newFakeKernel() *fakeKernel {
	return &fakeKernel{
		inf:      info{Version: 0x010201, Size: 4096},
		timeouts: timeouts{TCP: 900, TCPFin: 120, UDP: 300},
		ifaces:   map[string]bool{"lo": true, "eth0": true},
	}
}

var fakeSchedulers = map[string]bool{"rr": true, "wrr": true, "lc": true, "wlc": true, "lblc": true,
	"lblcr": true, "dh": true, "sh": true, "sed": true, "nq": true, "fo": true, "ovf": true, "mh": true, "none": true}

func sameSvc(a, b *service) bool {
	if a.FWMark != 0 || b.FWMark != 0 {
		return a.FWMark == b.FWMark && a.AF == b.AF
	}
	return a.AF == b.AF && a.Protocol == b.Protocol && a.Port == b.Port && canonAddr(a.AF, a.Addr) == canonAddr(b.AF, b.Addr)
}

// canonAddr is the address the kernel would store for family af.
func canonAddr(af uint16, a netip.Addr) netip.Addr {
	if af == afInet && a.Is6() {
		b := a.As16()
		return netip.AddrFrom4([4]byte{b[0], b[1], b[2], b[3]})
	}
	return a
}

func (k *fakeKernel) find(key service) *fakeSvc {
	for _, s := range k.svcs {
		if sameSvc(&s.s, &key) {
			return s
		}
	}
	return nil
}

// reported is the service as a dump reports it.
func reported(s service) service {
	if s.FWMark != 0 {
		s.Protocol = 0
		s.Addr = netip.Addr{}
		s.Port = 0
	}
	if s.AF == afInet && s.Addr.Is6() {
		b := s.Addr.As16()
		s.Addr = netip.AddrFrom4([4]byte{b[0], b[1], b[2], b[3]})
	}
	s.Flags |= svcHashed
	return s
}

func (k *fakeKernel) Close() error        { return nil }
func (k *fakeKernel) Info() (info, error) { return k.inf, nil }
func (k *fakeKernel) Flush() error        { k.svcs = nil; return nil }
func (k *fakeKernel) ZeroAll() error {
	for _, s := range k.svcs {
		s.s.Stats = stats{}
		for i := range s.dests {
			s.dests[i].Stats = stats{}
		}
	}
	return nil
}

func (k *fakeKernel) Services() ([]service, error) {
	var out []service
	for pass := 0; pass < 2; pass++ {
		for _, s := range k.svcs {
			if (s.s.FWMark != 0) == (pass == 1) {
				out = append(out, reported(s.s))
			}
		}
	}
	return out, nil
}

func (k *fakeKernel) Service(key service) (service, error) {
	s := k.find(key)
	if s == nil {
		return service{}, fmt.Errorf("get service: %w", syscall.ESRCH)
	}
	return reported(s.s), nil
}

func (k *fakeKernel) Dests(key service) ([]dest, error) {
	s := k.find(key)
	if s == nil {
		return nil, nil
	}
	return append([]dest(nil), s.dests...), nil
}

func (k *fakeKernel) checkService(svc *service) error {
	if !fakeSchedulers[svc.Sched] {
		return syscall.ENOENT
	}
	if svc.PE != "" && svc.PE != "sip" {
		return syscall.ENOENT
	}
	if svc.AF == afInet6 && (svc.Netmask < 1 || svc.Netmask > 128) {
		return syscall.EINVAL
	}
	if svc.Flags&svcSynProxy != 0 && k.inf.Features&featSynProxy == 0 {
		return errNotSupported
	}
	if svc.EstTimeout != 0 && k.inf.Features&featEstTimeout == 0 {
		return errNotSupported
	}
	if svc.ProxyProto != proxyProtoOff && k.inf.Features&featProxyProto == 0 {
		return errNotSupported
	}
	// our module's PROXY protocol check: TCP (or fwmark) services only
	if svc.ProxyProto != proxyProtoOff && svc.FWMark == 0 && svc.Protocol != protoTCP {
		return syscall.EOPNOTSUPP
	}
	return nil
}

func (k *fakeKernel) AddService(svc service) error {
	if err := k.checkService(&svc); err != nil {
		return fmt.Errorf("add service: %w", err)
	}
	if k.find(svc) != nil {
		return fmt.Errorf("add service: %w", syscall.EEXIST)
	}
	if svc.Flags&svcPersistent == 0 {
		svc.Timeout = 0
	}
	svc.Stats = stats{}
	k.svcs = append(k.svcs, &fakeSvc{s: svc})
	return nil
}

func (k *fakeKernel) EditService(svc service) error {
	if err := k.checkService(&svc); err != nil {
		return fmt.Errorf("edit service: %w", err)
	}
	s := k.find(svc)
	if s == nil {
		return fmt.Errorf("edit service: %w", syscall.ESRCH)
	}
	if svc.ProxyProto != proxyProtoOff {
		for _, d := range s.dests {
			if d.FwdMethod&fwdMask != fwdFullNAT {
				return fmt.Errorf("edit service: %w", syscall.EOPNOTSUPP)
			}
		}
	}
	if svc.Flags&svcPersistent == 0 {
		svc.Timeout = 0
	}
	svc.Stats = s.s.Stats
	svc.Protocol, svc.Addr, svc.Port = s.s.Protocol, s.s.Addr, s.s.Port
	s.s = svc
	return nil
}

func (k *fakeKernel) DelService(svc service) error {
	for i, s := range k.svcs {
		if sameSvc(&s.s, &svc) {
			k.svcs = append(k.svcs[:i], k.svcs[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("del service: %w", syscall.ESRCH)
}

func (k *fakeKernel) ZeroService(svc service) error {
	s := k.find(svc)
	if s == nil {
		return fmt.Errorf("zero: %w", syscall.ESRCH)
	}
	s.s.Stats = stats{}
	for i := range s.dests {
		s.dests[i].Stats = stats{}
	}
	return nil
}

func sameDest(a, b *dest) bool {
	return a.AF == b.AF && a.Port == b.Port && canonAddr(a.AF, a.Addr) == canonAddr(b.AF, b.Addr)
}

func (k *fakeKernel) checkDest(svc *service, d *dest) error {
	if d.FwdMethod&fwdMask == fwdFullNAT && k.inf.Features&featFullNAT == 0 {
		return errNotSupported
	}
	if svc.ProxyProto != proxyProtoOff && d.FwdMethod&fwdMask != fwdFullNAT {
		return syscall.EOPNOTSUPP
	}
	if d.Weight < 0 {
		return syscall.ERANGE
	}
	if d.LThresh > d.UThresh {
		return syscall.ERANGE
	}
	return nil
}

// checkDestAddr is ip_vs_new_dest's address check.
func checkDestAddr(d *dest) error {
	a := netip.MustParseAddr(addrString(d.AF, d.Addr))
	if a.IsMulticast() || a.IsUnspecified() || (a.Is4() && a.As4()[0] == 0) || a == netip.MustParseAddr("255.255.255.255") {
		return syscall.EINVAL
	}
	return nil
}

func (k *fakeKernel) AddDest(svc service, d dest) error {
	s := k.find(svc)
	if s == nil {
		return fmt.Errorf("add dest: %w", syscall.ESRCH)
	}
	if err := k.checkDest(&s.s, &d); err != nil {
		return fmt.Errorf("add dest: %w", err)
	}
	for i := range s.dests {
		if sameDest(&s.dests[i], &d) {
			return fmt.Errorf("add dest: %w", syscall.EEXIST)
		}
	}
	if err := checkDestAddr(&d); err != nil {
		return fmt.Errorf("add dest: %w", err)
	}
	if d.AF == afInet && d.Addr.Is6() {
		d.Addr = netip.MustParseAddr(addrString(d.AF, d.Addr))
	}
	d.Stats = stats{}
	s.dests = append([]dest{d}, s.dests...)
	return nil
}

func (k *fakeKernel) EditDest(svc service, d dest) error {
	s := k.find(svc)
	if s == nil {
		return fmt.Errorf("edit dest: %w", syscall.ESRCH)
	}
	if err := k.checkDest(&s.s, &d); err != nil {
		return fmt.Errorf("edit dest: %w", err)
	}
	for i := range s.dests {
		if sameDest(&s.dests[i], &d) {
			d.Addr = s.dests[i].Addr
			d.Stats = s.dests[i].Stats
			d.Active, d.Inactive, d.Persist = s.dests[i].Active, s.dests[i].Inactive, s.dests[i].Persist
			s.dests[i] = d
			return nil
		}
	}
	return fmt.Errorf("edit dest: %w", syscall.ENOENT)
}

func (k *fakeKernel) DelDest(svc service, d dest) error {
	s := k.find(svc)
	if s == nil {
		return fmt.Errorf("del dest: %w", syscall.ESRCH)
	}
	for i := range s.dests {
		if sameDest(&s.dests[i], &d) {
			s.dests = append(s.dests[:i], s.dests[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("del dest: %w", syscall.ENOENT)
}

func (k *fakeKernel) Timeouts() (timeouts, error) { return k.timeouts, nil }

func (k *fakeKernel) SetTimeouts(t timeouts) error {
	if t.TCP != 0 {
		k.timeouts.TCP = t.TCP
	}
	if t.TCPFin != 0 {
		k.timeouts.TCPFin = t.TCPFin
	}
	if t.UDP != 0 {
		k.timeouts.UDP = t.UDP
	}
	return nil
}

func (k *fakeKernel) Daemons() ([]daemon, error) {
	var out []daemon
	for _, st := range []uint32{stateMaster, stateBackup} {
		for _, d := range k.daemons {
			if d.State == st {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

func (k *fakeKernel) StartDaemon(d daemon) error {
	for _, x := range k.daemons {
		if x.State == d.State {
			return fmt.Errorf("start daemon: %w", syscall.EEXIST)
		}
	}
	if !k.ifaces[d.Ifname] {
		return fmt.Errorf("start daemon: %w", syscall.ENODEV)
	}
	if d.SyncMaxLen == 0 {
		d.SyncMaxLen = 1472
	}
	if !d.Group.IsValid() {
		d.Group = netip.MustParseAddr("224.0.0.81")
	}
	if d.Port == 0 {
		d.Port = 8848
	}
	if d.TTL == 0 {
		d.TTL = 1
	}
	k.daemons = append(k.daemons, d)
	return nil
}

func (k *fakeKernel) StopDaemon(d daemon) error {
	for i, x := range k.daemons {
		if x.State == d.State {
			k.daemons = append(k.daemons[:i], k.daemons[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("stop daemon: %w", syscall.ESRCH)
}

func (k *fakeKernel) LocalAddrs(svc service) ([]laddr, error) {
	if k.inf.Features&featFullNAT == 0 {
		return nil, errNotSupported
	}
	s := k.find(svc)
	if s == nil {
		return nil, fmt.Errorf("get laddrs: %w", syscall.ESRCH)
	}
	return append([]laddr(nil), s.laddrs...), nil
}

func (k *fakeKernel) AddLocalAddr(svc service, a netip.Addr) error {
	if k.inf.Features&featFullNAT == 0 {
		return errNotSupported
	}
	s := k.find(svc)
	if s == nil {
		return fmt.Errorf("add laddr: %w", syscall.ESRCH)
	}
	if a.Is4() != (s.s.AF == afInet) {
		return fmt.Errorf("add laddr: %w", syscall.EAFNOSUPPORT)
	}
	for _, l := range s.laddrs {
		if l.Addr == a {
			return fmt.Errorf("add laddr: %w", syscall.EEXIST)
		}
	}
	s.laddrs = append(s.laddrs, laddr{Addr: a})
	return nil
}

func (k *fakeKernel) DelLocalAddr(svc service, a netip.Addr) error {
	if k.inf.Features&featFullNAT == 0 {
		return errNotSupported
	}
	s := k.find(svc)
	if s == nil {
		return fmt.Errorf("del laddr: %w", syscall.ESRCH)
	}
	for i, l := range s.laddrs {
		if l.Addr == a {
			s.laddrs = append(s.laddrs[:i], s.laddrs[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("del laddr: %w", syscall.ENOENT)
}

// Apply runs ops one by one, as the kernel applies a batch.
func (k *fakeKernel) Apply(ops []kop) []error {
	k.batches++
	errs := make([]error, len(ops))
	for i, o := range ops {
		switch o.Kind {
		case kopAddService:
			errs[i] = k.AddService(o.Svc)
		case kopEditService:
			// the kernel starts an edit from the service's own flags,
			// ESTABLISHED timeout and PROXY protocol version
			svc := o.Svc
			if cur := k.find(svc); cur != nil {
				if o.KeepSyn {
					svc.Flags = svc.Flags&^svcSynProxy | cur.s.Flags&svcSynProxy
				}
				if o.KeepEst {
					svc.EstTimeout = cur.s.EstTimeout
				}
				if o.KeepProxy {
					svc.ProxyProto = cur.s.ProxyProto
				}
			}
			errs[i] = k.EditService(svc)
		case kopDelService:
			errs[i] = k.DelService(o.Svc)
		case kopZeroService:
			errs[i] = k.ZeroService(o.Svc)
		case kopZeroAll:
			errs[i] = k.ZeroAll()
		case kopAddDest:
			errs[i] = k.AddDest(o.Svc, o.Dest)
		case kopEditDest:
			errs[i] = k.EditDest(o.Svc, o.Dest)
		case kopDelDest:
			errs[i] = k.DelDest(o.Svc, o.Dest)
		case kopAddLaddr:
			errs[i] = k.AddLocalAddr(o.Svc, o.Laddr)
		case kopDelLaddr:
			errs[i] = k.DelLocalAddr(o.Svc, o.Laddr)
		case kopFlush:
			errs[i] = k.Flush()
		case kopSetTimeouts:
			errs[i] = k.SetTimeouts(o.Timeouts)
		}
	}
	return errs
}

// ServicesWithDests lists the table in one call, like the library does,
// and leaves out the counters without withStats, as our kernel module does.
func (k *fakeKernel) ServicesWithDests(withStats bool) ([]svcDests, error) {
	svcs, _ := k.Services()
	tab := make([]svcDests, len(svcs))
	for i := range svcs {
		tab[i].s = svcs[i]
		tab[i].d, _ = k.Dests(svcs[i])
		if !withStats {
			tab[i].s.Stats = stats{}
			for j := range tab[i].d {
				tab[i].d[j].Stats = stats{}
			}
		}
		if k.inf.Features&featTableLaddrs != 0 {
			tab[i].l, _ = k.LocalAddrs(svcs[i])
		}
	}
	return tab, nil
}
