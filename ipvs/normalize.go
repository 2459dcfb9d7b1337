// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"math"
	"net/netip"
)

// Desired and observed state. A Service or Destination written by a
// control plane leaves fields to their defaults (no Family, no scheduler,
// no netmask); the same one read back from the kernel has them filled in,
// carries the kernel's FlagHashed and counts traffic. Normalized brings
// either to the one form, and Equal compares two in it, so that a
// reconciler needs to know none of the kernel's defaults:
//
//	if !want.Equal(got) {
//		err = c.UpdateService(ctx, want)
//	}

// Normalized returns s as the kernel reports it back, without what the
// kernel counts: Family taken from Address as CreateService takes it (INET
// for a fwmark service without one), an IPv4 Address unmapped and without
// zone, Protocol, Address and Port zero on a fwmark service, Scheduler
// "wlc" when empty, Netmask the full mask when zero, FlagHashed cleared,
// Stats and Stats64 zero. Services that configure the same thing have equal
// Normalized values (comparable with ==).
func (s Service) Normalized() Service {
	s.Family = s.family()
	if s.FWMark != 0 {
		s.Protocol, s.Address, s.Port = 0, netip.Addr{}, 0
	} else {
		s.Address = normAddr(s.Family, s.Address)
	}
	if s.Scheduler == "" {
		s.Scheduler = "wlc"
	}
	if s.Netmask == 0 {
		if s.Family == INET6 {
			s.Netmask = 128
		} else {
			s.Netmask = math.MaxUint32
		}
	}
	s.Flags &^= FlagHashed
	s.Stats, s.Stats64 = Stats{}, Stats{}
	return s
}

// Equal reports whether s and o configure the same service: whether their
// Normalized values are equal. Counters and FlagHashed do not count.
func (s Service) Equal(o Service) bool {
	return s.Normalized() == o.Normalized()
}

// SameKey reports whether s and o name the same virtual service (family
// and fwmark, or family, protocol, address and port), whatever their
// settings: what a reconciler matches desired and observed services by.
func (s Service) SameKey(o Service) bool {
	f := s.family()
	if f != o.family() || s.FWMark != o.FWMark {
		return false
	}
	return s.FWMark != 0 || (s.Protocol == o.Protocol && s.Port == o.Port &&
		normAddr(f, s.Address) == normAddr(f, o.Address))
}

// Normalized returns d as the kernel reports it back, without what the
// kernel counts: Family taken from Address as CreateDestination takes it,
// an IPv4 Address unmapped and without zone, ActiveConns, InactiveConns,
// PersistConns, Stats and Stats64 zero.
func (d Destination) Normalized() Destination {
	d.Family = d.family(FamilyUnspec)
	d.Address = normAddr(d.Family, d.Address)
	d.ActiveConns, d.InactiveConns, d.PersistConns = 0, 0, 0
	d.Stats, d.Stats64 = Stats{}, Stats{}
	return d
}

// Equal reports whether d and o configure the same real server: whether
// their Normalized values are equal. Connection counts and traffic
// counters do not count.
func (d Destination) Equal(o Destination) bool {
	return d.Normalized() == o.Normalized()
}

// normAddr is a as the kernel returns it for family f: 4 bytes for INET,
// 16 for INET6, no zone.
func normAddr(f Family, a netip.Addr) netip.Addr {
	if !a.IsValid() {
		return a
	}
	a = a.WithZone("")
	if f == INET {
		return a.Unmap()
	}
	return a
}
