// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
)

// fakeGoldenKernels are the fixtures the fake kernel (ipvstest) is checked
// against: the upstream module (Options{Stock: true}) and ours with every
// extension feature (Options{}).
var fakeGoldenKernels = []string{"6.12", "6.12-ours"}

// TestFakeGolden: the fake kernel, configured as TestVMGolden configures
// the real one and asked the same requests, answers what the real one
// answered in the golden fixtures, decoded with the package's decoders
// (the counters are zero in both).
func TestFakeGolden(t *testing.T) {
	if FakeKernel == nil {
		t.Fatal("FakeKernel hook not set (ipvstest_hook_test.go)")
	}
	for _, k := range fakeGoldenKernels {
		t.Run(k, func(t *testing.T) {
			stock := !strings.HasSuffix(k, "-ours")
			c, err := NewFromDialer(FakeKernel(stock))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			checkFakeGolden(t, c, k, stock)
		})
	}
}

// checkFakeGolden replays TestVMGolden (vm_test.go) on c: the same
// objects in the same order, each fixture's request asked when the
// recorder asked it.
func checkFakeGolden(t *testing.T, c *Client, kernel string, stock bool) {
	ctx := t.Context()
	seen := map[string]bool{}
	record := func(name string, cmd uint8, flags netlink.HeaderFlags, data []byte) {
		t.Helper()
		seen[name] = true
		msgs, err := c.nc.Execute(netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(c.family), Flags: netlink.Request | flags},
			Data:   genlHeader(cmd, data),
		})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		var fake []genlMsg
		for _, m := range msgs {
			if len(m.Data) < 4 {
				t.Fatalf("%s: short message from the fake", name)
			}
			fake = append(fake, genlMsg{cmd: m.Data[0], data: m.Data[4:]})
		}
		got, want := decodeGoldenReply(t, name, fake), decodeGoldenReply(t, name, readGolden(t, kernel, name))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the fake answers\n%s\nthe kernel answered\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		raw, err := os.ReadFile(filepath.Join("..", "testdata", "ipvs", kernel, name+".bin"))
		if err != nil {
			t.Fatal(err)
		}
		kmsgs, err := splitMessages(raw)
		if err != nil {
			t.Fatal(err)
		}
		for i := range min(len(kmsgs), len(msgs)) {
			if msgs[i].Header.Flags != kmsgs[i].Header.Flags {
				t.Errorf("%s: message %d: the fake's flags %v, the kernel's %v", name, i, msgs[i].Header.Flags, kmsgs[i].Header.Flags)
			}
			// stricter than the decoders: the same attributes in the same
			// order (the counters are zero in both)
			if !bytes.Equal(msgs[i].Data, kmsgs[i].Data) {
				t.Errorf("%s: message %d: the fake's attributes (type/length)\n%s\nthe kernel's\n%s",
					name, i, attrTree(msgs[i].Data[4:], 0), attrTree(kmsgs[i].Data[4:], 0))
			}
		}
	}
	serviceReq := func(s Service) []byte {
		t.Helper()
		b, err := encodeServiceRequest(s, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	for _, s := range goldenServices {
		if err := c.CreateService(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetTimeouts(ctx, goldenTimeouts); err != nil {
		t.Fatal(err)
	}
	for _, d := range goldenDaemons {
		if err := c.StartDaemon(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	record("daemons", cmdGetDaemon, netlink.Dump, nil)
	for _, d := range goldenDaemons {
		if err := c.StopDaemon(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range goldenDests {
		if err := c.CreateDestination(ctx, goldenServices[0], d); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CreateDestination(ctx, goldenServices[2], goldenDest6); err != nil {
		t.Fatal(err)
	}
	record("info", cmdGetInfo, 0, nil)
	record("config", cmdGetConfig, 0, nil)
	for i, s := range goldenServices {
		record(goldenServiceFiles[i], cmdGetService, 0, serviceReq(s))
	}
	record("dests-tcp4", cmdGetDest, netlink.Dump, serviceReq(goldenServices[0]))
	record("dests-udp6", cmdGetDest, netlink.Dump, serviceReq(goldenServices[2]))
	if !stock {
		feat, err := c.Features(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if feat.Has(FeatureFullNAT) {
			for _, la := range goldenLaddrs {
				if err := c.CreateLocalAddress(ctx, goldenServices[0], la); err != nil {
					t.Fatal(err)
				}
			}
			record("laddrs-tcp4", cmdGetLaddr, netlink.Dump, serviceReq(goldenServices[0]))
			if err := c.CreateDestination(ctx, goldenServices[1], goldenFullNATDest); err != nil {
				t.Fatal(err)
			}
			record("dests-fnat", cmdGetDest, netlink.Dump, serviceReq(goldenServices[1]))
		}
		if feat.Has(FeatureEstTimeout) {
			if err := c.CreateService(ctx, goldenEstService); err != nil {
				t.Fatal(err)
			}
			record("service-est", cmdGetService, 0, serviceReq(goldenEstService))
		}
		if feat.Has(FeatureProxyProtocol) {
			if err := c.CreateService(ctx, goldenPPService); err != nil {
				t.Fatal(err)
			}
			record("service-pp", cmdGetService, 0, serviceReq(goldenPPService))
		}
		if feat.Has(FeatureTableLaddrs) {
			for _, s := range append([]Service{goldenEstService, goldenPPService}, goldenServices[1:]...) {
				_ = c.DeleteService(ctx, s)
			}
			record("table", cmdGetTable, netlink.Dump, nil)
		}
		if feat.Has(FeatureTableNoStats) {
			req, err := tableRequest(true)
			if err != nil {
				t.Fatal(err)
			}
			record("table-no-stats", cmdGetTable, netlink.Dump, req)
		}
	}
	// every fixture of the kernel was asked for
	files, err := filepath.Glob(filepath.Join("..", "testdata", "ipvs", kernel, "*.bin"))
	if err != nil || len(files) == 0 {
		t.Fatalf("fixtures of %s: %v", kernel, err)
	}
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".bin"); !seen[name] {
			t.Errorf("%s: the fake was not asked for %s", kernel, name)
		}
	}
}

// decodeGoldenReply decodes the replies to the request of fixture name
// with the package's decoders, one line per message: its command and what
// it decodes to.
func decodeGoldenReply(t *testing.T, name string, msgs []genlMsg) []string {
	t.Helper()
	var out []string
	for _, m := range msgs {
		var v any
		var ok bool
		var err error
		switch {
		case name == "info":
			v, err = decodeInfo(m.data)
			ok = err == nil
		case name == "config":
			v, err = decodeTimeouts(m.data)
			ok = err == nil
		case name == "daemons":
			v, ok, err = decodeDaemonMsg(m.data)
		case strings.HasPrefix(name, "service-"):
			v, ok, err = decodeServiceMsg(m.data)
		case name == "dests-udp6":
			v, ok, err = decodeDestMsg(m.data, INET6)
		case strings.HasPrefix(name, "dests-"):
			v, ok, err = decodeDestMsg(m.data, INET)
		case strings.HasPrefix(name, "laddrs-") || strings.HasPrefix(name, "table") && m.cmd == cmdNewLaddr:
			v, ok, err = decodeLaddrMsg(m.data, INET)
		case strings.HasPrefix(name, "table") && m.cmd == cmdNewService:
			v, ok, err = decodeServiceMsg(m.data)
		case strings.HasPrefix(name, "table") && m.cmd == cmdNewDest:
			v, ok, err = decodeDestMsg(m.data, INET)
		default:
			t.Fatalf("%s: no decoder", name)
		}
		out = append(out, fmt.Sprintf("cmd %d ok %v err %v: %+v", m.cmd, ok, err, v))
	}
	return out
}

// attrTree lists the attributes of b, type/length one a line, and those
// of the nests that matter here indented.
func attrTree(b []byte, depth int) string {
	var sb strings.Builder
	ad := newAttrIter(b)
	for ad.Next() {
		v := ad.Bytes()
		fmt.Fprintf(&sb, "%s%d/%d\n", strings.Repeat(" ", depth), ad.Type(), len(v))
		if len(v) >= 8 && depth < 2 && (ad.Type() <= 3 || ad.Type() == 7 || ad.Type() == 10 || ad.Type() == 12) {
			sb.WriteString(attrTree(v, depth+1))
		}
	}
	return sb.String()
}
