// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvstest

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/fullnat/fullnat/ipvs"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// getTable sends IPVS_CMD_GET_TABLE to k (a dump when dump) and returns
// the replies.
func getTable(t *testing.T, k *Kernel, dump bool) ([]netlink.Message, error) {
	t.Helper()
	return getTableAttrs(t, k, dump, nil)
}

// getTableAttrs is getTable with request attributes.
func getTableAttrs(t *testing.T, k *Kernel, dump bool, attrs []byte) ([]netlink.Message, error) {
	t.Helper()
	nc, err := k.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	flags := netlink.Request
	if dump {
		flags |= netlink.Dump
	}
	return nc.Execute(netlink.Message{Header: netlink.Header{Type: familyID, Flags: flags}, Data: append([]byte{cmdGetTable, 1, 0, 0}, attrs...)})
}

// TestGetTableNoStats: IPVS_CMD_ATTR_TABLE_FLAGS with IPVS_TABLE_F_NO_STATS
// (patch 0017) leaves the STATS and STATS64 nests out of every service and
// destination message, and nothing else; a bit the kernel does not know,
// or the attribute sent to a kernel without FeatureTableNoStats, is EINVAL.
func TestGetTableNoStats(t *testing.T) {
	k := New(Options{})
	c, err := k.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tcp := ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80}
	var b ipvs.Batch
	b.CreateService(tcp)
	b.CreateDestination(tcp, ipvs.Destination{Address: netip.MustParseAddr("198.51.100.1"), Port: 80, Weight: 1})
	if err := c.Apply(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	flags := func(v uint32) []byte {
		ae := netlink.NewAttributeEncoder()
		ae.Uint32(attrTableFlags, v)
		out, err := ae.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// the nested attributes of each message's service or destination
	nests := func(msgs []netlink.Message) []map[uint16][]byte {
		var out []map[uint16][]byte
		for _, m := range msgs {
			top, err := parse(m.Data[4:])
			if err != nil {
				t.Fatal(err)
			}
			nest := top[attrService]
			if m.Data[0] == cmdNewDest {
				nest = top[attrDest]
			}
			a, err := parse(nest)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, a)
		}
		return out
	}
	full, err := getTable(t, k, true)
	if err != nil {
		t.Fatal(err)
	}
	lean, err := getTableAttrs(t, k, true, flags(tableNoStats))
	if err != nil {
		t.Fatal(err)
	}
	fn, ln := nests(full), nests(lean)
	if len(fn) != 2 || len(ln) != 2 {
		t.Fatalf("%d messages, %d without counters; want 2", len(fn), len(ln))
	}
	for i, st := range [][2]uint16{{svcStats, svcStats64}, {destStats, destStats64}} {
		for _, a := range st {
			if _, ok := fn[i][a]; !ok {
				t.Errorf("message %d: no attribute %d in the full dump", i, a)
			}
			delete(fn[i], a)
		}
		if !reflect.DeepEqual(fn[i], ln[i]) {
			t.Errorf("message %d without counters: %v; want the full dump's less the counters: %v", i, ln[i], fn[i])
		}
	}
	if _, err := getTableAttrs(t, k, true, flags(0x2)); !errors.Is(err, unix.EINVAL) {
		t.Errorf("unknown table flag: %v, want EINVAL", err)
	}
	if _, err := getTableAttrs(t, New(Options{Features: ipvs.FeatureTableDump}), true, flags(tableNoStats)); !errors.Is(err, unix.EINVAL) {
		t.Errorf("table flags to a kernel without FeatureTableNoStats: %v, want EINVAL", err)
	}
}

// TestGetTableWire: the table dump's messages as patch 0007 lays them out:
// each service (IPVS_CMD_NEW_SERVICE) followed by its destinations
// (IPVS_CMD_NEW_DEST) newest first, a destination's message carrying its
// service's key (family, then fwmark or protocol, 16-byte address and
// port) before the destination.
func TestGetTableWire(t *testing.T) {
	k := New(Options{})
	c, err := k.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()
	tcp := ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80}
	fwm := ipvs.Service{FWMark: 9, Family: ipvs.INET6}
	var b ipvs.Batch
	b.CreateService(tcp)
	b.CreateDestination(tcp, ipvs.Destination{Address: netip.MustParseAddr("198.51.100.1"), Port: 80, Weight: 1})
	b.CreateDestination(tcp, ipvs.Destination{Address: netip.MustParseAddr("198.51.100.2"), Port: 80, Weight: 1})
	b.CreateService(fwm) // listed after the services with an address, as by the kernel
	b.CreateDestination(fwm, ipvs.Destination{Address: netip.MustParseAddr("2001:db8::1"), Port: 0, Weight: 1})
	b.CreateService(ipvs.Service{Protocol: ipvs.UDP, Address: netip.MustParseAddr("192.0.2.1"), Port: 53})
	if err := c.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	msgs, err := getTable(t, k, true)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []uint8
	var dests []string
	for _, m := range msgs {
		if m.Header.Flags&netlink.Multi == 0 {
			t.Errorf("message without NLM_F_MULTI: %+v", m.Header)
		}
		cmds = append(cmds, m.Data[0])
		if m.Data[0] != cmdNewDest {
			continue
		}
		top, err := parse(m.Data[4:])
		if err != nil {
			t.Fatal(err)
		}
		key, err := parse(top[attrService])
		if err != nil {
			t.Fatalf("destination message without its service: %v", err)
		}
		if _, ok := key[svcFWMark]; ok && (len(key) != 2 || len(key[svcAF]) != 2) ||
			!ok && (len(key) != 4 || len(key[svcAddr]) != 16 || len(key[svcPort]) != 2 || len(key[svcProtocol]) != 2) {
			t.Errorf("service key attributes %v", key)
		}
		da, err := parse(top[attrDest])
		if err != nil {
			t.Fatal(err)
		}
		a := netip.AddrFrom16([16]byte(da[destAddr]))
		if len(da[destAddrFamily]) == 2 && binary.NativeEndian.Uint16(da[destAddrFamily]) == unix.AF_INET {
			a = netip.AddrFrom4([4]byte(da[destAddr][:4])) // the first bytes of union nf_inet_addr
		}
		dests = append(dests, a.String())
	}
	if want := []uint8{cmdNewService, cmdNewDest, cmdNewDest, cmdNewService, cmdNewService, cmdNewDest}; !reflect.DeepEqual(cmds, want) {
		t.Errorf("commands %v, want %v", cmds, want)
	}
	if want := []string{"198.51.100.2", "198.51.100.1", "2001:db8::1"}; !reflect.DeepEqual(dests, want) {
		t.Errorf("destinations %v, want %v", dests, want)
	}

	if _, err := getTable(t, k, false); !errors.Is(err, unix.EOPNOTSUPP) {
		t.Errorf("GET_TABLE without NLM_F_DUMP: %v, want EOPNOTSUPP", err)
	}
	for _, opts := range []Options{{Stock: true}, {Features: ipvs.FeatureFullNAT | ipvs.FeatureConnDump}} {
		if _, err := getTable(t, New(opts), true); !errors.Is(err, unix.EOPNOTSUPP) {
			t.Errorf("%+v: GET_TABLE: %v, want EOPNOTSUPP", opts, err)
		}
	}
	nc, err := k.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Execute(netlink.Message{Header: netlink.Header{Type: familyID, Flags: netlink.Request | netlink.Acknowledge},
		Data: []byte{cmdGetConn + 1, 1, 0, 0}}); !errors.Is(err, unix.EOPNOTSUPP) {
		t.Errorf("an unknown command: %v, want EOPNOTSUPP", err)
	}
	if msgs, err := getTable(t, New(Options{}), true); err != nil || len(msgs) != 0 {
		t.Errorf("empty table: %d messages, %v", len(msgs), err)
	}
}
