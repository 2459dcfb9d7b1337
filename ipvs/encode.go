// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// family returns the service's address family, derived from Address when
// Family is unset (and INET for a fwmark service without an address).
func (s Service) family() Family {
	if s.Family != FamilyUnspec {
		return s.Family
	}
	if s.Address.IsValid() && s.Address.Unmap().Is6() {
		return INET6
	}
	return INET
}

func (d Destination) family(svc Family) Family {
	if d.Family != FamilyUnspec {
		return d.Family
	}
	if d.Address.IsValid() {
		if d.Address.Unmap().Is4() {
			return INET
		}
		return INET6
	}
	return svc
}

// checkAddr validates a for family f.
func checkAddr(f Family, a netip.Addr) error {
	if !a.IsValid() {
		return errors.New("address missing")
	}
	switch f {
	case INET:
		if !a.Unmap().Is4() {
			return fmt.Errorf("address %s is not IPv4", a)
		}
		return nil
	case INET6:
		if !a.Is6() {
			return fmt.Errorf("address %s is not IPv6", a)
		}
		return nil
	}
	return fmt.Errorf("unsupported address family %s", f)
}

// Addr appends the wire form of a for family f (4 or 16 bytes).
func (w *attrWriter) Addr(typ uint16, f Family, a netip.Addr) error {
	if err := checkAddr(f, a); err != nil {
		return err
	}
	if f == INET {
		b := a.Unmap().As4()
		copy(w.reserve(typ, 4), b[:])
	} else {
		b := a.As16()
		copy(w.reserve(typ, 16), b[:])
	}
	return nil
}

// encodeService writes the attributes of a SERVICE nest. With full, the
// settings the kernel requires for NEW/SET are included.
func encodeService(ae *attrWriter, s Service, full bool, have Features) error {
	return encodeServiceKeep(ae, s, full, have, 0)
}

// encodeServiceKeep is encodeService leaving the settings in keep out of
// the request: the flags' mask leaves out FlagSynProxy with KeepSynProxy
// (the kernel starts from the service's own flags), and
// KeepEstablishedTimeout sends no ESTABLISHED timeout and
// KeepProxyProtocol no PROXY protocol version (the kernel keeps the
// service's).
func encodeServiceKeep(ae *attrWriter, s Service, full bool, have Features, keep ServiceKeep) error {
	f := s.family()
	if f != INET && f != INET6 {
		return fmt.Errorf("unsupported address family %s", f)
	}
	ae.Uint16(svcAttrAF, uint16(f))
	if s.FWMark != 0 {
		ae.Uint32(svcAttrFWMark, s.FWMark)
	} else {
		if s.Protocol == 0 {
			return errors.New("service needs a protocol or a fwmark")
		}
		if err := checkAddr(f, s.Address); err != nil {
			return err
		}
		ae.Uint16(svcAttrProtocol, uint16(s.Protocol))
		_ = ae.Addr(svcAttrAddr, f, s.Address)
		ae.Be16(svcAttrPort, s.Port)
	}
	if !full {
		return nil
	}
	sched := s.Scheduler
	if sched == "" {
		sched = "wlc"
	}
	if len(sched) >= schedNameMax {
		return fmt.Errorf("scheduler name %q longer than %d bytes", sched, schedNameMax-1)
	}
	if len(s.PEName) >= peNameMax {
		return fmt.Errorf("persistence engine name %q longer than %d bytes", s.PEName, peNameMax-1)
	}
	ae.String(svcAttrSchedName, sched)
	if s.PEName != "" {
		ae.String(svcAttrPEName, s.PEName)
	}
	flags := ae.reserve(svcAttrFlags, 8)
	binary.NativeEndian.PutUint32(flags[0:4], uint32(s.Flags&^FlagHashed))
	fmask := uint32(math.MaxUint32)
	if keep&KeepSynProxy != 0 {
		fmask &^= uint32(FlagSynProxy)
	}
	binary.NativeEndian.PutUint32(flags[4:8], fmask)
	ae.Uint32(svcAttrTimeout, s.Timeout)
	mask := s.Netmask
	if f == INET {
		if mask == 0 {
			mask = math.MaxUint32
		}
		ae.Be32(svcAttrNetmask, mask)
	} else {
		if mask == 0 {
			mask = 128
		}
		if mask > 128 {
			return fmt.Errorf("IPv6 netmask /%d out of range 1..128", mask)
		}
		ae.Uint32(svcAttrNetmask, mask)
	}
	if have.Has(FeatureEstTimeout) && keep&KeepEstablishedTimeout == 0 {
		ae.Uint32(svcAttrEstTimeout, s.EstablishedTimeout)
	}
	if s.ProxyProtocol > ProxyProtocolV2 {
		return fmt.Errorf("PROXY protocol %s is none of off, v1 and v2", s.ProxyProtocol)
	}
	if have.Has(FeatureProxyProtocol) && keep&KeepProxyProtocol == 0 {
		ae.Uint8(svcAttrProxyProtocol, uint8(s.ProxyProtocol))
	}
	return nil
}

// encodeServiceRequest returns the attributes of a request carrying only a
// SERVICE nest.
func encodeServiceRequest(s Service, full bool, have Features) ([]byte, error) {
	var w attrWriter
	err := w.Nested(cmdAttrService, func(nw *attrWriter) error { return encodeService(nw, s, full, have) })
	return w.b, err
}

// encodeDest writes the attributes of a DEST nest.
func encodeDest(ae *attrWriter, d Destination, svcFamily Family, full bool) error {
	f := d.family(svcFamily)
	if err := ae.Addr(destAttrAddr, f, d.Address); err != nil {
		return err
	}
	ae.Be16(destAttrPort, d.Port)
	ae.Uint16(destAttrAddrFamily, uint16(f))
	if !full {
		return nil
	}
	ae.Uint32(destAttrFwdMethod, uint32(d.ForwardMethod))
	ae.Uint32(destAttrWeight, uint32(d.Weight))
	ae.Uint32(destAttrUThresh, d.UpperThreshold)
	ae.Uint32(destAttrLThresh, d.LowerThreshold)
	ae.Uint8(destAttrTunType, uint8(d.TunnelType))
	ae.Be16(destAttrTunPort, d.TunnelPort)
	ae.Uint16(destAttrTunFlags, uint16(d.TunnelFlags))
	return nil
}

// encodeLaddr writes the attributes of a LADDR nest.
func encodeLaddr(ae *attrWriter, la LocalAddress, svcFamily Family) error {
	if err := ae.Addr(laddrAttrAddr, svcFamily, la.Address); err != nil {
		return fmt.Errorf("local address: %w", err)
	}
	return nil
}

// encodeDaemon writes the attributes of a DAEMON nest.
func encodeDaemon(ae *attrWriter, d Daemon, full bool) error {
	if d.State != DaemonMaster && d.State != DaemonBackup {
		return fmt.Errorf("daemon state %s is neither master nor backup", d.State)
	}
	ae.Uint32(daemonAttrState, uint32(d.State))
	if !full {
		return nil
	}
	if d.Interface == "" || len(d.Interface) >= ifNameMax {
		return fmt.Errorf("daemon interface %q must be 1..%d bytes", d.Interface, ifNameMax-1)
	}
	ae.String(daemonAttrMcastIfn, d.Interface)
	ae.Uint32(daemonAttrSyncID, d.SyncID)
	if d.SyncMaxLen != 0 {
		ae.Uint16(daemonAttrSyncMaxLen, d.SyncMaxLen)
	}
	if d.McastGroup.IsValid() {
		g := d.McastGroup.Unmap()
		if g.Is4() {
			b := g.As4()
			ae.Bytes(daemonAttrMcastGroup, b[:])
		} else {
			b := g.As16()
			ae.Bytes(daemonAttrMcastGroup6, b[:])
		}
	}
	if d.McastPort != 0 {
		ae.Uint16(daemonAttrMcastPort, d.McastPort)
	}
	if d.McastTTL != 0 {
		ae.Uint8(daemonAttrMcastTTL, d.McastTTL)
	}
	return nil
}

// seconds converts a timeout to whole seconds, rounding up so that a
// non-zero duration never becomes 0 ("unchanged").
func seconds(d time.Duration) (uint32, error) {
	if d < 0 {
		return 0, fmt.Errorf("negative timeout %v", d)
	}
	s := (d + time.Second - 1) / time.Second
	if s > math.MaxInt32 {
		return 0, fmt.Errorf("timeout %v too large", d)
	}
	return uint32(s), nil
}

// encodeTimeouts writes the top-level timeout attributes (zero = omitted).
func encodeTimeouts(ae *attrWriter, t Timeouts) error {
	for _, x := range []struct {
		typ uint16
		d   time.Duration
	}{{cmdAttrTimeoutTCP, t.TCP}, {cmdAttrTimeoutTCPFin, t.TCPFin}, {cmdAttrTimeoutUDP, t.UDP}} {
		s, err := seconds(x.d)
		if err != nil {
			return err
		}
		if s != 0 {
			ae.Uint32(x.typ, s)
		}
	}
	return nil
}

// encodeOp encodes one change into a generic netlink payload: the
// genetlink header followed by the attributes.
func encodeOp(op *Op, have Features) (request, error) {
	var w attrWriter
	w.b = make([]byte, 4, 192)
	cmd, err := encodeOpTo(&w, op, have)
	if err != nil {
		return request{}, err
	}
	w.b[0], w.b[1] = cmd, familyVersion
	return request{cmd: cmd, msg: w.b}, nil
}

// encodeOpTo appends the attributes of op to w and returns its command.
func encodeOpTo(w *attrWriter, op *Op, have Features) (uint8, error) {
	svc := func(full bool) func(*attrWriter) error {
		return func(nw *attrWriter) error {
			if op.Kind != OpUpdateService {
				return encodeService(nw, op.Service, full, have)
			}
			return encodeServiceKeep(nw, op.Service, full, have, op.Keep)
		}
	}
	sf := op.Service.family()
	switch op.Kind {
	case OpCreateService:
		return cmdNewService, w.Nested(cmdAttrService, svc(true))
	case OpUpdateService:
		return cmdSetService, w.Nested(cmdAttrService, svc(true))
	case OpDeleteService:
		return cmdDelService, w.Nested(cmdAttrService, svc(false))
	case OpZeroService:
		return cmdZero, w.Nested(cmdAttrService, svc(false))
	case OpCreateDestination, OpUpdateDestination, OpDeleteDestination:
		cmd := uint8(cmdNewDest)
		switch op.Kind {
		case OpUpdateDestination:
			cmd = cmdSetDest
		case OpDeleteDestination:
			cmd = cmdDelDest
		}
		if err := w.Nested(cmdAttrService, svc(false)); err != nil {
			return 0, err
		}
		return cmd, w.Nested(cmdAttrDest, func(nw *attrWriter) error {
			return encodeDest(nw, op.Destination, sf, op.Kind != OpDeleteDestination)
		})
	case OpCreateLocalAddress, OpDeleteLocalAddress:
		cmd := uint8(cmdNewLaddr)
		if op.Kind == OpDeleteLocalAddress {
			cmd = cmdDelLaddr
		}
		if err := w.Nested(cmdAttrService, svc(false)); err != nil {
			return 0, err
		}
		return cmd, w.Nested(cmdAttrLaddr, func(nw *attrWriter) error {
			return encodeLaddr(nw, op.LocalAddress, sf)
		})
	case OpSetTimeouts:
		return cmdSetConfig, encodeTimeouts(w, op.Timeouts)
	case OpStartDaemon:
		return cmdNewDaemon, w.Nested(cmdAttrDaemon, func(nw *attrWriter) error { return encodeDaemon(nw, op.Daemon, true) })
	case OpStopDaemon:
		return cmdDelDaemon, w.Nested(cmdAttrDaemon, func(nw *attrWriter) error { return encodeDaemon(nw, op.Daemon, false) })
	case OpZeroAll:
		return cmdZero, nil
	case OpFlush:
		return cmdFlush, nil
	}
	return 0, fmt.Errorf("unknown operation kind %d", int(op.Kind))
}
