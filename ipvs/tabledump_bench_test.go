// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// kernelStats writes a service's or destination's two stats nests as the
// kernel fills them.
func kernelStats(ae *netlink.AttributeEncoder, stats, stats64 uint16) {
	kernelNest(ae, stats, func(ae *netlink.AttributeEncoder) {
		for a := uint16(statsAttrConns); a <= statsAttrOutBPS; a++ {
			if a == statsAttrInBytes || a == statsAttrOutBytes {
				ae.Uint64(a, uint64(a)*1000)
			} else {
				ae.Uint32(a, uint32(a))
			}
		}
	})
	kernelNest(ae, stats64, func(ae *netlink.AttributeEncoder) {
		for a := uint16(statsAttrConns); a <= statsAttrOutBPS; a++ {
			ae.Uint64(a, uint64(a)*1000)
		}
	})
}

// BenchmarkTableDump measures ServicesWithDestinations over one
// IPVS_CMD_GET_TABLE dump of 2,000 services with 5 destinations each, as
// the kernel writes them (stats included): the library's share of
// ipvsadm -Ln on that table.
func BenchmarkTableDump(b *testing.B) {
	var reps []reply
	for i := range 2000 {
		vip := netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(1 + i%250)})
		key := func(ae *netlink.AttributeEncoder) {
			ae.Uint16(svcAttrAF, unix.AF_INET)
			ae.Uint16(svcAttrProtocol, unix.IPPROTO_TCP)
			ae.Bytes(svcAttrAddr, vip.AsSlice())
			ae.Bytes(svcAttrPort, binary.BigEndian.AppendUint16(nil, 80))
		}
		reps = append(reps, reply{cmdNewService, attrs(b, func(ae *netlink.AttributeEncoder) {
			kernelNest(ae, cmdAttrService, func(ae *netlink.AttributeEncoder) {
				key(ae)
				ae.String(svcAttrSchedName, "wrr")
				ae.Bytes(svcAttrFlags, make([]byte, 8))
				ae.Uint32(svcAttrTimeout, 0)
				ae.Uint32(svcAttrNetmask, 0xffffffff)
				kernelStats(ae, svcAttrStats, svcAttrStats64)
			})
		})})
		for j := range 5 {
			rs := netip.AddrFrom4([4]byte{198, 19, byte(j), byte(1 + i%250)})
			reps = append(reps, reply{cmdNewDest, attrs(b, func(ae *netlink.AttributeEncoder) {
				kernelNest(ae, cmdAttrService, key)
				kernelNest(ae, cmdAttrDest, func(ae *netlink.AttributeEncoder) {
					ae.Bytes(destAttrAddr, netip.AddrFrom16(rs.As16()).AsSlice()[:16])
					ae.Bytes(destAttrPort, binary.BigEndian.AppendUint16(nil, 8080))
					ae.Uint32(destAttrFwdMethod, 0)
					ae.Uint32(destAttrWeight, uint32(1+j))
					for a := uint16(destAttrUThresh); a <= destAttrPersistConns; a++ {
						ae.Uint32(a, 0)
					}
					ae.Uint16(destAttrAddrFamily, unix.AF_INET)
					kernelStats(ae, destAttrStats, destAttrStats64)
				})
			})})
		}
	}
	c := testClient(b, func(req genlReq) ([]reply, unix.Errno) {
		if req.cmd == cmdGetInfo {
			return []reply{{cmdSetInfo, attrs(b, func(ae *netlink.AttributeEncoder) {
				ae.Uint32(infoAttrVersion, 0x010201)
				ae.Uint32(infoAttrFeatures, uint32(FeatureTableDump))
			})}}, 0
		}
		if req.cmd != cmdGetTable {
			return nil, unix.EINVAL
		}
		return reps, 0
	})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		all, err := c.ServicesWithDestinations(b.Context())
		if err != nil || len(all) != 2000 || len(all[1999].Destinations) != 5 {
			b.Fatal(fmt.Sprint(len(all), err))
		}
	}
}
