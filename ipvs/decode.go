// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// uintN reads an unsigned integer attribute of 1, 2, 4 or 8 bytes (native
// byte order), tolerating the width differences between kernels.
func uintN(b []byte) (uint64, error) {
	switch len(b) {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.NativeEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.NativeEndian.Uint32(b)), nil
	case 8:
		return binary.NativeEndian.Uint64(b), nil
	}
	return 0, fmt.Errorf("integer attribute of %d bytes", len(b))
}

func u32(b []byte) (uint32, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("u32 attribute of %d bytes", len(b))
	}
	return binary.NativeEndian.Uint32(b), nil
}

func u8(b []byte) (uint8, error) {
	if len(b) != 1 {
		return 0, fmt.Errorf("u8 attribute of %d bytes", len(b))
	}
	return b[0], nil
}

func u16(b []byte) (uint16, error) {
	if len(b) != 2 {
		return 0, fmt.Errorf("u16 attribute of %d bytes", len(b))
	}
	return binary.NativeEndian.Uint16(b), nil
}

func ube16(b []byte) (uint16, error) {
	if len(b) != 2 {
		return 0, fmt.Errorf("be16 attribute of %d bytes", len(b))
	}
	return binary.BigEndian.Uint16(b), nil
}

// cstring reads a NUL-terminated string attribute.
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// decodeAddr reads an address of family f from a 4- or 16-byte attribute
// (the kernel always sends the 16-byte union).
func decodeAddr(f Family, b []byte) (netip.Addr, error) {
	switch {
	case f == INET && len(b) >= 4:
		return netip.AddrFrom4([4]byte(b[:4])), nil
	case f == INET6 && len(b) == 16:
		return netip.AddrFrom16([16]byte(b)), nil
	case f == FamilyUnspec && len(b) == 4:
		return netip.AddrFrom4([4]byte(b)), nil
	}
	return netip.Addr{}, fmt.Errorf("address of %d bytes for family %s", len(b), f)
}

// attrIter walks netlink attributes without allocating (the decoders run
// once per listed object, thousands of times per dump of a large table).
// Type() masks NLA_F_NESTED and NLA_F_NET_BYTEORDER: kernel replies build
// nests without the flag, requests with it.
type attrIter struct {
	rest []byte
	typ  uint16
	data []byte
	err  error
}

func newAttrIter(b []byte) *attrIter { return &attrIter{rest: b} }

// Next advances to the next attribute; false at the end or on malformed
// input (then Err is set).
func (it *attrIter) Next() bool {
	if len(it.rest) == 0 || it.err != nil {
		return false
	}
	if len(it.rest) < nlaHdrLen {
		it.err = fmt.Errorf("%d trailing bytes after attributes", len(it.rest))
		return false
	}
	l := int(binary.NativeEndian.Uint16(it.rest[0:2]))
	if l < nlaHdrLen || l > len(it.rest) {
		it.err = fmt.Errorf("attribute length %d out of range (%d bytes left)", l, len(it.rest))
		return false
	}
	it.typ = binary.NativeEndian.Uint16(it.rest[2:4]) & nlaTypeMask
	it.data = it.rest[nlaHdrLen:l]
	it.rest = it.rest[min(nlaAlign(l), len(it.rest)):]
	return true
}

// Type is the current attribute's type.
func (it *attrIter) Type() uint16 { return it.typ }

// Bytes is the current attribute's payload (aliasing the input).
func (it *attrIter) Bytes() []byte { return it.data }

// Err reports malformed input.
func (it *attrIter) Err() error { return it.err }

// nlaTypeMask strips NLA_F_NESTED and NLA_F_NET_BYTEORDER.
const nlaTypeMask = 0x3fff

// decodeStats decodes a STATS or STATS64 nest.
func decodeStats(b []byte) (Stats, error) {
	var s Stats
	ad := newAttrIter(b)
	for ad.Next() {
		var p *uint64
		switch ad.Type() {
		case statsAttrConns:
			p = &s.Connections
		case statsAttrInPkts:
			p = &s.PacketsIn
		case statsAttrOutPkts:
			p = &s.PacketsOut
		case statsAttrInBytes:
			p = &s.BytesIn
		case statsAttrOutBytes:
			p = &s.BytesOut
		case statsAttrCPS:
			p = &s.CPS
		case statsAttrInPPS:
			p = &s.PPSIn
		case statsAttrOutPPS:
			p = &s.PPSOut
		case statsAttrInBPS:
			p = &s.BPSIn
		case statsAttrOutBPS:
			p = &s.BPSOut
		default: // PAD and future attributes
			continue
		}
		v, err := uintN(ad.Bytes())
		if err != nil {
			return s, fmt.Errorf("stats attribute %d: %w", ad.Type(), err)
		}
		*p = v
	}
	return s, ad.Err()
}

// decodeService decodes the attributes of a SERVICE nest.
func decodeService(b []byte) (Service, error) {
	var s Service
	ad := newAttrIter(b)
	var addr, netmask []byte
	for ad.Next() {
		var err error
		v := ad.Bytes()
		switch ad.Type() {
		case svcAttrAF:
			var f uint16
			f, err = u16(v)
			s.Family = Family(f)
		case svcAttrProtocol:
			var p uint16
			p, err = u16(v)
			s.Protocol = Protocol(p)
		case svcAttrAddr:
			addr = v
		case svcAttrPort:
			s.Port, err = ube16(v)
		case svcAttrFWMark:
			s.FWMark, err = u32(v)
		case svcAttrSchedName:
			s.Scheduler = cstring(v)
		case svcAttrFlags:
			if len(v) < 4 {
				err = fmt.Errorf("flags of %d bytes", len(v))
			} else {
				s.Flags = ServiceFlags(binary.NativeEndian.Uint32(v[:4]))
			}
		case svcAttrTimeout:
			s.Timeout, err = u32(v)
		case svcAttrNetmask:
			if len(v) != 4 {
				err = fmt.Errorf("netmask of %d bytes", len(v))
			}
			netmask = v
		case svcAttrStats:
			s.Stats, err = decodeStats(v)
		case svcAttrPEName:
			s.PEName = cstring(v)
		case svcAttrStats64:
			s.Stats64, err = decodeStats(v)
		case svcAttrEstTimeout:
			s.EstablishedTimeout, err = u32(v)
		case svcAttrProxyProtocol:
			var p uint8
			p, err = u8(v)
			s.ProxyProtocol = ProxyProtocol(p)
		}
		if err != nil {
			return s, fmt.Errorf("service attribute %d: %w", ad.Type(), err)
		}
	}
	if err := ad.Err(); err != nil {
		return s, err
	}
	if s.Family != INET && s.Family != INET6 {
		return s, fmt.Errorf("service of unknown address family %d", s.Family)
	}
	if addr != nil {
		a, err := decodeAddr(s.Family, addr)
		if err != nil {
			return s, fmt.Errorf("service address: %w", err)
		}
		if s.FWMark == 0 {
			s.Address = a
		}
	}
	if netmask != nil {
		if s.Family == INET {
			s.Netmask = binary.BigEndian.Uint32(netmask)
		} else {
			s.Netmask = binary.NativeEndian.Uint32(netmask)
		}
	}
	return s, nil
}

// decodeDest decodes the attributes of a DEST nest; svcFamily is used when
// the reply carries no ADDR_FAMILY (kernels before 3.18).
func decodeDest(b []byte, svcFamily Family) (Destination, error) {
	var d Destination
	ad := newAttrIter(b)
	var addr []byte
	for ad.Next() {
		var err error
		v := ad.Bytes()
		switch ad.Type() {
		case destAttrAddr:
			addr = v
		case destAttrPort:
			d.Port, err = ube16(v)
		case destAttrFwdMethod:
			var m uint32
			m, err = u32(v)
			d.ForwardMethod = ForwardMethod(m & 0x7)
		case destAttrWeight:
			var w uint32
			w, err = u32(v)
			d.Weight = int32(w)
		case destAttrUThresh:
			d.UpperThreshold, err = u32(v)
		case destAttrLThresh:
			d.LowerThreshold, err = u32(v)
		case destAttrActiveConns:
			d.ActiveConns, err = u32(v)
		case destAttrInactConns:
			d.InactiveConns, err = u32(v)
		case destAttrPersistConns:
			d.PersistConns, err = u32(v)
		case destAttrStats:
			d.Stats, err = decodeStats(v)
		case destAttrAddrFamily:
			var f uint16
			f, err = u16(v)
			d.Family = Family(f)
		case destAttrStats64:
			d.Stats64, err = decodeStats(v)
		case destAttrTunType:
			var tt uint8
			tt, err = u8(v)
			d.TunnelType = TunnelType(tt)
		case destAttrTunPort:
			d.TunnelPort, err = ube16(v)
		case destAttrTunFlags:
			var f uint16
			f, err = u16(v)
			d.TunnelFlags = TunnelFlags(f)
		}
		if err != nil {
			return d, fmt.Errorf("destination attribute %d: %w", ad.Type(), err)
		}
	}
	if err := ad.Err(); err != nil {
		return d, err
	}
	if d.Family == FamilyUnspec {
		d.Family = svcFamily
	}
	if addr == nil {
		return d, fmt.Errorf("destination without address")
	}
	a, err := decodeAddr(d.Family, addr)
	if err != nil {
		return d, fmt.Errorf("destination address: %w", err)
	}
	d.Address = a
	return d, nil
}

// decodeLaddr decodes the attributes of a LADDR nest (extension).
func decodeLaddr(b []byte, svcFamily Family) (LocalAddress, error) {
	var la LocalAddress
	ad := newAttrIter(b)
	var addr []byte
	for ad.Next() {
		var err error
		v := ad.Bytes()
		switch ad.Type() {
		case laddrAttrAddr:
			addr = v
		case laddrAttrPortConflict:
			la.PortConflicts, err = uintN(v)
		case laddrAttrConnCounts:
			la.Connections, err = u32(v)
		}
		if err != nil {
			return la, fmt.Errorf("local address attribute %d: %w", ad.Type(), err)
		}
	}
	if err := ad.Err(); err != nil {
		return la, err
	}
	f := svcFamily
	switch len(addr) {
	case 4:
		f = INET
	case 0:
		return la, fmt.Errorf("local address without address")
	}
	a, err := decodeAddr(f, addr)
	if err != nil {
		return la, fmt.Errorf("local address: %w", err)
	}
	la.Address = a
	return la, nil
}

// decodeDaemon decodes the attributes of a DAEMON nest.
func decodeDaemon(b []byte) (Daemon, error) {
	var d Daemon
	ad := newAttrIter(b)
	for ad.Next() {
		var err error
		v := ad.Bytes()
		switch ad.Type() {
		case daemonAttrState:
			var s uint32
			s, err = u32(v)
			d.State = DaemonState(s)
		case daemonAttrMcastIfn:
			d.Interface = cstring(v)
		case daemonAttrSyncID:
			d.SyncID, err = u32(v)
		case daemonAttrSyncMaxLen:
			d.SyncMaxLen, err = u16(v)
		case daemonAttrMcastGroup:
			if len(v) != 4 {
				err = fmt.Errorf("IPv4 group of %d bytes", len(v))
			} else {
				d.McastGroup = netip.AddrFrom4([4]byte(v))
			}
		case daemonAttrMcastGroup6:
			if len(v) != 16 {
				err = fmt.Errorf("IPv6 group of %d bytes", len(v))
			} else {
				d.McastGroup = netip.AddrFrom16([16]byte(v))
			}
		case daemonAttrMcastPort:
			d.McastPort, err = u16(v)
		case daemonAttrMcastTTL:
			if len(v) != 1 {
				err = fmt.Errorf("u8 attribute of %d bytes", len(v))
			} else {
				d.McastTTL = v[0]
			}
		}
		if err != nil {
			return d, fmt.Errorf("daemon attribute %d: %w", ad.Type(), err)
		}
	}
	return d, ad.Err()
}

// decodeInfo decodes a GET_INFO reply's attributes.
func decodeInfo(b []byte) (Info, error) {
	var info Info
	ad := newAttrIter(b)
	for ad.Next() {
		var err error
		var v uint32
		switch ad.Type() {
		case infoAttrVersion:
			v, err = u32(ad.Bytes())
			info.Version = Version{Major: uint8(v >> 16), Minor: uint8(v >> 8), Patch: uint8(v)}
		case infoAttrConnTabSize:
			info.ConnTableSize, err = u32(ad.Bytes())
		case infoAttrFeatures:
			v, err = u32(ad.Bytes())
			info.Features = Features(v)
		}
		if err != nil {
			return info, fmt.Errorf("info attribute %d: %w", ad.Type(), err)
		}
	}
	return info, ad.Err()
}

// decodeTimeouts decodes a GET_CONFIG reply's attributes.
func decodeTimeouts(b []byte) (Timeouts, error) {
	var t Timeouts
	ad := newAttrIter(b)
	for ad.Next() {
		var p *time.Duration
		switch ad.Type() {
		case cmdAttrTimeoutTCP:
			p = &t.TCP
		case cmdAttrTimeoutTCPFin:
			p = &t.TCPFin
		case cmdAttrTimeoutUDP:
			p = &t.UDP
		default:
			continue
		}
		v, err := u32(ad.Bytes())
		if err != nil {
			return t, fmt.Errorf("timeout attribute %d: %w", ad.Type(), err)
		}
		*p = time.Duration(v) * time.Second
	}
	return t, ad.Err()
}

// nestOf returns the payload of the top-level attribute typ, if present.
func nestOf(b []byte, typ uint16) ([]byte, bool, error) {
	ad := newAttrIter(b)
	var out []byte
	found := false
	for ad.Next() {
		if ad.Type() == typ && !found {
			out, found = ad.Bytes(), true
		}
	}
	return out, found, ad.Err()
}

// decodeServiceMsg decodes a service reply; ok is false if it has none.
func decodeServiceMsg(b []byte) (Service, bool, error) {
	n, ok, err := nestOf(b, cmdAttrService)
	if err != nil || !ok {
		return Service{}, false, err
	}
	s, err := decodeService(n)
	return s, err == nil, err
}

// decodeDestMsg decodes a destination reply.
func decodeDestMsg(b []byte, svcFamily Family) (Destination, bool, error) {
	n, ok, err := nestOf(b, cmdAttrDest)
	if err != nil || !ok {
		return Destination{}, false, err
	}
	d, err := decodeDest(n, svcFamily)
	return d, err == nil, err
}

// decodeLaddrMsg decodes a local-address reply.
func decodeLaddrMsg(b []byte, svcFamily Family) (LocalAddress, bool, error) {
	n, ok, err := nestOf(b, cmdAttrLaddr)
	if err != nil || !ok {
		return LocalAddress{}, false, err
	}
	la, err := decodeLaddr(n, svcFamily)
	return la, err == nil, err
}

// decodeDaemonMsg decodes a daemon reply.
func decodeDaemonMsg(b []byte) (Daemon, bool, error) {
	n, ok, err := nestOf(b, cmdAttrDaemon)
	if err != nil || !ok {
		return Daemon{}, false, err
	}
	d, err := decodeDaemon(n)
	return d, err == nil, err
}
