// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package fullnat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"testing"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Numbers of the IPVS generic netlink family (upstream) and of our extension (wire-protocol.md).
const (
	cmdNewService = 1
	cmdNewDest    = 5
	cmdGetInfo    = 15
	cmdNewLaddr   = 18
	cmdDelLaddr   = 19
	cmdGetLaddr   = 20

	cmdAttrService = 1
	cmdAttrDest    = 2
	cmdAttrLaddr   = 7

	svcAttrAF         = 1
	svcAttrProtocol   = 2
	svcAttrAddr       = 3
	svcAttrPort       = 4
	svcAttrSchedName  = 6
	svcAttrFlags      = 7
	svcAttrTimeout    = 8
	svcAttrNetmask    = 9
	svcAttrEstTimeout = 13

	destAttrAddr      = 1
	destAttrPort      = 2
	destAttrFwdMethod = 3
	destAttrWeight    = 4
	destAttrUThresh   = 5
	destAttrLThresh   = 6
	destAttrAF        = 11

	laddrAttrAddr         = 1
	laddrAttrPortConflict = 2
	laddrAttrConnCounts   = 3

	infoAttrFeatures = 3

	fwdFullNAT = 5

	featureFullNAT    = 0x1
	featureEstTimeout = 0x4
)

// ipvsConn is a generic netlink connection to IPVS inside one network namespace.
type ipvsConn struct {
	c   *genetlink.Conn
	fam genetlink.Family
}

// dialIPVS opens an IPVS generic netlink connection in the named network namespace.
func dialIPVS(t testing.TB, ns string) *ipvsConn {
	t.Helper()
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatalf("opening netns %s: %v", ns, err)
	}
	defer f.Close()
	c, err := genetlink.Dial(&netlink.Config{NetNS: int(f.Fd())})
	if err != nil {
		t.Fatalf("genetlink in %s: %v", ns, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	// the kernel's error messages (extended acks) in the errors
	if err := c.SetOption(netlink.ExtendedAcknowledge, true); err != nil {
		t.Fatalf("extended acks in %s: %v", ns, err)
	}
	fam, err := c.GetFamily("IPVS")
	if err != nil {
		t.Fatalf("IPVS family in %s: %v", ns, err)
	}
	return &ipvsConn{c: c, fam: fam}
}

func (ic *ipvsConn) exec(cmd uint8, flags netlink.HeaderFlags, ae *netlink.AttributeEncoder) ([]genetlink.Message, error) {
	var data []byte
	if ae != nil {
		var err error
		if data, err = ae.Encode(); err != nil {
			return nil, fmt.Errorf("encoding command %d: %w", cmd, err)
		}
	}
	msgs, err := ic.c.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: ic.fam.Version},
		Data:   data,
	}, ic.fam.ID, netlink.Request|flags)
	if err != nil {
		return nil, fmt.Errorf("IPVS command %d: %w", cmd, err)
	}
	return msgs, nil
}

// service identifies a virtual service.
type service struct {
	proto uint16
	vip   netip.AddrPort
}

func family(a netip.Addr) uint16 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func addr16(a netip.Addr) []byte {
	b := make([]byte, 16)
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
	} else {
		v := a.As16()
		copy(b, v[:])
	}
	return b
}

func be16(v uint16) []byte {
	b := make([]byte, 2)
	binary.BigEndian.PutUint16(b, v)
	return b
}

func (s service) encode(ae *netlink.AttributeEncoder) {
	ae.Nested(cmdAttrService, func(n *netlink.AttributeEncoder) error {
		n.Uint16(svcAttrAF, family(s.vip.Addr()))
		n.Uint16(svcAttrProtocol, s.proto)
		n.Bytes(svcAttrAddr, addr16(s.vip.Addr()))
		n.Bytes(svcAttrPort, be16(s.vip.Port()))
		return nil
	})
}

// newService adds a round-robin service with an optional ESTABLISHED timeout (0: none sent).
func (ic *ipvsConn) newService(s service, estTimeout uint32) error {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(cmdAttrService, func(n *netlink.AttributeEncoder) error {
		n.Uint16(svcAttrAF, family(s.vip.Addr()))
		n.Uint16(svcAttrProtocol, s.proto)
		n.Bytes(svcAttrAddr, addr16(s.vip.Addr()))
		n.Bytes(svcAttrPort, be16(s.vip.Port()))
		n.String(svcAttrSchedName, "rr")
		n.Bytes(svcAttrFlags, make([]byte, 8))
		n.Uint32(svcAttrTimeout, 0)
		if s.vip.Addr().Is4() {
			n.Uint32(svcAttrNetmask, 0xffffffff)
		} else {
			n.Uint32(svcAttrNetmask, 128)
		}
		if estTimeout != 0 {
			n.Uint32(svcAttrEstTimeout, estTimeout)
		}
		return nil
	})
	_, err := ic.exec(cmdNewService, netlink.Acknowledge, ae)
	return err
}

// newFullNATDest adds rs to s with forwarding method FULLNAT.
func (ic *ipvsConn) newFullNATDest(s service, rs netip.AddrPort) error {
	ae := netlink.NewAttributeEncoder()
	s.encode(ae)
	ae.Nested(cmdAttrDest, func(n *netlink.AttributeEncoder) error {
		n.Bytes(destAttrAddr, addr16(rs.Addr()))
		n.Bytes(destAttrPort, be16(rs.Port()))
		n.Uint32(destAttrFwdMethod, fwdFullNAT)
		n.Uint32(destAttrWeight, 1)
		n.Uint32(destAttrUThresh, 0)
		n.Uint32(destAttrLThresh, 0)
		n.Uint16(destAttrAF, family(rs.Addr()))
		return nil
	})
	_, err := ic.exec(cmdNewDest, netlink.Acknowledge, ae)
	return err
}

func (ic *ipvsConn) laddrCmd(cmd uint8, s service, raw []byte) error {
	ae := netlink.NewAttributeEncoder()
	s.encode(ae)
	ae.Nested(cmdAttrLaddr, func(n *netlink.AttributeEncoder) error {
		n.Bytes(laddrAttrAddr, raw)
		return nil
	})
	_, err := ic.exec(cmd, netlink.Acknowledge, ae)
	return err
}

// addLaddr adds local address a to s.
func (ic *ipvsConn) addLaddr(s service, a netip.Addr) error {
	return ic.laddrCmd(cmdNewLaddr, s, addr16(a))
}

// delLaddr deletes local address a from s.
func (ic *ipvsConn) delLaddr(s service, a netip.Addr) error {
	return ic.laddrCmd(cmdDelLaddr, s, addr16(a))
}

// laddr is one entry of a GET_LADDR dump.
type laddr struct {
	addr         netip.Addr
	portConflict uint64
	connCounts   uint32
}

// laddrs dumps the local addresses of s.
func (ic *ipvsConn) laddrs(s service) ([]laddr, error) {
	ae := netlink.NewAttributeEncoder()
	s.encode(ae)
	msgs, err := ic.exec(cmdGetLaddr, netlink.Dump, ae)
	if err != nil {
		return nil, err
	}
	var out []laddr
	for _, m := range msgs {
		if m.Header.Command != cmdNewLaddr {
			return nil, fmt.Errorf("GET_LADDR reply has command %d, want %d", m.Header.Command, cmdNewLaddr)
		}
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return nil, fmt.Errorf("decoding GET_LADDR reply: %w", err)
		}
		for ad.Next() {
			if ad.Type() != cmdAttrLaddr {
				continue
			}
			var l laddr
			ad.Nested(func(n *netlink.AttributeDecoder) error {
				for n.Next() {
					switch n.Type() {
					case laddrAttrAddr:
						b := n.Bytes()
						if s.vip.Addr().Is4() && len(b) >= 4 {
							l.addr = netip.AddrFrom4([4]byte(b[:4]))
						} else if len(b) == 16 {
							l.addr = netip.AddrFrom16([16]byte(b))
						}
					case laddrAttrPortConflict:
						l.portConflict = n.Uint64()
					case laddrAttrConnCounts:
						l.connCounts = n.Uint32()
					}
				}
				return nil
			})
			out = append(out, l)
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("decoding GET_LADDR reply: %w", err)
		}
	}
	return out, nil
}

// features returns IPVS_INFO_ATTR_FEATURES from GET_INFO, and whether it was present.
func (ic *ipvsConn) features() (uint32, bool, error) {
	msgs, err := ic.exec(cmdGetInfo, 0, nil)
	if err != nil {
		return 0, false, err
	}
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return 0, false, fmt.Errorf("decoding GET_INFO reply: %w", err)
		}
		for ad.Next() {
			if ad.Type() == infoAttrFeatures {
				return ad.Uint32(), true, nil
			}
		}
	}
	return 0, false, nil
}

// errno extracts the errno of a netlink error, 0 if there is none.
func errno(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}
