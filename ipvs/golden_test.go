// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
)

// The golden fixtures in testdata/ipvs/<kernel>/ are kernel replies
// recorded in the rig's VM by TestVMGolden (vm_test.go): raw netlink
// messages, concatenated, with sequence and port id zeroed. Rewrite them
// with
//
//	rig/vmtest.sh --modules stock --run TestVMGolden ./ipvs > log
//	go run ./ipvs/internal/golden -dir testdata/ipvs < log
//
// The services, destinations and daemons below are what the recorder
// configures; the host test decodes the recordings and expects them back.

var goldenServices = []Service{
	{Family: INET, Protocol: TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80, Scheduler: "rr",
		Flags: FlagPersistent, Timeout: 300, Netmask: 0xffffff00},
	{Family: INET, Protocol: UDP, Address: netip.MustParseAddr("192.0.2.1"), Port: 5060, Scheduler: "wlc",
		Flags: FlagPersistent | FlagOnePacket, Timeout: 60, Netmask: 0xffffffff, PEName: "sip"},
	{Family: INET6, Protocol: UDP, Address: netip.MustParseAddr("2001:db8::1"), Port: 53, Scheduler: "sh",
		Flags: FlagSHFallback | FlagSHPort, Netmask: 128},
	{Family: INET6, Protocol: SCTP, Address: netip.MustParseAddr("2001:db8::1"), Port: 0, Scheduler: "mh",
		Flags: FlagPersistent | FlagMHPort, Timeout: 10, Netmask: 64},
	{Family: INET, FWMark: 7, Scheduler: "wrr", Netmask: 0xffffffff},
	{Family: INET6, FWMark: 8, Scheduler: "lc", Flags: FlagPersistent, Timeout: 3600, Netmask: 48},
}

var goldenServiceFiles = []string{"service-tcp4", "service-udp4-sip", "service-udp6", "service-sctp6", "service-fwm4", "service-fwm6"}

// goldenDests are added to goldenServices[0] in this order (the kernel
// lists them newest first).
var goldenDests = []Destination{
	{Family: INET, Address: netip.MustParseAddr("198.51.100.11"), Port: 8080, ForwardMethod: Masquerade, Weight: 2147483647,
		UpperThreshold: 1000, LowerThreshold: 10},
	{Family: INET, Address: netip.MustParseAddr("198.51.100.12"), Port: 80, ForwardMethod: DirectRoute, Weight: 0},
	{Family: INET, Address: netip.MustParseAddr("198.51.100.13"), Port: 80, ForwardMethod: Tunnel, Weight: 3,
		TunnelType: TunnelGUE, TunnelPort: 6080, TunnelFlags: TunnelRemoteChecksum},
	{Family: INET, Address: netip.MustParseAddr("198.51.100.14"), Port: 80, ForwardMethod: Tunnel, Weight: 4,
		TunnelType: TunnelGRE, TunnelFlags: TunnelChecksum},
	{Family: INET6, Address: netip.MustParseAddr("2001:db8:2::15"), Port: 80, ForwardMethod: Tunnel, Weight: 5},
}

// goldenDest6 is added to goldenServices[2].
var goldenDest6 = Destination{Family: INET6, Address: netip.MustParseAddr("2001:db8:2::11"), Port: 53, ForwardMethod: Masquerade, Weight: 1}

var goldenDaemons = []Daemon{
	{State: DaemonMaster, Interface: "sync0", SyncID: 5},
	{State: DaemonBackup, Interface: "sync0", SyncID: 6, McastGroup: netip.MustParseAddr("239.1.1.1"), McastPort: 9000, McastTTL: 3, SyncMaxLen: 1200},
}

// goldenDaemonsListed is what the kernel reports for goldenDaemons.
var goldenDaemonsListed = []Daemon{
	{State: DaemonMaster, Interface: "sync0", SyncID: 5, SyncMaxLen: 1472, McastGroup: netip.MustParseAddr("224.0.0.81"), McastPort: 8848, McastTTL: 1},
	goldenDaemons[1],
}

var goldenTimeouts = Timeouts{TCP: 901 * time.Second, TCPFin: 121 * time.Second, UDP: 301 * time.Second}

// The extension's fixtures (module set "ours", directories <kernel>-ours).
var (
	goldenLaddrs      = []LocalAddress{{Address: netip.MustParseAddr("203.0.113.1")}, {Address: netip.MustParseAddr("203.0.113.2")}}
	goldenFullNATDest = Destination{Family: INET, Address: netip.MustParseAddr("198.51.100.21"), Port: 5060, ForwardMethod: FullNAT, Weight: 2}
	goldenEstService  = Service{Family: INET, Protocol: TCP, Address: netip.MustParseAddr("192.0.2.3"), Port: 443, Scheduler: "wlc",
		Netmask: 0xffffffff, EstablishedTimeout: 600}
	goldenPPService = Service{Family: INET, Protocol: TCP, Address: netip.MustParseAddr("192.0.2.4"), Port: 443, Scheduler: "rr",
		Netmask: 0xffffffff, ProxyProtocol: ProxyProtocolV2}
)

// goldenKernels are the kernels fixtures must exist for: Debian's stock
// modules, and ours (kmod/) with the features it had when recorded.
var goldenKernels = []string{"6.1", "6.12", "6.1-ours", "6.12-ours"}

// readGolden returns the IPVS payloads (after the genetlink header) of the
// recorded messages in file name.
func readGolden(t *testing.T, kernel, name string) []genlMsg {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "ipvs", kernel, name+".bin"))
	if err != nil {
		t.Fatalf("golden fixture: %v", err)
	}
	msgs, err := splitMessages(b)
	if err != nil {
		t.Fatalf("%s/%s: %v", kernel, name, err)
	}
	var out []genlMsg
	for _, m := range msgs {
		if len(m.Data) < 4 {
			t.Fatalf("%s/%s: short message", kernel, name)
		}
		out = append(out, genlMsg{cmd: m.Data[0], data: m.Data[4:]})
	}
	if len(out) == 0 {
		t.Fatalf("%s/%s: no messages", kernel, name)
	}
	return out
}

// splitMessages parses concatenated netlink messages.
func splitMessages(b []byte) ([]netlink.Message, error) {
	var out []netlink.Message
	for len(b) > 0 {
		if len(b) < 16 {
			return nil, errors.New("trailing bytes")
		}
		var m netlink.Message
		if err := m.UnmarshalBinary(b); err != nil {
			return nil, err
		}
		l := int(m.Header.Length)
		l = (l + 3) &^ 3
		if l > len(b) {
			l = len(b)
		}
		m.Data = bytes.Clone(m.Data)
		out = append(out, m)
		b = b[l:]
	}
	return out, nil
}

func TestGolden(t *testing.T) {
	for _, k := range goldenKernels {
		t.Run(k, func(t *testing.T) {
			ours := strings.HasSuffix(k, "-ours")
			info, err := decodeInfo(readGolden(t, k, "info")[0].data)
			wantFeat := Features(0)
			if ours {
				wantFeat = info.Features // whatever the module had; checked below
			}
			if err != nil || info != (Info{Version{1, 2, 1}, 4096, wantFeat}) {
				t.Errorf("info = %+v, %v", info, err)
			}
			if ours {
				checkGoldenExtension(t, k, info.Features)
			}
			tm, err := decodeTimeouts(readGolden(t, k, "config")[0].data)
			if err != nil || tm != goldenTimeouts {
				t.Errorf("config = %+v, %v", tm, err)
			}
			for i, name := range goldenServiceFiles {
				m := readGolden(t, k, name)[0]
				if m.cmd != cmdNewService {
					t.Errorf("%s: reply cmd %d", name, m.cmd)
				}
				s, ok, err := decodeServiceMsg(m.data)
				if err != nil || !ok {
					t.Fatalf("%s: %v", name, err)
				}
				if s.Flags&FlagHashed == 0 {
					t.Errorf("%s: HASHED missing", name)
				}
				s.Flags &^= FlagHashed
				if s != goldenServices[i] {
					t.Errorf("%s =\n%+v, want\n%+v", name, s, goldenServices[i])
				}
			}
			var ds []Destination
			for _, m := range readGolden(t, k, "dests-tcp4") {
				d, ok, err := decodeDestMsg(m.data, INET)
				if err != nil || !ok || m.cmd != cmdNewDest {
					t.Fatalf("dests-tcp4: cmd %d %v", m.cmd, err)
				}
				ds = append(ds, d)
			}
			if len(ds) != len(goldenDests) {
				t.Fatalf("dests-tcp4: %d destinations", len(ds))
			}
			for i, d := range ds {
				if want := goldenDests[len(ds)-1-i]; d != want {
					t.Errorf("dests-tcp4[%d] =\n%+v, want\n%+v", i, d, want)
				}
			}
			m := readGolden(t, k, "dests-udp6")
			if d, _, err := decodeDestMsg(m[0].data, INET6); len(m) != 1 || err != nil || d != goldenDest6 {
				t.Errorf("dests-udp6 = %+v, %v", d, err)
			}
			var dms []Daemon
			for _, m := range readGolden(t, k, "daemons") {
				d, ok, err := decodeDaemonMsg(m.data)
				if err != nil || !ok || m.cmd != cmdNewDaemon {
					t.Fatalf("daemons: cmd %d %v", m.cmd, err)
				}
				dms = append(dms, d)
			}
			if !reflect.DeepEqual(dms, goldenDaemonsListed) {
				t.Errorf("daemons = %+v, want %+v", dms, goldenDaemonsListed)
			}
		})
	}
}

// checkGoldenExtension decodes the extension's fixtures of module set
// "ours". The module must report at least FULLNAT and the ESTABLISHED
// timeout (what it had when the fixtures were first recorded); a module
// with the PROXY protocol has its service fixture too.
func checkGoldenExtension(t *testing.T, k string, f Features) {
	if !f.Has(FeatureFullNAT | FeatureEstTimeout) {
		t.Fatalf("%s: module features %v lack fullnat|est-timeout", k, f)
	}
	var las []LocalAddress
	for _, m := range readGolden(t, k, "laddrs-tcp4") {
		la, ok, err := decodeLaddrMsg(m.data, INET)
		if err != nil || !ok || m.cmd != cmdNewLaddr {
			t.Fatalf("laddrs-tcp4: cmd %d %v", m.cmd, err)
		}
		las = append(las, la)
	}
	if len(las) != len(goldenLaddrs) {
		t.Fatalf("laddrs-tcp4: %+v", las)
	}
	for _, want := range goldenLaddrs {
		found := false
		for _, la := range las {
			found = found || la == want
		}
		if !found {
			t.Errorf("laddrs-tcp4 lacks %v: %+v", want.Address, las)
		}
	}
	m := readGolden(t, k, "dests-fnat")
	if d, _, err := decodeDestMsg(m[0].data, INET); len(m) != 1 || err != nil || d != goldenFullNATDest {
		t.Errorf("dests-fnat = %+v, %v", d, err)
	}
	s, _, err := decodeServiceMsg(readGolden(t, k, "service-est")[0].data)
	s.Flags &^= FlagHashed
	if err != nil || s != goldenEstService {
		t.Errorf("service-est = %+v, %v", s, err)
	}
	if f.Has(FeatureProxyProtocol) {
		s, _, err := decodeServiceMsg(readGolden(t, k, "service-pp")[0].data)
		s.Flags &^= FlagHashed
		if err != nil || s != goldenPPService {
			t.Errorf("service-pp = %+v, %v", s, err)
		}
	}
}
