// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

// recorder is a fake kernel that answers GET_INFO with the given features
// and acks (or fails with errno) every other request, recording them.
type recorder struct {
	features Features
	noFeat   bool // omit IPVS_INFO_ATTR_FEATURES, like a stock kernel
	errno    unix.Errno
	reqs     []genlReq
	replies  []reply
}

func (r *recorder) handle(t testing.TB) func(req genlReq) ([]reply, unix.Errno) {
	return func(req genlReq) ([]reply, unix.Errno) {
		if req.cmd == cmdGetInfo {
			return []reply{{cmdSetInfo, attrs(t, func(ae *netlink.AttributeEncoder) {
				ae.Uint32(infoAttrVersion, 0x010201)
				ae.Uint32(infoAttrConnTabSize, 4096)
				if !r.noFeat {
					ae.Uint32(infoAttrFeatures, uint32(r.features))
				}
			})}}, 0
		}
		r.reqs = append(r.reqs, req)
		if r.errno != 0 {
			return nil, r.errno
		}
		return r.replies, 0
	}
}

func (r *recorder) only(t *testing.T) genlReq {
	t.Helper()
	if len(r.reqs) != 1 {
		t.Fatalf("kernel got %d requests, want 1", len(r.reqs))
	}
	return r.reqs[0]
}

func checkReq(t *testing.T, got genlReq, cmd uint8, flags netlink.HeaderFlags, want map[string][]byte) {
	t.Helper()
	if got.cmd != cmd {
		t.Errorf("command %d, want %d", got.cmd, cmd)
	}
	if got.flags != flags {
		t.Errorf("flags %v, want %v", got.flags, flags)
	}
	checkAttrs(t, got.attrs, want)
}

var (
	svcTCP = Service{Protocol: TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80}
	svcV6  = Service{Protocol: UDP, Address: netip.MustParseAddr("2001:db8::1"), Port: 53}
)

const ack = netlink.Request | netlink.Acknowledge

// identTCP is the SERVICE nest identifying svcTCP.
func identTCP() map[string][]byte {
	return map[string][]byte{
		"1/": nil, "1/1": le16(2), "1/2": le16(6), "1/3": ip("192.0.2.1"), "1/4": bebytes16(80),
	}
}

func merge(ms ...map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func TestInfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    recorder
		want Info
	}{
		{"stock", recorder{noFeat: true}, Info{Version{1, 2, 1}, 4096, 0}},
		{"extension", recorder{features: FeatureFullNAT | FeatureSynProxy | FeatureEstTimeout},
			Info{Version{1, 2, 1}, 4096, FeatureFullNAT | FeatureSynProxy | FeatureEstTimeout}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got genlReq
			c := testClient(t, func(req genlReq) ([]reply, unix.Errno) {
				got = req
				return tc.r.handle(t)(req)
			})
			info, err := c.Info(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			checkReq(t, got, cmdGetInfo, netlink.Request, map[string][]byte{})
			if info != tc.want {
				t.Errorf("Info() = %+v, want %+v", info, tc.want)
			}
			if info.Version.String() != "1.2.1" {
				t.Errorf("version string %q", info.Version)
			}
		})
	}
}

func stats32(ae *netlink.AttributeEncoder, base uint32) {
	ae.Uint32(statsAttrConns, base+1)
	ae.Uint32(statsAttrInPkts, base+2)
	ae.Uint32(statsAttrOutPkts, base+3)
	ae.Uint64(statsAttrInBytes, uint64(base)+4)
	ae.Uint64(statsAttrOutBytes, uint64(base)+5)
	ae.Uint32(statsAttrCPS, base+6)
	ae.Uint32(statsAttrInPPS, base+7)
	ae.Uint32(statsAttrOutPPS, base+8)
	ae.Uint32(statsAttrInBPS, base+9)
	ae.Uint32(statsAttrOutBPS, base+10)
}

func stats64(ae *netlink.AttributeEncoder, base uint64) {
	for i := uint16(1); i <= 10; i++ {
		ae.Uint64(i, base+uint64(i))
	}
}

func wantStats(base uint64) Stats {
	return Stats{base + 1, base + 2, base + 3, base + 4, base + 5, base + 6, base + 7, base + 8, base + 9, base + 10}
}

func kernelFlags(f ServiceFlags) []byte {
	return append(le32(uint32(f)), le32(0xffffffff)...)
}

func TestServices(t *testing.T) {
	r := &recorder{}
	r.replies = []reply{
		{cmdNewService, attrs(t, func(ae *netlink.AttributeEncoder) {
			kernelNest(ae, cmdAttrService, func(ae *netlink.AttributeEncoder) {
				ae.Uint16(svcAttrAF, 2)
				ae.Uint16(svcAttrProtocol, 6)
				ae.Bytes(svcAttrAddr, ip16("192.0.2.1"))
				ae.Bytes(svcAttrPort, bebytes16(80))
				ae.Bytes(svcAttrSchedName, cstr("rr"))
				ae.Bytes(svcAttrFlags, kernelFlags(FlagHashed|FlagPersistent))
				ae.Uint32(svcAttrTimeout, 300)
				ae.Bytes(svcAttrNetmask, []byte{255, 255, 255, 0})
				kernelNest(ae, svcAttrStats, func(ae *netlink.AttributeEncoder) { stats32(ae, 100) })
				kernelNest(ae, svcAttrStats64, func(ae *netlink.AttributeEncoder) { stats64(ae, 1<<40) })
			})
		})},
		{cmdNewService, attrs(t, func(ae *netlink.AttributeEncoder) {
			kernelNest(ae, cmdAttrService, func(ae *netlink.AttributeEncoder) {
				ae.Uint16(svcAttrAF, 10)
				ae.Uint32(svcAttrFWMark, 7)
				ae.Bytes(svcAttrSchedName, cstr("sh"))
				ae.Bytes(svcAttrPEName, cstr("sip"))
				ae.Bytes(svcAttrFlags, kernelFlags(FlagHashed|FlagSHFallback|FlagSHPort))
				ae.Uint32(svcAttrTimeout, 0)
				ae.Uint32(svcAttrNetmask, 64)
				ae.Uint32(svcAttrEstTimeout, 60)
			})
		})},
	}
	c := testClient(t, r.handle(t))
	got, err := c.Services(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkReq(t, r.only(t), cmdGetService, netlink.Request|netlink.Dump, map[string][]byte{})
	want := []Service{
		{Family: INET, Protocol: TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80, Scheduler: "rr",
			Flags: FlagHashed | FlagPersistent, Timeout: 300, Netmask: 0xffffff00,
			Stats: wantStats(100), Stats64: wantStats(1 << 40)},
		{Family: INET6, FWMark: 7, Scheduler: "sh", PEName: "sip", Flags: FlagHashed | FlagSched1 | FlagSched2,
			Netmask: 64, EstablishedTimeout: 60},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Services() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestServiceGet(t *testing.T) {
	r := &recorder{replies: []reply{{cmdNewService, attrs(t, func(ae *netlink.AttributeEncoder) {
		kernelNest(ae, cmdAttrService, func(ae *netlink.AttributeEncoder) {
			ae.Uint16(svcAttrAF, 10)
			ae.Uint16(svcAttrProtocol, 17)
			ae.Bytes(svcAttrAddr, ip16("2001:db8::1"))
			ae.Bytes(svcAttrPort, bebytes16(53))
			ae.Bytes(svcAttrSchedName, cstr("wlc"))
			ae.Bytes(svcAttrFlags, kernelFlags(FlagHashed|FlagOnePacket))
			ae.Uint32(svcAttrTimeout, 0)
			ae.Uint32(svcAttrNetmask, 128)
		})
	})}}}
	c := testClient(t, r.handle(t))
	got, err := c.Service(t.Context(), svcV6)
	if err != nil {
		t.Fatal(err)
	}
	checkReq(t, r.only(t), cmdGetService, netlink.Request, map[string][]byte{
		"1/": nil, "1/1": le16(10), "1/2": le16(17), "1/3": ip("2001:db8::1"), "1/4": bebytes16(53),
	})
	want := Service{Family: INET6, Protocol: UDP, Address: netip.MustParseAddr("2001:db8::1"), Port: 53,
		Scheduler: "wlc", Flags: FlagHashed | FlagOnePacket, Netmask: 128}
	if got != want {
		t.Errorf("Service() = %+v, want %+v", got, want)
	}

	r2 := &recorder{errno: unix.ESRCH}
	c2 := testClient(t, r2.handle(t))
	_, err = c2.Service(t.Context(), svcTCP)
	if !errors.Is(err, os.ErrNotExist) || !errors.Is(err, syscall.ESRCH) {
		t.Errorf("missing service: err = %v, want os.ErrNotExist and ESRCH", err)
	}
	if err == nil || !strings.Contains(err.Error(), "get service TCP 192.0.2.1:80") {
		t.Errorf("error %q does not name the operation and the service", err)
	}
}

func TestServiceChanges(t *testing.T) {
	full := Service{Protocol: TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80, Scheduler: "sh",
		Flags: FlagPersistent | FlagSHPort | FlagHashed, Timeout: 600, Netmask: 0xffffff00, PEName: "sip"}
	fullAttrs := merge(identTCP(), map[string][]byte{
		"1/6": cstr("sh"), "1/11": cstr("sip"), "1/7": kernelFlags(FlagPersistent | FlagSHPort),
		"1/8": le32(600), "1/9": {255, 255, 255, 0},
	})
	for _, tc := range []struct {
		name     string
		features Features
		do       func(c *Client) error
		cmd      uint8
		want     map[string][]byte
	}{
		{"create", 0, func(c *Client) error { return c.CreateService(t.Context(), full) }, cmdNewService, fullAttrs},
		{"update", 0, func(c *Client) error { return c.UpdateService(t.Context(), full) }, cmdSetService, fullAttrs},
		{"create defaults", 0, func(c *Client) error { return c.CreateService(t.Context(), svcTCP) }, cmdNewService,
			merge(identTCP(), map[string][]byte{"1/6": cstr("wlc"), "1/7": kernelFlags(0), "1/8": le32(0), "1/9": {255, 255, 255, 255}})},
		{"create v6 defaults", 0, func(c *Client) error { return c.CreateService(t.Context(), svcV6) }, cmdNewService,
			map[string][]byte{"1/": nil, "1/1": le16(10), "1/2": le16(17), "1/3": ip("2001:db8::1"), "1/4": bebytes16(53),
				"1/6": cstr("wlc"), "1/7": kernelFlags(0), "1/8": le32(0), "1/9": le32(128)}},
		{"create fwmark", 0, func(c *Client) error {
			return c.CreateService(t.Context(), Service{FWMark: 7, Scheduler: "rr", Netmask: 48, Family: INET6})
		},
			cmdNewService, map[string][]byte{"1/": nil, "1/1": le16(10), "1/5": le32(7),
				"1/6": cstr("rr"), "1/7": kernelFlags(0), "1/8": le32(0), "1/9": le32(48)}},
		{"create synproxy est-timeout", FeatureSynProxy | FeatureEstTimeout, func(c *Client) error {
			s := svcTCP
			s.Flags = FlagSynProxy
			s.EstablishedTimeout = 90
			return c.CreateService(t.Context(), s)
		}, cmdNewService, merge(identTCP(), map[string][]byte{"1/6": cstr("wlc"), "1/7": kernelFlags(FlagSynProxy),
			"1/8": le32(0), "1/9": {255, 255, 255, 255}, "1/13": le32(90)})},
		{"update resets est-timeout", FeatureEstTimeout, func(c *Client) error { return c.UpdateService(t.Context(), svcTCP) }, cmdSetService,
			merge(identTCP(), map[string][]byte{"1/6": cstr("wlc"), "1/7": kernelFlags(0),
				"1/8": le32(0), "1/9": {255, 255, 255, 255}, "1/13": le32(0)})},
		{"create proxy-protocol v2", FeatureProxyProtocol, func(c *Client) error {
			s := svcTCP
			s.ProxyProtocol = ProxyProtocolV2
			return c.CreateService(t.Context(), s)
		}, cmdNewService, merge(identTCP(), map[string][]byte{"1/6": cstr("wlc"), "1/7": kernelFlags(0),
			"1/8": le32(0), "1/9": {255, 255, 255, 255}, "1/14": {2}})},
		{"update turns proxy-protocol off", FeatureProxyProtocol, func(c *Client) error { return c.UpdateService(t.Context(), svcTCP) }, cmdSetService,
			merge(identTCP(), map[string][]byte{"1/6": cstr("wlc"), "1/7": kernelFlags(0),
				"1/8": le32(0), "1/9": {255, 255, 255, 255}, "1/14": {0}})},
		{"delete", 0, func(c *Client) error { return c.DeleteService(t.Context(), full) }, cmdDelService, identTCP()},
		{"zero", 0, func(c *Client) error { return c.ZeroService(t.Context(), full) }, cmdZero, identTCP()},
		{"zero all", 0, func(c *Client) error { return c.ZeroAll(t.Context()) }, cmdZero, map[string][]byte{}},
		{"flush", 0, func(c *Client) error { return c.Flush(t.Context()) }, cmdFlush, map[string][]byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{features: tc.features}
			c := testClient(t, r.handle(t))
			if err := tc.do(c); err != nil {
				t.Fatal(err)
			}
			checkReq(t, r.only(t), tc.cmd, ack, tc.want)
		})
	}
}

func TestDestinations(t *testing.T) {
	r := &recorder{replies: []reply{
		{cmdNewDest, attrs(t, func(ae *netlink.AttributeEncoder) {
			kernelNest(ae, cmdAttrDest, func(ae *netlink.AttributeEncoder) {
				ae.Bytes(destAttrAddr, ip16("198.51.100.10"))
				ae.Bytes(destAttrPort, bebytes16(8080))
				ae.Uint32(destAttrFwdMethod, uint32(Masquerade))
				ae.Uint32(destAttrWeight, 3000000000&0x7fffffff)
				ae.Uint32(destAttrUThresh, 100)
				ae.Uint32(destAttrLThresh, 10)
				ae.Uint32(destAttrActiveConns, 5)
				ae.Uint32(destAttrInactConns, 6)
				ae.Uint32(destAttrPersistConns, 7)
				ae.Uint8(destAttrTunType, 0)
				ae.Bytes(destAttrTunPort, bebytes16(0))
				ae.Uint16(destAttrTunFlags, 0)
				kernelNest(ae, destAttrStats, func(ae *netlink.AttributeEncoder) { stats32(ae, 0) })
				kernelNest(ae, destAttrStats64, func(ae *netlink.AttributeEncoder) { stats64(ae, 0) })
				ae.Uint16(destAttrAddrFamily, 2)
			})
		})},
		{cmdNewDest, attrs(t, func(ae *netlink.AttributeEncoder) {
			kernelNest(ae, cmdAttrDest, func(ae *netlink.AttributeEncoder) {
				ae.Bytes(destAttrAddr, ip16("2001:db8::10"))
				ae.Bytes(destAttrPort, bebytes16(80))
				ae.Uint32(destAttrFwdMethod, uint32(Tunnel))
				ae.Uint32(destAttrWeight, 1)
				ae.Uint32(destAttrUThresh, 0)
				ae.Uint32(destAttrLThresh, 0)
				ae.Uint8(destAttrTunType, uint8(TunnelGUE))
				ae.Bytes(destAttrTunPort, bebytes16(6080))
				ae.Uint16(destAttrTunFlags, uint16(TunnelRemoteChecksum))
				ae.Uint16(destAttrAddrFamily, 10)
			})
		})},
	}}
	c := testClient(t, r.handle(t))
	got, err := c.Destinations(t.Context(), svcTCP)
	if err != nil {
		t.Fatal(err)
	}
	checkReq(t, r.only(t), cmdGetDest, netlink.Request|netlink.Dump, identTCP())
	want := []Destination{
		{Family: INET, Address: netip.MustParseAddr("198.51.100.10"), Port: 8080, ForwardMethod: Masquerade,
			Weight: 3000000000 & 0x7fffffff, UpperThreshold: 100, LowerThreshold: 10, ActiveConns: 5, InactiveConns: 6,
			PersistConns: 7, Stats: wantStats(0), Stats64: wantStats(0)},
		{Family: INET6, Address: netip.MustParseAddr("2001:db8::10"), Port: 80, ForwardMethod: Tunnel, Weight: 1,
			TunnelType: TunnelGUE, TunnelPort: 6080, TunnelFlags: TunnelRemoteChecksum},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Destinations() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestDestinationChanges(t *testing.T) {
	d := Destination{Address: netip.MustParseAddr("198.51.100.10"), Port: 8080, ForwardMethod: DirectRoute,
		Weight: 5, UpperThreshold: 100, LowerThreshold: 10}
	fullDest := map[string][]byte{"2/": nil, "2/1": ip("198.51.100.10"), "2/2": bebytes16(8080), "2/11": le16(2),
		"2/3": le32(3), "2/4": le32(5), "2/5": le32(100), "2/6": le32(10), "2/13": {0}, "2/14": bebytes16(0), "2/15": le16(0)}
	tun := Destination{Address: netip.MustParseAddr("2001:db8::10"), Port: 80, ForwardMethod: Tunnel, Weight: 1,
		TunnelType: TunnelGRE, TunnelFlags: TunnelChecksum}
	fn := d
	fn.ForwardMethod = FullNAT
	for _, tc := range []struct {
		name     string
		features Features
		do       func(c *Client) error
		cmd      uint8
		want     map[string][]byte
	}{
		{"create", 0, func(c *Client) error { return c.CreateDestination(t.Context(), svcTCP, d) }, cmdNewDest, merge(identTCP(), fullDest)},
		{"update", 0, func(c *Client) error { return c.UpdateDestination(t.Context(), svcTCP, d) }, cmdSetDest, merge(identTCP(), fullDest)},
		{"delete", 0, func(c *Client) error { return c.DeleteDestination(t.Context(), svcTCP, d) }, cmdDelDest,
			merge(identTCP(), map[string][]byte{"2/": nil, "2/1": ip("198.51.100.10"), "2/2": bebytes16(8080), "2/11": le16(2)})},
		{"mixed family tunnel", 0, func(c *Client) error { return c.CreateDestination(t.Context(), svcTCP, tun) }, cmdNewDest,
			merge(identTCP(), map[string][]byte{"2/": nil, "2/1": ip("2001:db8::10"), "2/2": bebytes16(80), "2/11": le16(10),
				"2/3": le32(2), "2/4": le32(1), "2/5": le32(0), "2/6": le32(0), "2/13": {2}, "2/14": bebytes16(0), "2/15": le16(1)})},
		{"fullnat", FeatureFullNAT, func(c *Client) error { return c.CreateDestination(t.Context(), svcTCP, fn) }, cmdNewDest,
			merge(identTCP(), fullDest, map[string][]byte{"2/3": le32(5)})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{features: tc.features}
			c := testClient(t, r.handle(t))
			if err := tc.do(c); err != nil {
				t.Fatal(err)
			}
			checkReq(t, r.only(t), tc.cmd, ack, tc.want)
		})
	}
}

func TestLocalAddresses(t *testing.T) {
	r := &recorder{features: FeatureFullNAT, replies: []reply{
		{cmdNewLaddr, attrs(t, func(ae *netlink.AttributeEncoder) {
			kernelNest(ae, cmdAttrLaddr, func(ae *netlink.AttributeEncoder) {
				ae.Bytes(laddrAttrAddr, ip16("203.0.113.5"))
				ae.Uint64(laddrAttrPortConflict, 1<<33)
				ae.Uint32(laddrAttrConnCounts, 12)
			})
		})},
		{cmdNewLaddr, attrs(t, func(ae *netlink.AttributeEncoder) {
			kernelNest(ae, cmdAttrLaddr, func(ae *netlink.AttributeEncoder) {
				ae.Bytes(laddrAttrAddr, ip("203.0.113.6"))
				ae.Uint64(laddrAttrPortConflict, 0)
				ae.Uint32(laddrAttrConnCounts, 0)
			})
		})},
	}}
	c := testClient(t, r.handle(t))
	got, err := c.LocalAddresses(t.Context(), svcTCP)
	if err != nil {
		t.Fatal(err)
	}
	checkReq(t, r.only(t), cmdGetLaddr, netlink.Request|netlink.Dump, identTCP())
	want := []LocalAddress{
		{Address: netip.MustParseAddr("203.0.113.5"), PortConflicts: 1 << 33, Connections: 12},
		{Address: netip.MustParseAddr("203.0.113.6")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LocalAddresses() = %+v, want %+v", got, want)
	}

	la := LocalAddress{Address: netip.MustParseAddr("203.0.113.5")}
	for _, tc := range []struct {
		name string
		do   func(c *Client) error
		cmd  uint8
	}{
		{"create", func(c *Client) error { return c.CreateLocalAddress(t.Context(), svcTCP, la) }, cmdNewLaddr},
		{"delete", func(c *Client) error { return c.DeleteLocalAddress(t.Context(), svcTCP, la) }, cmdDelLaddr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{features: FeatureFullNAT}
			c := testClient(t, r.handle(t))
			if err := tc.do(c); err != nil {
				t.Fatal(err)
			}
			checkReq(t, r.only(t), tc.cmd, ack, merge(identTCP(), map[string][]byte{"7/": nil, "7/1": ip("203.0.113.5")}))
		})
	}
}

func TestNotSupported(t *testing.T) {
	la := LocalAddress{Address: netip.MustParseAddr("203.0.113.5")}
	fn := Destination{Address: netip.MustParseAddr("198.51.100.10"), Port: 80, ForwardMethod: FullNAT, Weight: 1}
	syn, est, pp := svcTCP, svcTCP, svcTCP
	syn.Flags = FlagSynProxy
	est.EstablishedTimeout = 30
	pp.ProxyProtocol = ProxyProtocolV1
	for _, tc := range []struct {
		name    string
		have    Features
		feature string
		do      func(c *Client) error
	}{
		{"fullnat dest", FeatureSynProxy | FeatureEstTimeout, "FULLNAT", func(c *Client) error { return c.CreateDestination(t.Context(), svcTCP, fn) }},
		{"fullnat dest update", 0, "FULLNAT", func(c *Client) error { return c.UpdateDestination(t.Context(), svcTCP, fn) }},
		{"laddr create", 0, "local addresses", func(c *Client) error { return c.CreateLocalAddress(t.Context(), svcTCP, la) }},
		{"laddr delete", 0, "local addresses", func(c *Client) error { return c.DeleteLocalAddress(t.Context(), svcTCP, la) }},
		{"laddr list", 0, "local addresses", func(c *Client) error { _, err := c.LocalAddresses(t.Context(), svcTCP); return err }},
		{"synproxy", FeatureFullNAT | FeatureEstTimeout, "SYNPROXY", func(c *Client) error { return c.CreateService(t.Context(), syn) }},
		{"est timeout", FeatureFullNAT | FeatureSynProxy, "ESTABLISHED", func(c *Client) error { return c.UpdateService(t.Context(), est) }},
		{"proxy protocol", FeatureFullNAT | FeatureSynProxy | FeatureEstTimeout | FeatureTableDump, "PROXY protocol",
			func(c *Client) error { return c.CreateService(t.Context(), pp) }},
		{"proxy protocol update", 0, "PROXY protocol", func(c *Client) error { return c.UpdateService(t.Context(), pp) }},
		{"batch", 0, "SYNPROXY", func(c *Client) error {
			var b Batch
			b.CreateService(svcTCP)
			b.CreateService(syn)
			return c.Apply(t.Context(), &b)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{features: tc.have}
			c := testClient(t, r.handle(t))
			err := tc.do(c)
			if !errors.Is(err, ErrNotSupported) {
				t.Fatalf("err = %v, want ErrNotSupported", err)
			}
			if !strings.Contains(err.Error(), tc.feature) || !strings.Contains(err.Error(), "module") {
				t.Errorf("error %q does not name the feature %q and the module", err, tc.feature)
			}
			if len(r.reqs) != 0 {
				t.Errorf("%d requests reached the kernel, want none", len(r.reqs))
			}
		})
	}
}

func TestErrnoMapping(t *testing.T) {
	dest := Destination{Address: netip.MustParseAddr("198.51.100.1"), Port: 80}
	createDest := func(c *Client) error { return c.CreateDestination(t.Context(), svcTCP, dest) }
	createSvc := func(c *Client) error { return c.CreateService(t.Context(), svcTCP) }
	updateSvc := func(c *Client) error { return c.UpdateService(t.Context(), svcTCP) }
	batchSvc := func(c *Client) error {
		var b Batch
		b.CreateService(svcTCP)
		return c.Apply(t.Context(), &b)
	}
	updateDest := func(c *Client) error { return c.UpdateDestination(t.Context(), svcTCP, dest) }
	deleteDest := func(c *Client) error { return c.DeleteDestination(t.Context(), svcTCP, dest) }
	deleteSvc := func(c *Client) error { return c.DeleteService(t.Context(), svcTCP) }
	all := []error{ErrNotFound, os.ErrNotExist, ErrModuleNotFound, ErrExist, os.ErrExist, ErrPermission, os.ErrPermission,
		ErrSynProxyNotAllowed, ErrProxyProtocolNotAllowed}
	for _, tc := range []struct {
		name  string
		call  func(c *Client) error
		op    string
		errno unix.Errno
		want  []error // of all; the others must not match
	}{
		{"dest ESRCH", createDest, "create destination", unix.ESRCH, []error{ErrNotFound, os.ErrNotExist}},
		{"dest ENOENT", createDest, "create destination", unix.ENOENT, []error{ErrNotFound, os.ErrNotExist}},
		{"dest EEXIST", createDest, "create destination", unix.EEXIST, []error{ErrExist, os.ErrExist}},
		{"dest EPERM", createDest, "create destination", unix.EPERM, []error{ErrPermission, os.ErrPermission}},
		{"dest EACCES", createDest, "create destination", unix.EACCES, []error{ErrPermission, os.ErrPermission}},
		{"dest EPROTONOSUPPORT", createDest, "create destination", unix.EPROTONOSUPPORT, []error{ErrSynProxyNotAllowed}},
		{"dest EINVAL", createDest, "create destination", unix.EINVAL, nil},
		{"create ENOENT", createSvc, "create service", unix.ENOENT, []error{ErrModuleNotFound}},
		{"update ENOENT", updateSvc, "update service", unix.ENOENT, []error{ErrModuleNotFound}},
		{"update ESRCH", updateSvc, "update service", unix.ESRCH, []error{ErrNotFound, os.ErrNotExist}},
		{"create EEXIST", createSvc, "create service", unix.EEXIST, []error{ErrExist, os.ErrExist}},
		{"batch create ENOENT", batchSvc, "create service", unix.ENOENT, []error{ErrModuleNotFound}},
		{"dest EOPNOTSUPP", createDest, "create destination", unix.EOPNOTSUPP, []error{ErrProxyProtocolNotAllowed}},
		{"update dest EOPNOTSUPP", updateDest, "update destination", unix.EOPNOTSUPP, []error{ErrProxyProtocolNotAllowed}},
		{"create EOPNOTSUPP", createSvc, "create service", unix.EOPNOTSUPP, []error{ErrProxyProtocolNotAllowed}},
		{"update EOPNOTSUPP", updateSvc, "update service", unix.EOPNOTSUPP, []error{ErrProxyProtocolNotAllowed}},
		{"batch create EOPNOTSUPP", batchSvc, "create service", unix.EOPNOTSUPP, []error{ErrProxyProtocolNotAllowed}},
		{"delete dest EOPNOTSUPP", deleteDest, "delete destination", unix.EOPNOTSUPP, nil},
		{"delete EOPNOTSUPP", deleteSvc, "delete service", unix.EOPNOTSUPP, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{errno: tc.errno}
			c := testClient(t, r.handle(t))
			c.featKnown = true
			err := tc.call(c)
			for _, target := range all {
				if got, want := errors.Is(err, target), slices.Contains(tc.want, target); got != want {
					t.Errorf("errors.Is(%v, %q) = %v, want %v", err, target, got, want)
				}
			}
			if !errors.Is(err, tc.errno) {
				t.Errorf("err = %v does not wrap %v", err, tc.errno)
			}
			var ie *Error
			if !errors.As(err, &ie) || ie.Op != tc.op {
				t.Errorf("err = %#v, want *Error naming %q", err, tc.op)
			}
			if errors.Is(err, ErrModuleNotFound) && !strings.Contains(err.Error(), "module not available") {
				t.Errorf("err = %v does not say what is missing", err)
			}
		})
	}
}

func TestFamilyMissing(t *testing.T) {
	nc := nltest.Dial(func(reqs []netlink.Message) ([]netlink.Message, error) {
		return nltest.Error(int(unix.ENOENT), reqs)
	})
	_, err := newClient(nc)
	if !errors.Is(err, ErrModuleNotFound) || errors.Is(err, ErrNotFound) || errors.Is(err, os.ErrNotExist) ||
		!errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "ip_vs module loaded") {
		t.Errorf("newClient without the IPVS family: %v, want ErrModuleNotFound", err)
	}
}

func TestDumpInterrupted(t *testing.T) {
	svc := func(port uint16) []byte {
		b, err := encodeServiceRequest(Service{Family: INET, Protocol: TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: port, Scheduler: "rr"}, true, 0)
		if err != nil {
			t.Fatal(err)
		}
		return genlHeader(cmdNewService, b)
	}
	var intr atomic.Bool
	nc := nltest.Dial(func(reqs []netlink.Message) ([]netlink.Message, error) {
		req := reqs[0]
		if req.Header.Type == unix.GENL_ID_CTRL {
			return familyReply(t, req), nil
		}
		h := netlink.Header{Type: testFamilyID, Sequence: req.Header.Sequence, PID: req.Header.PID}
		msgs := []netlink.Message{{Header: h, Data: svc(80)}, {Header: h, Data: svc(81)},
			{Header: netlink.Header{Type: netlink.Done, Sequence: req.Header.Sequence}, Data: make([]byte, 4)}}
		if intr.Load() {
			msgs[1].Header.Flags |= netlink.DumpInterrupted
		}
		return nltest.Multipart(msgs)
	})
	c, err := newClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	intr.Store(true)
	if _, err := c.Services(t.Context()); !errors.Is(err, ErrDumpInterrupted) || !strings.Contains(err.Error(), "list services") {
		t.Errorf("interrupted dump: %v, want ErrDumpInterrupted naming the operation", err)
	}
	intr.Store(false)
	if got, err := c.Services(t.Context()); err != nil || len(got) != 2 || got[1].Port != 81 {
		t.Errorf("dump after an interrupted one: %v, %v", got, err)
	}
}

func TestTimeouts(t *testing.T) {
	r := &recorder{replies: []reply{{cmdSetConfig, attrs(t, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(cmdAttrTimeoutTCP, 900)
		ae.Uint32(cmdAttrTimeoutTCPFin, 120)
		ae.Uint32(cmdAttrTimeoutUDP, 300)
	})}}}
	c := testClient(t, r.handle(t))
	got, err := c.Timeouts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkReq(t, r.only(t), cmdGetConfig, netlink.Request, map[string][]byte{})
	if want := (Timeouts{900 * time.Second, 120 * time.Second, 300 * time.Second}); got != want {
		t.Errorf("Timeouts() = %+v, want %+v", got, want)
	}

	r = &recorder{}
	c = testClient(t, r.handle(t))
	if err := c.SetTimeouts(t.Context(), Timeouts{TCP: time.Hour, UDP: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	checkReq(t, r.only(t), cmdSetConfig, ack, map[string][]byte{"4": le32(3600), "6": le32(2)})

	if err := c.SetTimeouts(t.Context(), Timeouts{TCP: -time.Second}); err == nil {
		t.Error("negative timeout accepted")
	}
}

func TestDaemons(t *testing.T) {
	r := &recorder{replies: []reply{
		{cmdNewDaemon, attrs(t, func(ae *netlink.AttributeEncoder) {
			kernelNest(ae, cmdAttrDaemon, func(ae *netlink.AttributeEncoder) {
				ae.Uint32(daemonAttrState, 1)
				ae.Bytes(daemonAttrMcastIfn, cstr("eth0"))
				ae.Uint32(daemonAttrSyncID, 9)
				ae.Uint16(daemonAttrSyncMaxLen, 1472)
				ae.Uint16(daemonAttrMcastPort, 8848)
				ae.Uint8(daemonAttrMcastTTL, 1)
				ae.Bytes(daemonAttrMcastGroup, ip("224.0.0.81"))
			})
		})},
		{cmdNewDaemon, attrs(t, func(ae *netlink.AttributeEncoder) {
			kernelNest(ae, cmdAttrDaemon, func(ae *netlink.AttributeEncoder) {
				ae.Uint32(daemonAttrState, 2)
				ae.Bytes(daemonAttrMcastIfn, cstr("eth1"))
				ae.Uint32(daemonAttrSyncID, 0)
				ae.Uint16(daemonAttrSyncMaxLen, 1452)
				ae.Uint16(daemonAttrMcastPort, 8848)
				ae.Uint8(daemonAttrMcastTTL, 1)
				ae.Bytes(daemonAttrMcastGroup6, ip("ff02::81"))
			})
		})},
	}}
	c := testClient(t, r.handle(t))
	got, err := c.Daemons(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkReq(t, r.only(t), cmdGetDaemon, netlink.Request|netlink.Dump, map[string][]byte{})
	want := []Daemon{
		{State: DaemonMaster, Interface: "eth0", SyncID: 9, SyncMaxLen: 1472, McastGroup: netip.MustParseAddr("224.0.0.81"), McastPort: 8848, McastTTL: 1},
		{State: DaemonBackup, Interface: "eth1", SyncMaxLen: 1452, McastGroup: netip.MustParseAddr("ff02::81"), McastPort: 8848, McastTTL: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Daemons() = %+v, want %+v", got, want)
	}

	r = &recorder{}
	c = testClient(t, r.handle(t))
	if err := c.StartDaemon(t.Context(), Daemon{State: DaemonBackup, Interface: "eth0", SyncID: 3,
		McastGroup: netip.MustParseAddr("239.1.2.3"), McastPort: 9000, McastTTL: 2, SyncMaxLen: 1400}); err != nil {
		t.Fatal(err)
	}
	checkReq(t, r.only(t), cmdNewDaemon, ack, map[string][]byte{"3/": nil, "3/1": le32(2), "3/2": cstr("eth0"),
		"3/3": le32(3), "3/4": le16(1400), "3/5": ip("239.1.2.3"), "3/7": le16(9000), "3/8": {2}})

	r = &recorder{}
	c = testClient(t, r.handle(t))
	if err := c.StartDaemon(t.Context(), Daemon{State: DaemonMaster, Interface: "eth0", McastGroup: netip.MustParseAddr("ff02::81")}); err != nil {
		t.Fatal(err)
	}
	checkReq(t, r.only(t), cmdNewDaemon, ack, map[string][]byte{"3/": nil, "3/1": le32(1), "3/2": cstr("eth0"),
		"3/3": le32(0), "3/6": ip("ff02::81")})

	r = &recorder{}
	c = testClient(t, r.handle(t))
	if err := c.StopDaemon(t.Context(), Daemon{State: DaemonMaster}); err != nil {
		t.Fatal(err)
	}
	checkReq(t, r.only(t), cmdDelDaemon, ack, map[string][]byte{"3/": nil, "3/1": le32(1)})

	if err := c.StartDaemon(t.Context(), Daemon{State: 3, Interface: "eth0"}); err == nil {
		t.Error("bad daemon state accepted")
	}
}

func TestInvalidRequests(t *testing.T) {
	r := &recorder{}
	c := testClient(t, r.handle(t))
	for name, do := range map[string]func() error{
		"no address":  func() error { return c.CreateService(t.Context(), Service{Protocol: TCP, Port: 80}) },
		"no protocol": func() error { return c.CreateService(t.Context(), Service{Address: netip.MustParseAddr("192.0.2.1")}) },
		"family mismatch": func() error {
			return c.CreateService(t.Context(), Service{Family: INET, Protocol: TCP, Address: netip.MustParseAddr("2001:db8::1")})
		},
		"long scheduler":   func() error { s := svcTCP; s.Scheduler = "abcdefghijklmnop"; return c.CreateService(t.Context(), s) },
		"v6 netmask":       func() error { s := svcV6; s.Netmask = 129; return c.CreateService(t.Context(), s) },
		"dest no address":  func() error { return c.CreateDestination(t.Context(), svcTCP, Destination{Port: 80}) },
		"laddr wrong fam":  func() error { return c.DeleteService(t.Context(), Service{Family: 3, FWMark: 1}) },
		"unknown op kind":  func() error { return c.Apply(t.Context(), &Batch{Ops: []Op{{Kind: 99}}}) },
		"daemon interface": func() error { return c.StartDaemon(t.Context(), Daemon{State: DaemonMaster}) },
	} {
		if err := do(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	for _, q := range r.reqs {
		t.Errorf("invalid request reached the kernel: cmd %d", q.cmd)
	}
}

func TestFeatureProbeErrors(t *testing.T) {
	n := 0
	c := testClient(t, func(req genlReq) ([]reply, unix.Errno) {
		n++
		return nil, unix.EPERM // GET_INFO refused: no CAP_NET_ADMIN
	})
	err := c.CreateService(t.Context(), svcTCP)
	if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "create service TCP 192.0.2.1:80") {
		t.Errorf("err = %v, want os.ErrPermission naming the operation", err)
	}
	if n != 1 {
		t.Errorf("%d requests, want only the feature probe", n)
	}
	// a failed probe is not cached: the next call asks again
	_ = c.UpdateService(t.Context(), svcTCP)
	if n != 2 {
		t.Errorf("%d requests after a second call, want 2", n)
	}
}

func TestServicesWithDestinations(t *testing.T) {
	svcReply := func(port uint16) reply {
		return reply{cmdNewService, attrs(t, func(ae *netlink.AttributeEncoder) {
			kernelNest(ae, cmdAttrService, func(ae *netlink.AttributeEncoder) {
				ae.Uint16(svcAttrAF, 2)
				ae.Uint16(svcAttrProtocol, 6)
				ae.Bytes(svcAttrAddr, ip16("192.0.2.1"))
				ae.Bytes(svcAttrPort, bebytes16(port))
				ae.Bytes(svcAttrSchedName, cstr("wlc"))
			})
		})}
	}
	destAttrs := func(ae *netlink.AttributeEncoder, port uint16) {
		kernelNest(ae, cmdAttrDest, func(ae *netlink.AttributeEncoder) {
			ae.Bytes(destAttrAddr, ip16("198.51.100.1"))
			ae.Bytes(destAttrPort, bebytes16(port))
			ae.Uint32(destAttrFwdMethod, 0)
			ae.Uint32(destAttrWeight, 1)
		})
	}
	destReply := func(port uint16) reply {
		return reply{cmdNewDest, attrs(t, func(ae *netlink.AttributeEncoder) { destAttrs(ae, port) })}
	}
	// a GET_TABLE destination: its service's key, then the destination
	tableDest := func(svcPort, port uint16) reply {
		return reply{cmdNewDest, attrs(t, func(ae *netlink.AttributeEncoder) {
			kernelNest(ae, cmdAttrService, func(ae *netlink.AttributeEncoder) {
				ae.Uint16(svcAttrAF, 2)
				ae.Uint16(svcAttrProtocol, 6)
				ae.Bytes(svcAttrAddr, ip16("192.0.2.1"))
				ae.Bytes(svcAttrPort, bebytes16(svcPort))
			})
			destAttrs(ae, port)
		})}
	}
	infoReply := func(f Features) []reply {
		return []reply{{cmdSetInfo, attrs(t, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(infoAttrVersion, 0x010201)
			ae.Uint32(infoAttrConnTabSize, 4096)
			ae.Uint32(infoAttrFeatures, uint32(f))
		})}}
	}
	check := func(t *testing.T, got []ServiceDestinations) {
		t.Helper()
		if len(got) != 2 || got[0].Service.Port != 80 || got[1].Service.Port != 443 ||
			len(got[0].Destinations) != 2 || got[0].Destinations[1].Port != 8081 || len(got[1].Destinations) != 0 {
			t.Errorf("ServicesWithDestinations() = %+v", got)
		}
	}
	// intr: how many GET_TABLE dumps come back interrupted
	for _, tc := range []struct {
		name     string
		features Features
		intr     int
		cmds     []uint8
		wantErr  error
	}{
		{"per service", FeatureFullNAT, 0, []uint8{cmdGetService, cmdGetDest, cmdGetDest}, nil},
		{"table dump", FeatureFullNAT | FeatureTableDump, 0, []uint8{cmdGetTable}, nil},
		{"table dump interrupted once", FeatureTableDump, 1, []uint8{cmdGetTable, cmdGetTable}, nil},
		{"table dump always interrupted", FeatureTableDump, 99, []uint8{cmdGetTable, cmdGetTable, cmdGetTable, cmdGetTable, cmdGetTable}, ErrDumpInterrupted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cmds []uint8
			intr := tc.intr
			c := testClientFlags(t, func(req genlReq) ([]reply, []netlink.HeaderFlags, unix.Errno) {
				if req.cmd == cmdGetInfo {
					return infoReply(tc.features), nil, 0
				}
				cmds = append(cmds, req.cmd)
				switch req.cmd {
				case cmdGetService:
					return []reply{svcReply(80), svcReply(443)}, nil, 0
				case cmdGetDest:
					n, _, _ := nestOf(req.attrs, cmdAttrService)
					s, err := decodeService(n)
					if err != nil {
						t.Error(err)
						return nil, nil, unix.EINVAL
					}
					if s.Port == 80 {
						return []reply{destReply(8080), destReply(8081)}, nil, 0
					}
					return nil, nil, 0
				case cmdGetTable:
					reps := []reply{svcReply(80), tableDest(80, 8080), tableDest(80, 8081), svcReply(443)}
					if intr > 0 {
						intr--
						// the table changed after the first part
						return reps[:3], []netlink.HeaderFlags{0, 0, netlink.DumpInterrupted}, 0
					}
					return reps, nil, 0
				}
				t.Errorf("unexpected command %d", req.cmd)
				return nil, nil, unix.EINVAL
			})
			got, err := c.ServicesWithDestinations(t.Context())
			if fmt.Sprint(cmds) != fmt.Sprint(tc.cmds) {
				t.Errorf("commands sent %v, want %v", cmds, tc.cmds)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			check(t, got)
		})
	}
}

// TestTableDumpOutOfPlace refuses a GET_TABLE destination or local address
// that does not follow its service.
func TestTableDumpOutOfPlace(t *testing.T) {
	for _, tc := range []struct {
		what      string
		cmd, nest uint8
		attr      uint16
	}{
		{"destination", cmdNewDest, cmdAttrDest, destAttrAddr},
		{"local address", cmdNewLaddr, cmdAttrLaddr, laddrAttrAddr},
	} {
		c := testClient(t, func(req genlReq) ([]reply, unix.Errno) {
			if req.cmd == cmdGetInfo {
				return []reply{{cmdSetInfo, attrs(t, func(ae *netlink.AttributeEncoder) {
					ae.Uint32(infoAttrVersion, 0x010201)
					ae.Uint32(infoAttrFeatures, uint32(FeatureTableDump|FeatureTableLaddrs))
				})}}, 0
			}
			return []reply{{tc.cmd, attrs(t, func(ae *netlink.AttributeEncoder) {
				kernelNest(ae, cmdAttrService, func(ae *netlink.AttributeEncoder) {
					ae.Uint16(svcAttrAF, 2)
					ae.Uint32(svcAttrFWMark, 7)
				})
				kernelNest(ae, uint16(tc.nest), func(ae *netlink.AttributeEncoder) {
					ae.Bytes(tc.attr, ip16("198.51.100.1"))
				})
			})}}, 0
		})
		if _, err := c.ServicesWithDestinations(t.Context()); err == nil || !strings.Contains(err.Error(), tc.what+" of") ||
			!strings.Contains(err.Error(), "out of its service's place") {
			t.Errorf("%s: error %v, want the %s out of place named", tc.what, err, tc.what)
		}
	}
}

// TestTableDumpOwnerAfterService: a destination that carries the key of
// the service listed before the last one is out of place too, even right
// after destinations that carried that key in their own service's place.
func TestTableDumpOwnerAfterService(t *testing.T) {
	svc := func(mark uint32) reply {
		return reply{cmdNewService, attrs(t, func(ae *netlink.AttributeEncoder) {
			kernelNest(ae, cmdAttrService, func(ae *netlink.AttributeEncoder) {
				ae.Uint16(svcAttrAF, 2)
				ae.Uint32(svcAttrFWMark, mark)
				ae.String(svcAttrSchedName, "rr")
				ae.Bytes(svcAttrFlags, make([]byte, 8))
				ae.Uint32(svcAttrTimeout, 0)
				ae.Uint32(svcAttrNetmask, 0xffffffff)
			})
		})}
	}
	dest := func(mark uint32, addr string) reply {
		return reply{cmdNewDest, attrs(t, func(ae *netlink.AttributeEncoder) {
			kernelNest(ae, cmdAttrService, func(ae *netlink.AttributeEncoder) {
				ae.Uint16(svcAttrAF, 2)
				ae.Uint32(svcAttrFWMark, mark)
			})
			kernelNest(ae, cmdAttrDest, func(ae *netlink.AttributeEncoder) {
				ae.Bytes(destAttrAddr, ip16(addr))
			})
		})}
	}
	for _, tc := range []struct {
		name    string
		replies []reply
		ok      bool
	}{
		{"in place", []reply{svc(7), dest(7, "198.51.100.1"), dest(7, "198.51.100.2"), svc(8), dest(8, "198.51.100.3")}, true},
		{"after the next service", []reply{svc(7), dest(7, "198.51.100.1"), svc(8), dest(7, "198.51.100.2")}, false},
		{"another service's among them", []reply{svc(7), dest(7, "198.51.100.1"), dest(8, "198.51.100.2")}, false},
	} {
		c := testClient(t, func(req genlReq) ([]reply, unix.Errno) {
			if req.cmd == cmdGetInfo {
				return []reply{{cmdSetInfo, attrs(t, func(ae *netlink.AttributeEncoder) {
					ae.Uint32(infoAttrVersion, 0x010201)
					ae.Uint32(infoAttrFeatures, uint32(FeatureTableDump))
				})}}, 0
			}
			return tc.replies, 0
		})
		got, err := c.ServicesWithDestinations(t.Context())
		switch {
		case tc.ok && (err != nil || len(got) != 2 || len(got[0].Destinations) != 2 || len(got[1].Destinations) != 1):
			t.Errorf("%s: %+v, %v", tc.name, got, err)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), "out of its service's place")):
			t.Errorf("%s: error %v, want the destination out of place", tc.name, err)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	c, s := batchClient(t, nil)
	done := make(chan error)
	for i := range 8 {
		go func() {
			var err error
			for range 50 {
				if i%2 == 0 {
					err = c.CreateService(t.Context(), svcTCP)
				} else {
					err = c.Apply(t.Context(), bigBatch(2, 2))
				}
				if err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	// every request reached the kernel whole, none lost or interleaved
	// into another exchange
	if want := 4*50 + 4*50*6; len(s.handled) != want {
		t.Errorf("kernel saw %d requests, want %d", len(s.handled), want)
	}
}

// TestTableDumpMany lists a table whose destinations fill several of the
// decoder's chunks, with runs across their ends and one service with more
// destinations than a chunk holds: each service keeps its own, in order,
// and appending to one service's never writes over the next one's.
func TestTableDumpMany(t *testing.T) {
	svcKey := func(ae *netlink.AttributeEncoder, mark uint32) {
		ae.Uint16(svcAttrAF, 2)
		ae.Uint32(svcAttrFWMark, mark)
	}
	count := func(mark uint32) int {
		if mark == 300 {
			return 2500
		}
		return int(mark % 7)
	}
	var reps []reply
	for mark := uint32(1); mark <= 700; mark++ {
		reps = append(reps, reply{cmdNewService, attrs(t, func(ae *netlink.AttributeEncoder) {
			kernelNest(ae, cmdAttrService, func(ae *netlink.AttributeEncoder) {
				svcKey(ae, mark)
				ae.String(svcAttrSchedName, "rr")
				ae.Bytes(svcAttrFlags, make([]byte, 8))
				ae.Uint32(svcAttrTimeout, 0)
				ae.Uint32(svcAttrNetmask, 0xffffffff)
			})
		})})
		for j := range count(mark) {
			reps = append(reps, reply{cmdNewDest, attrs(t, func(ae *netlink.AttributeEncoder) {
				kernelNest(ae, cmdAttrService, func(ae *netlink.AttributeEncoder) { svcKey(ae, mark) })
				kernelNest(ae, cmdAttrDest, func(ae *netlink.AttributeEncoder) {
					ae.Bytes(destAttrAddr, ip16(fmt.Sprintf("198.51.%d.%d", j/250, 1+j%250)))
					ae.Bytes(destAttrPort, bebytes16(uint16(mark)))
					ae.Uint32(destAttrWeight, uint32(j))
				})
			})})
		}
	}
	c := testClient(t, func(req genlReq) ([]reply, unix.Errno) {
		if req.cmd == cmdGetInfo {
			return []reply{{cmdSetInfo, attrs(t, func(ae *netlink.AttributeEncoder) {
				ae.Uint32(infoAttrVersion, 0x010201)
				ae.Uint32(infoAttrFeatures, uint32(FeatureTableDump))
			})}}, 0
		}
		return reps, 0
	})
	got, err := c.ServicesWithDestinations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 700 {
		t.Fatalf("%d services, want 700", len(got))
	}
	for i := range got {
		mark := uint32(i + 1)
		ds := got[i].Destinations
		if got[i].Service.FWMark != mark || len(ds) != count(mark) {
			t.Fatalf("service %d: fwmark %d with %d destinations, want %d with %d", i, got[i].Service.FWMark, len(ds), mark, count(mark))
		}
		if len(ds) == 0 && ds != nil {
			t.Errorf("fwmark %d: an empty destination list that is not nil", mark)
		}
		for j := range ds {
			if ds[j].Port != uint16(mark) || ds[j].Weight != int32(j) {
				t.Fatalf("fwmark %d destination %d: port %d weight %d", mark, j, ds[j].Port, ds[j].Weight)
			}
		}
	}
	for i := range got {
		got[i].Destinations = append(got[i].Destinations, Destination{Port: 1})
	}
	for i := range got {
		if ds := got[i].Destinations; len(ds) > 1 && ds[0].Port != uint16(i+1) {
			t.Fatalf("fwmark %d: its first destination was written over by an append to another service's", i+1)
		}
	}
}
