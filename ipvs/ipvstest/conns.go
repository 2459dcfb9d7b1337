// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvstest

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/fullnat/fullnat/ipvs"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// IPVS_CMD_GET_CONN and its attributes (the extension's wire protocol).
const (
	cmdGetConn = 22
	attrConn   = 8

	connAF       = 1
	connProtocol = 2
	connCAddr    = 3
	connCPort    = 4
	connVAddr    = 5
	connVPort    = 6
	connDAddr    = 7
	connDPort    = 8
	connDAF      = 9
	connFlags    = 10
	connState    = 11
	connExpires  = 12
	connTimeout  = 13
	connFWMark   = 14
	connLAddr    = 15
	connLPort    = 16
	connSynProxy = 17
	connPEName   = 18
	connPEData   = 19
)

// AddConnection puts c in the connection table, as if traffic had created
// it: IPVS_CMD_GET_CONN lists it (with the extension's FeatureConnDump),
// among the connections of the service whose firewall mark is c.FWMark or,
// without a mark, whose address, port and protocol are c.Virtual's and
// c.Protocol ("TCP", "UDP", "SCTP"). Client, Virtual and Destination must
// be valid; Family defaults to Virtual's.
func (k *Kernel) AddConnection(c ipvs.Connection) error {
	if !c.Client.IsValid() || !c.Virtual.IsValid() || !c.Destination.IsValid() {
		return fmt.Errorf("ipvstest: connection %v -> %v -> %v lacks an address", c.Client, c.Virtual, c.Destination)
	}
	if _, ok := protocols[c.Protocol]; !ok {
		return fmt.Errorf("ipvstest: connection protocol %q is none of TCP, UDP, SCTP, IP", c.Protocol)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.conns = append(k.conns, c)
	return nil
}

var protocols = map[string]uint16{"IP": 0, "TCP": unix.IPPROTO_TCP, "UDP": unix.IPPROTO_UDP, "SCTP": unix.IPPROTO_SCTP}

func addrFamily(a netip.Addr) uint16 {
	if a.Unmap().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func addr16(a netip.Addr) []byte {
	if a.Unmap().Is4() {
		return pad16(a.Unmap().AsSlice())
	}
	return a.AsSlice()
}

func be16(p uint16) []byte { return binary.BigEndian.AppendUint16(nil, p) }

// connKey is the key (serviceKey's form) of the service c belongs to.
func connKey(c ipvs.Connection, af uint16) string {
	if c.FWMark != 0 {
		return fmt.Sprintf("%d/fwm/%d", af, c.FWMark)
	}
	return fmt.Sprintf("%d/%d/%x/%x", af, protocols[c.Protocol], addr16(c.Virtual.Addr()), be16(c.Virtual.Port()))
}

// getConns answers IPVS_CMD_GET_CONN (k.mu held): every connection, or
// those of the service in attrs.
func (k *Kernel) getConns(attrs map[uint16][]byte) ([][]byte, unix.Errno) {
	if !k.features.Has(ipvs.FeatureConnDump) {
		return nil, unix.EOPNOTSUPP
	}
	want := ""
	if sa, ok := attrs[attrService]; ok {
		_, key, _, errno := requestService(sa)
		if errno != 0 {
			return nil, errno
		}
		found := false
		for _, s := range k.services {
			found = found || s.key == key
		}
		if !found {
			return nil, unix.ESRCH
		}
		want = key
	}
	var out [][]byte
	for _, c := range k.conns {
		af := uint16(c.Family)
		if af == 0 {
			af = addrFamily(c.Virtual.Addr())
		}
		if want != "" && connKey(c, af) != want {
			continue
		}
		in := netlink.NewAttributeEncoder()
		in.Uint16(connAF, af)
		in.Uint16(connProtocol, protocols[c.Protocol])
		in.Bytes(connCAddr, addr16(c.Client.Addr()))
		in.Bytes(connCPort, be16(c.Client.Port()))
		in.Bytes(connVAddr, addr16(c.Virtual.Addr()))
		in.Bytes(connVPort, be16(c.Virtual.Port()))
		in.Bytes(connDAddr, addr16(c.Destination.Addr()))
		in.Bytes(connDPort, be16(c.Destination.Port()))
		in.Uint16(connDAF, addrFamily(c.Destination.Addr()))
		in.Uint32(connFlags, uint32(c.Flags))
		in.String(connState, c.State)
		in.Uint32(connExpires, uint32(c.Expires.Milliseconds()))
		in.Uint32(connTimeout, uint32(c.Timeout.Milliseconds()))
		in.Uint32(connFWMark, c.FWMark)
		if c.Local.IsValid() {
			in.Bytes(connLAddr, addr16(c.Local.Addr()))
			in.Bytes(connLPort, be16(c.Local.Port()))
		}
		if c.Flags&ipvs.ConnSynProxy != 0 {
			v := uint32(0)
			if c.SynProxyAnswered {
				v = 1
			}
			in.Uint32(connSynProxy, v)
		}
		if c.PEName != "" {
			in.String(connPEName, c.PEName)
			if c.PEData != "" {
				in.Bytes(connPEData, []byte(c.PEData))
			}
		}
		nb, _ := in.Encode()
		ae := netlink.NewAttributeEncoder()
		ae.Bytes(attrConn|unix.NLA_F_NESTED, nb) // nla_nest_start, as our module
		out = append(out, genl(cmdGetConn, ae))
	}
	return out, 0
}
