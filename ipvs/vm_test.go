//go:build vmtest

// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// These tests run as root inside the rig's VM against a real kernel (see
// rig/README.md). Each works in its own network namespace.

func TestMain(m *testing.M) {
	if os.Getenv("IPVS_VM_CHILD") == "unprivileged" {
		os.Exit(unprivilegedChild())
	}
	if out, err := exec.Command("modprobe", "ip_vs").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "modprobe ip_vs: %v\n%s", err, out)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

var nsCount int

// nsClient creates a fresh network namespace and a client in it.
func nsClient(t *testing.T) (*Client, vmnet.NS) {
	t.Helper()
	nsCount++
	ns := vmnet.Add(t, fmt.Sprintf("ipvs%d", nsCount))
	c, err := NewInNamespace("/run/netns/" + string(ns))
	if err != nil {
		t.Fatalf("NewInNamespace: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, ns
}

func stockModules() bool { return os.Getenv("RIG_MODULES") != "ours" }

// resizableTables: from 7.x each namespace has its own connection and service tables, made
// with the first service and resized with the load (upstream's rework of IPVS hashing); the
// rig's kernels before that have one connection table of 2^12 buckets.
func resizableTables() bool { return !strings.HasPrefix(os.Getenv("RIG_KERNEL"), "6.") }

// strip clears what the kernel fills in (stats, counters, HASHED).
func strip(s Service) Service {
	s.Stats, s.Stats64 = Stats{}, Stats{}
	s.Flags &^= FlagHashed
	return s
}

func stripDest(d Destination) Destination {
	d.Stats, d.Stats64 = Stats{}, Stats{}
	d.ActiveConns, d.InactiveConns, d.PersistConns = 0, 0, 0
	return d
}

func TestVMInfo(t *testing.T) {
	c, _ := nsClient(t)
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !resizableTables() && (info.Version != (Version{1, 2, 1}) || info.ConnTableSize != 4096) {
		t.Errorf("Info() = %+v, want version 1.2.1 and table size 4096", info)
	}
	if resizableTables() {
		// No table before the first service; then 2^8 (IP_VS_CONN_TAB_MIN_BITS) up to
		// 2^conn_tab_bits (4096 in the rig), a power of two.
		if info.Version != (Version{1, 2, 1}) || info.ConnTableSize != 0 {
			t.Errorf("Info() = %+v, want version 1.2.1 and no table yet (size 0)", info)
		}
		if err := c.CreateService(t.Context(), Service{Protocol: TCP, Address: netip.MustParseAddr("198.18.0.1"), Port: 80, Scheduler: "rr"}); err != nil {
			t.Fatal(err)
		}
		info, err = c.Info(t.Context())
		if n := info.ConnTableSize; err != nil || n < 256 || n > 4096 || n&(n-1) != 0 {
			t.Errorf("Info() with a service = %+v, %v; want a table of 256 to 4096 buckets, a power of two", info, err)
		}
	}
	if stockModules() && info.Features != 0 {
		t.Errorf("stock module reports features %v", info.Features)
	}
	t.Logf("kernel %s modules %s: %+v features %v", os.Getenv("RIG_KERNEL"), os.Getenv("RIG_MODULES"), info, info.Features)
}

// vmSvcs are the services of golden_test.go.
var vmSvcs = goldenServices

func TestVMServices(t *testing.T) {
	c, ns := nsClient(t)
	for _, s := range vmSvcs {
		if err := c.CreateService(t.Context(), s); err != nil {
			t.Fatalf("CreateService(%v): %v", s, err)
		}
	}
	got, err := c.Services(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(vmSvcs) {
		t.Fatalf("Services() returned %d, want %d: %+v", len(got), len(vmSvcs), got)
	}
	byKey := map[string]Service{}
	for _, s := range got {
		if s.Flags&FlagHashed == 0 {
			t.Errorf("%v: kernel did not report HASHED", s)
		}
		byKey[s.String()] = strip(s)
	}
	for _, want := range vmSvcs {
		if g := byKey[want.String()]; g != want {
			t.Errorf("listed %v =\n%+v, want\n%+v", want, g, want)
		}
		one, err := c.Service(t.Context(), want)
		if err != nil {
			t.Errorf("Service(%v): %v", want, err)
		} else if strip(one) != want {
			t.Errorf("Service(%v) = %+v", want, one)
		}
	}
	// The reference tool reads what we wrote.
	save := ns.Run(t, "/usr/sbin/ipvsadm", "-Sn")
	for _, line := range []string{
		"-A -t 192.0.2.1:80 -s rr -p 300 -M 255.255.255.0",
		"-A -u 192.0.2.1:5060 -s wlc -p 60 --pe sip -o",
		"-A -u [2001:db8::1]:53 -s sh -b sh-fallback,sh-port",
		"-A --sctp-service [2001:db8::1]:0 -s mh -p 10 -M 64 -b mh-port",
		"-A -f 7 -s wrr",
		"-A -f 8 -6 -s lc -p 3600 -M 48",
	} {
		if !strings.Contains(save, line+"\n") && !strings.Contains(save, line+" \n") {
			t.Errorf("ipvsadm -Sn lacks %q:\n%s", line, save)
		}
	}

	// Errors.
	if err := c.CreateService(t.Context(), vmSvcs[0]); !errors.Is(err, os.ErrExist) {
		t.Errorf("duplicate CreateService: %v, want os.ErrExist", err)
	}
	missing := Service{Protocol: TCP, Address: netip.MustParseAddr("192.0.2.99"), Port: 1}
	if _, err := c.Service(t.Context(), missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Service(missing): %v, want os.ErrNotExist", err)
	}
	if err := c.DeleteService(t.Context(), missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DeleteService(missing): %v, want os.ErrNotExist", err)
	}
	if err := c.UpdateService(t.Context(), missing); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrModuleNotFound) {
		t.Errorf("UpdateService(missing): %v, want ErrNotFound", err)
	}
	bad := missing
	bad.Scheduler = "nosuch"
	if err := c.CreateService(t.Context(), bad); !errors.Is(err, ErrModuleNotFound) || errors.Is(err, ErrNotFound) || errors.Is(err, os.ErrNotExist) ||
		!strings.Contains(err.Error(), "create service TCP 192.0.2.99:1") {
		t.Errorf("unknown scheduler: %v, want ErrModuleNotFound (not ErrNotFound) naming the service", err)
	}
	bad.Scheduler, bad.PEName = "rr", "nosuch"
	if err := c.CreateService(t.Context(), bad); !errors.Is(err, ErrModuleNotFound) || errors.Is(err, ErrNotFound) {
		t.Errorf("unknown persistence engine: %v, want ErrModuleNotFound", err)
	}
	unknown := vmSvcs[0]
	unknown.Scheduler = "nosuch"
	if err := c.UpdateService(t.Context(), unknown); !errors.Is(err, ErrModuleNotFound) {
		t.Errorf("update to an unknown scheduler: %v, want ErrModuleNotFound", err)
	}
	if err := c.DeleteDestination(t.Context(), vmSvcs[0], Destination{Address: netip.MustParseAddr("192.0.2.250"), Port: 80}); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteDestination(missing): %v, want ErrNotFound", err)
	}

	// Update replaces settings.
	u := vmSvcs[0]
	u.Scheduler, u.Flags, u.Timeout, u.Netmask = "wlc", 0, 0, 0xffffffff
	if err := c.UpdateService(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if g, err := c.Service(t.Context(), u); err != nil || strip(g) != u {
		t.Errorf("after update: %+v, %v; want %+v", g, err, u)
	}

	for _, s := range vmSvcs {
		if err := c.DeleteService(t.Context(), s); err != nil {
			t.Errorf("DeleteService(%v): %v", s, err)
		}
	}
	if got, err := c.Services(t.Context()); err != nil || len(got) != 0 {
		t.Errorf("after delete: %v, %v", got, err)
	}
}

func TestVMDestinations(t *testing.T) {
	c, ns := nsClient(t)
	svc := vmSvcs[0]
	svc6 := vmSvcs[2]
	for _, s := range []Service{svc, svc6} {
		if err := c.CreateService(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	dests := []Destination{
		{Family: INET, Address: netip.MustParseAddr("198.51.100.11"), Port: 8080, ForwardMethod: Masquerade, Weight: 2147483647,
			UpperThreshold: 1000, LowerThreshold: 10},
		{Family: INET, Address: netip.MustParseAddr("198.51.100.12"), Port: 80, ForwardMethod: DirectRoute, Weight: 0},
		{Family: INET, Address: netip.MustParseAddr("198.51.100.13"), Port: 80, ForwardMethod: Tunnel, Weight: 3,
			TunnelType: TunnelGUE, TunnelPort: 6080, TunnelFlags: TunnelRemoteChecksum},
		{Family: INET, Address: netip.MustParseAddr("198.51.100.14"), Port: 80, ForwardMethod: Tunnel, Weight: 4,
			TunnelType: TunnelGRE, TunnelFlags: TunnelChecksum},
		// mixed family: only tunnelling may cross families
		{Family: INET6, Address: netip.MustParseAddr("2001:db8:2::15"), Port: 80, ForwardMethod: Tunnel, Weight: 5},
	}
	for _, d := range dests {
		if err := c.CreateDestination(t.Context(), svc, d); err != nil {
			t.Fatalf("CreateDestination(%v): %v", d, err)
		}
	}
	d6 := Destination{Family: INET6, Address: netip.MustParseAddr("2001:db8:2::11"), Port: 53, ForwardMethod: Masquerade, Weight: 1}
	if err := c.CreateDestination(t.Context(), svc6, d6); err != nil {
		t.Fatal(err)
	}
	got, err := c.Destinations(t.Context(), svc)
	if err != nil {
		t.Fatal(err)
	}
	// the kernel lists newest first
	if len(got) != len(dests) {
		t.Fatalf("Destinations() = %d entries, want %d", len(got), len(dests))
	}
	for i, d := range got {
		if want := dests[len(dests)-1-i]; stripDest(d) != want {
			t.Errorf("destination %d = %+v, want %+v", i, stripDest(d), want)
		}
	}
	if got, err := c.Destinations(t.Context(), svc6); err != nil || len(got) != 1 || stripDest(got[0]) != d6 {
		t.Errorf("Destinations(v6) = %+v, %v", got, err)
	}
	list := ns.Run(t, "/usr/sbin/ipvsadm", "-Ln", "-t", "192.0.2.1:80")
	for _, want := range []string{
		"TCP  192.0.2.1:80 rr persistent 300 mask 255.255.255.0\n",
		"-> 198.51.100.11:8080           Masq    2147483647 0          0",
		"-> 198.51.100.12:80             Route   0      0          0",
		"-> 198.51.100.13:80             Tunnel  3      0          0",
		"-> [2001:db8:2::15]:80          Tunnel  5      0          0",
	} {
		if !strings.Contains(list, want) {
			t.Errorf("ipvsadm -Ln lacks %q:\n%s", want, list)
		}
	}

	// update and errors
	u := dests[1]
	u.Weight, u.ForwardMethod = 7, Masquerade
	if err := c.UpdateDestination(t.Context(), svc, u); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Destinations(t.Context(), svc); stripDest(got[len(got)-2]) != u {
		t.Errorf("after update: %+v, want %+v", got[len(got)-2], u)
	}
	if err := c.CreateDestination(t.Context(), svc, dests[0]); !errors.Is(err, os.ErrExist) {
		t.Errorf("duplicate: %v", err)
	}
	missing := Destination{Address: netip.MustParseAddr("198.51.100.99"), Port: 80, Weight: 1}
	if err := c.UpdateDestination(t.Context(), svc, missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("update missing: %v", err)
	}
	if err := c.DeleteDestination(t.Context(), svc, missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("delete missing: %v", err)
	}
	nosvc := Service{Protocol: TCP, Address: netip.MustParseAddr("192.0.2.99"), Port: 1}
	if err := c.CreateDestination(t.Context(), nosvc, missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dest of missing service: %v", err)
	}
	if err := c.CreateDestination(t.Context(), svc, Destination{Address: netip.MustParseAddr("198.51.100.98"), Port: 80, Weight: -1}); !errors.Is(err, syscall.ERANGE) {
		t.Errorf("negative weight: %v, want ERANGE", err)
	}
	if ds, err := c.Destinations(t.Context(), nosvc); err != nil || len(ds) != 0 {
		t.Errorf("Destinations(missing service) = %v, %v; want empty", ds, err)
	}
	for _, d := range dests {
		if err := c.DeleteDestination(t.Context(), svc, d); err != nil {
			t.Errorf("DeleteDestination(%v): %v", d, err)
		}
	}
	if got, _ := c.Destinations(t.Context(), svc); len(got) != 0 {
		t.Errorf("left: %+v", got)
	}
}

func TestVMTimeoutsZeroFlush(t *testing.T) {
	c, ns := nsClient(t)
	def, err := c.Timeouts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if def != (Timeouts{900 * time.Second, 120 * time.Second, 300 * time.Second}) {
		t.Errorf("default timeouts %+v", def)
	}
	if err := c.SetTimeouts(t.Context(), Timeouts{TCP: 1000 * time.Second, UDP: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Timeouts(t.Context()); got != (Timeouts{1000 * time.Second, 120 * time.Second, 30 * time.Second}) {
		t.Errorf("after set: %+v", got)
	}
	if out := ns.Run(t, "/usr/sbin/ipvsadm", "-L", "--timeout"); !strings.Contains(out, "Timeout (tcp tcpfin udp): 1000 120 30") {
		t.Errorf("ipvsadm sees %q", out)
	}
	for _, s := range vmSvcs[:2] {
		if err := c.CreateService(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.ZeroService(t.Context(), vmSvcs[0]); err != nil {
		t.Error(err)
	}
	if err := c.ZeroService(t.Context(), Service{Protocol: TCP, Address: netip.MustParseAddr("192.0.2.99"), Port: 1}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("zero missing: %v", err)
	}
	if err := c.ZeroAll(t.Context()); err != nil {
		t.Error(err)
	}
	if err := c.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Services(t.Context()); len(got) != 0 {
		t.Errorf("after flush: %+v", got)
	}
}

func TestVMDaemons(t *testing.T) {
	c, ns := nsClient(t)
	ns.Run(t, vmnet.IP, "link", "add", "sync0", "type", "dummy")
	ns.Run(t, vmnet.IP, "link", "set", "sync0", "up", "mtu", "1500")
	ns.Addr(t, "sync0", "192.0.2.50/24")
	if ds, err := c.Daemons(t.Context()); err != nil || len(ds) != 0 {
		t.Fatalf("Daemons() before start = %v, %v", ds, err)
	}
	m := Daemon{State: DaemonMaster, Interface: "sync0", SyncID: 5}
	if err := c.StartDaemon(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	b := Daemon{State: DaemonBackup, Interface: "sync0", SyncID: 6, McastGroup: netip.MustParseAddr("239.1.1.1"), McastPort: 9000, McastTTL: 3, SyncMaxLen: 1200}
	if err := c.StartDaemon(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if err := c.StartDaemon(t.Context(), m); !errors.Is(err, os.ErrExist) {
		t.Errorf("second master: %v", err)
	}
	ds, err := c.Daemons(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []Daemon{
		{State: DaemonMaster, Interface: "sync0", SyncID: 5, SyncMaxLen: 1472, McastGroup: netip.MustParseAddr("224.0.0.81"), McastPort: 8848, McastTTL: 1},
		b,
	}
	if !reflect.DeepEqual(ds, want) {
		t.Errorf("Daemons() = %+v, want %+v", ds, want)
	}
	if err := c.StartDaemon(t.Context(), Daemon{State: DaemonMaster, Interface: "nosuch0"}); err == nil {
		t.Error("daemon on missing interface started")
	}
	for _, d := range []Daemon{m, b} {
		if err := c.StopDaemon(t.Context(), d); err != nil {
			t.Errorf("StopDaemon(%v): %v", d.State, err)
		}
	}
	if err := c.StopDaemon(t.Context(), m); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stop stopped daemon: %v", err)
	}
}

func TestVMNamespaces(t *testing.T) {
	a, _ := nsClient(t)
	b, _ := nsClient(t)
	if err := a.CreateService(t.Context(), vmSvcs[0]); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Services(t.Context()); err != nil || len(got) != 0 {
		t.Errorf("other namespace sees %+v, %v", got, err)
	}
	if got, err := a.Services(t.Context()); err != nil || len(got) != 1 {
		t.Errorf("own namespace sees %+v, %v", got, err)
	}
	// the same service may exist in both
	if err := b.CreateService(t.Context(), vmSvcs[0]); err != nil {
		t.Errorf("same service in second namespace: %v", err)
	}
	// the client stays in its namespace whatever thread calls it
	done := make(chan error)
	for range 4 {
		go func() {
			runtime.LockOSThread()
			_, err := a.Service(t.Context(), vmSvcs[0])
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Errorf("concurrent Service(): %v", err)
		}
	}
}

func TestVMUnprivileged(t *testing.T) {
	c, _ := nsClient(t)
	if err := c.CreateService(t.Context(), vmSvcs[0]); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "IPVS_VM_CHILD=unprivileged")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("unprivileged child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "PERMISSION-OK") {
		t.Errorf("child output:\n%s", out)
	}
	t.Logf("child: %s", out)
}

// unprivilegedChild runs as nobody: every request must fail with EPERM.
func unprivilegedChild() int {
	c, err := New()
	if err != nil {
		fmt.Println("New:", err)
		return 1
	}
	defer c.Close()
	fails := 0
	check := func(what string, err error) {
		if !errors.Is(err, os.ErrPermission) {
			fmt.Printf("%s: %v, want os.ErrPermission\n", what, err)
			fails++
		}
	}
	_, err = c.Services(context.Background())
	check("Services", err)
	_, err = c.Info(context.Background())
	check("Info", err)
	check("CreateService", c.CreateService(context.Background(), vmSvcs[1]))
	check("Flush", c.Flush(context.Background()))
	var last error = errors.New("no error and no entry")
	for _, err := range c.Connections(context.Background()) {
		last = err
	}
	check("Connections", last)
	if fails > 0 {
		return 1
	}
	fmt.Println("PERMISSION-OK", os.Getuid())
	return 0
}

func TestVMExtensionGate(t *testing.T) {
	c, ns := nsClient(t)
	// A local address must be an address of the director's namespace.
	ns.Addr(t, "lo", "198.51.100.1/32")
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	svc := vmSvcs[0]
	if err := c.CreateService(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	fn := Destination{Address: netip.MustParseAddr("198.51.100.11"), Port: 80, ForwardMethod: FullNAT, Weight: 1}
	la := LocalAddress{Address: netip.MustParseAddr("198.51.100.1")}
	syn := svc
	syn.Flags |= FlagSynProxy
	est := svc
	est.EstablishedTimeout = 77
	cases := []struct {
		name string
		f    Features
		do   func() error
	}{
		{"fullnat dest", FeatureFullNAT, func() error { return c.CreateDestination(t.Context(), svc, fn) }},
		{"laddr", FeatureFullNAT, func() error { return c.CreateLocalAddress(t.Context(), svc, la) }},
		// last: an update sets every flag, so the est timeout case
		// would clear SYNPROXY again
		{"est timeout", FeatureEstTimeout, func() error { return c.UpdateService(t.Context(), est) }},
		{"synproxy", FeatureSynProxy, func() error { return c.UpdateService(t.Context(), syn) }},
	}
	for _, tc := range cases {
		err := tc.do()
		if info.Features.Has(tc.f) {
			if err != nil {
				t.Errorf("%s with the feature present: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrNotSupported) {
			t.Errorf("%s without the feature: %v, want ErrNotSupported", tc.name, err)
		}
	}
	if stockModules() {
		// nothing was half-applied
		got, err := c.Service(t.Context(), svc)
		if err != nil || strip(got) != svc {
			t.Errorf("service changed: %+v, %v", got, err)
		}
		if ds, _ := c.Destinations(t.Context(), svc); len(ds) != 0 {
			t.Errorf("destinations appeared: %+v", ds)
		}
	}
	if info.Features.Has(FeatureFullNAT) {
		las, err := c.LocalAddresses(t.Context(), svc)
		if err != nil || len(las) != 1 || las[0].Address != la.Address {
			t.Errorf("LocalAddresses() = %+v, %v", las, err)
		}
		if err := c.CreateLocalAddress(t.Context(), svc, la); !errors.Is(err, os.ErrExist) {
			t.Errorf("duplicate laddr: %v", err)
		}
		if err := c.DeleteLocalAddress(t.Context(), svc, la); err != nil {
			t.Error(err)
		}
		if err := c.DeleteLocalAddress(t.Context(), svc, la); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("delete missing laddr: %v", err)
		}
		ds, _ := c.Destinations(t.Context(), svc)
		if len(ds) != 1 || ds[0].ForwardMethod != FullNAT {
			t.Errorf("FULLNAT destination reads back as %+v", ds)
		}
	}
	if info.Features.Has(FeatureSynProxy) {
		if got, _ := c.Service(t.Context(), svc); got.Flags&FlagSynProxy == 0 {
			t.Errorf("SYNPROXY flag not kept: %v", got.Flags)
		}
	}
}

// TestVMCancelDump interrupts dumps of a large table half-way (a deadline
// of half the time a whole dump takes) and checks that the next call gets
// the whole table: the abandoned dump's replies are not read by it.
func TestVMCancelDump(t *testing.T) {
	c, _ := nsClient(t)
	const n = 8000
	var b Batch
	b.Grow(n)
	for i := range n {
		b.CreateService(Service{Protocol: UDP, Address: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), Port: 53, Scheduler: "rr"})
	}
	if err := c.Apply(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	interrupted := 0
	for range 4 {
		start := time.Now()
		svcs, err := c.Services(t.Context())
		if err != nil || len(svcs) != n {
			t.Fatalf("Services() = %d, %v; want %d", len(svcs), err, n)
		}
		whole := time.Since(start)
		ctx, cancel := context.WithTimeout(t.Context(), whole/2)
		_, err = c.Services(ctx)
		cancel()
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			interrupted++
		case err != nil:
			t.Fatalf("Services with a deadline of %v: %v, want nil or context.DeadlineExceeded", whole/2, err)
		}
	}
	if interrupted == 0 {
		t.Fatal("no dump was interrupted by a deadline of half its duration")
	}
	svcs, err := c.Services(t.Context())
	if err != nil || len(svcs) != n {
		t.Fatalf("after %d interrupted dumps: Services() = %d, %v; want %d", interrupted, len(svcs), err, n)
	}
	t.Logf("%d of 4 dumps interrupted, the next ones whole", interrupted)
}

func TestVMBatch(t *testing.T) {
	c, _ := nsClient(t)
	var b Batch
	for i := range 50 {
		s := Service{Protocol: TCP, Address: netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}), Port: 80, Scheduler: "rr"}
		b.CreateService(s)
		for j := range 3 {
			b.CreateDestination(s, Destination{Address: netip.AddrFrom4([4]byte{198, 19, byte(i), byte(j)}), Port: 80, Weight: 1, ForwardMethod: DirectRoute})
		}
	}
	dup := b.Ops[0]
	b.Add(dup)                                                                                                             // index 200: EEXIST
	b.Add(Op{Kind: OpDeleteService, Service: Service{Protocol: TCP, Address: netip.MustParseAddr("198.18.9.9"), Port: 1}}) // 201: ESRCH
	err := c.Apply(t.Context(), &b)
	var be *BatchError
	if !errors.As(err, &be) || len(be.Failed) != 2 || be.Failed[0].Index != 200 || be.Failed[1].Index != 201 ||
		!errors.Is(be.Failed[0], os.ErrExist) || !errors.Is(be.Failed[1], os.ErrNotExist) {
		t.Fatalf("Apply: %v, want failures at 200 (exists) and 201 (missing)", err)
	}
	svcs, err := c.Services(t.Context())
	if err != nil || len(svcs) != 50 {
		t.Fatalf("Services() = %d, %v", len(svcs), err)
	}
	all, err := c.ServicesWithDestinations(t.Context()) // parallel helper sockets
	if err != nil || len(all) != 50 {
		t.Fatalf("ServicesWithDestinations() = %d, %v", len(all), err)
	}
	// The same services in the same order as Services(), except where the kernel's service
	// table is resized (from 7.x, by a work item after the services were added), which
	// changes the order of a dump: then the same services with the same destinations.
	byService := make(map[Service][]Destination, len(all))
	for _, sd := range all {
		byService[sd.Service] = sd.Destinations
	}
	for i, s := range svcs {
		ds, err := c.Destinations(t.Context(), s)
		if err != nil || len(ds) != 3 {
			t.Errorf("Destinations(%v) = %d, %v", s, len(ds), err)
		}
		if resizableTables() {
			if got, ok := byService[s]; !ok || !reflect.DeepEqual(got, ds) {
				t.Errorf("ServicesWithDestinations() has %v with %+v (listed %v), want %+v", s, got, ok, ds)
			}
		} else if all[i].Service != s || !reflect.DeepEqual(all[i].Destinations, ds) {
			t.Errorf("ServicesWithDestinations()[%d] = %+v, want %v with %+v", i, all[i], s, ds)
		}
	}
	if len(byService) != len(svcs) {
		t.Errorf("ServicesWithDestinations() lists %d distinct services, want %d", len(byService), len(svcs))
	}
	// our module lists in one GET_TABLE dump; without it the per-service
	// dumps run in parallel on helper sockets
	if f, err := c.Features(t.Context()); err != nil {
		t.Fatal(err)
	} else if f.Has(FeatureTableDump) {
		if len(c.helpers) != 0 {
			t.Errorf("%d helper sockets: the per-service path ran beside the table dump", len(c.helpers))
		}
	} else if len(c.helpers) < 2 {
		t.Errorf("%d helper sockets: the parallel path did not run", len(c.helpers))
	}
	// the helpers live in the client's namespace, not the test's
	if err := c.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if all, err := c.ServicesWithDestinations(t.Context()); err != nil || len(all) != 0 {
		t.Errorf("after flush: %d, %v", len(all), err)
	}
}

func TestVMConnections(t *testing.T) {
	tp := vmnet.New(t, vmnet.Options{Servers: 2, RouteBack: true})
	d := tp.Director
	for i, rs := range tp.Servers {
		vmnet.Serve(t, rs, fmt.Sprintf("rs%d", i+1), 80, tp.ServerAddrs[i], tp.ServerAddrs6[i])
	}
	c, err := NewInNamespace("/run/netns/" + string(d))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, vip := range []netip.Addr{tp.VIP, tp.VIP6} {
		svc := Service{Protocol: TCP, Address: vip, Port: 80, Scheduler: "rr"}
		if err := c.CreateService(t.Context(), svc); err != nil {
			t.Fatal(err)
		}
		rss := tp.ServerAddrs
		if vip.Is6() {
			rss = tp.ServerAddrs6
		}
		for _, rs := range rss {
			if err := c.CreateDestination(t.Context(), svc, Destination{Address: rs, Port: 80, Weight: 1, ForwardMethod: Masquerade}); err != nil {
				t.Fatal(err)
			}
		}
		s := vmnet.Dial(t, tp.Client, "--addr", netip.AddrPortFrom(vip, 80).String(), "--count", "20", "--parallel", "4")
		if s.OK != 20 {
			t.Fatalf("traffic: %+v", s)
		}
	}
	// /proc/net is per namespace: read it from inside the director. The kernel walks one table
	// for every namespace and resumes each read() by position, so an entry of another namespace
	// going away between two reads (an earlier test's, flushed when its namespace is cleaned
	// up, which the kernel does later) makes a listing of more than a page skip one of ours:
	// upstream's behaviour, ipvsadm -Lnc's too. Our 40 entries wait in TIME_WAIT for 120 s, so
	// the table is read again until one listing has them all.
	var n4, n6, want int
	var lnc string
	for try := 1; ; try++ {
		n4, n6, lnc = parseConnTable(t, d, tp)
		want = strings.Count(lnc, "\n") - 2
		if (n4 == 20 && n6 == 20 && want == 40) || try == 5 {
			break
		}
		t.Logf("read %d: %d v4 + %d v6 entries, ipvsadm -Lnc %d: reading again", try, n4, n6, want)
		time.Sleep(500 * time.Millisecond)
	}
	if n4+n6 != want || n4 != 20 || n6 != 20 {
		t.Errorf("parsed %d v4 + %d v6 entries; ipvsadm -Lnc lists %d:\n%s", n4, n6, want, lnc)
	}
	checkConnectionListing(t, c, d, tp)
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkListingWithoutStats(t, c, info.Features)
	if !info.Features.Has(FeatureFullNAT) {
		if !stockModules() {
			t.Errorf("our module lacks FULLNAT: %v", info.Features)
		}
		return
	}
	// FULLNAT: the extension's table lists the local side.
	laddr := netip.MustParseAddr("198.51.100.101")
	d.Addr(t, "br0", laddr.String()+"/24")
	svc := Service{Protocol: TCP, Address: tp.VIP, Port: 8080, Scheduler: "rr"}
	if err := c.CreateService(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateLocalAddress(t.Context(), svc, LocalAddress{Address: laddr}); err != nil {
		t.Fatal(err)
	}
	for _, rs := range tp.ServerAddrs {
		if err := c.CreateDestination(t.Context(), svc, Destination{Address: rs, Port: 80, Weight: 1, ForwardMethod: FullNAT}); err != nil {
			t.Fatal(err)
		}
	}
	if s := vmnet.Dial(t, tp.Client, "--addr", netip.AddrPortFrom(tp.VIP, 8080).String(), "--count", "10", "--parallel", "2"); s.OK != 10 {
		t.Fatalf("FULLNAT traffic: %+v", s)
	}
	nf := 0
	for conn, err := range ParseConnections(strings.NewReader(d.Run(t, "cat", FullNATConnPath))) {
		if err != nil {
			t.Fatal(err)
		}
		if conn.Virtual != netip.AddrPortFrom(tp.VIP, 8080) {
			continue
		}
		nf++
		if conn.Local.Addr() != laddr || conn.Local.Port() == 0 || conn.Client.Addr() != tp.ClientAddr ||
			(conn.Destination.Addr() != tp.ServerAddrs[0] && conn.Destination.Addr() != tp.ServerAddrs[1]) {
			t.Errorf("FULLNAT entry %+v", conn)
		}
	}
	if nf != 10 {
		t.Errorf("%s lists %d connections to %v:8080, want 10", FullNATConnPath, nf, tp.VIP)
	}
	// the netlink dump has the same local side, and the forwarding method
	procF := map[netip.AddrPort]Connection{}
	for conn, err := range ParseConnections(strings.NewReader(d.Run(t, "cat", FullNATConnPath))) {
		if err != nil {
			t.Fatal(err)
		}
		procF[conn.Client] = conn
	}
	nl := 0
	for conn, err := range c.ServiceConnections(t.Context(), svc) {
		if err != nil {
			t.Fatal(err)
		}
		nl++
		p, ok := procF[conn.Client]
		if !ok || p.Local != conn.Local || p.Destination != conn.Destination || p.State != conn.State ||
			conn.Flags.ForwardMethod() != FullNAT || conn.Family != INET {
			t.Errorf("FULLNAT connection over netlink %+v, in %s %+v", conn, FullNATConnPath, p)
		}
	}
	if nl != 10 {
		t.Errorf("ServiceConnections(%v) listed %d, want 10", svc, nl)
	}
	las, err := c.LocalAddresses(t.Context(), svc)
	if err != nil || len(las) != 1 || las[0].Address != laddr {
		t.Errorf("LocalAddresses() = %+v, %v", las, err)
	}
}

// checkListingWithoutStats: after TestVMConnections' traffic (20
// connections to each service), the table listed WithoutStats has no
// counters where the module can leave them out (FeatureTableNoStats) and
// the traffic's elsewhere, and is otherwise the full listing.
func checkListingWithoutStats(t *testing.T, c *Client, feat Features) {
	t.Helper()
	// The kernel's estimator sums the per-CPU counters every 2 s (its
	// kthreads may take longer to start).
	var full []ServiceDestinations
	for try := 0; ; try++ {
		var err error
		if full, err = c.ServicesWithDestinations(t.Context()); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, sd := range full {
			if sd.Service.Stats.Connections == 20 {
				n++
			}
		}
		if n == len(full) || try == 40 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	lean, err := c.ServicesWithDestinations(t.Context(), WithoutStats())
	if err != nil {
		t.Fatal(err)
	}
	if len(full) != 2 || len(lean) != 2 {
		t.Fatalf("listed %d services with counters, %d without; want 2", len(full), len(lean))
	}
	dropped := feat.Has(FeatureTableNoStats)
	for i := range full {
		if got := full[i].Service.Stats.Connections; got != 20 {
			t.Errorf("%v: %d connections counted, want 20", full[i].Service, got)
		}
		want := uint64(20)
		if dropped {
			want = 0
		}
		if st := lean[i].Service; st.Stats.Connections != want || st.Stats64.Connections != want {
			t.Errorf("%v listed without counters (features %v): %d and %d connections, want %d",
				st, feat, st.Stats.Connections, st.Stats64.Connections, want)
		}
		var sum uint64
		for _, d := range lean[i].Destinations {
			sum += d.Stats64.Connections
		}
		if sum != want {
			t.Errorf("%v listed without counters (features %v): its destinations count %d connections, want %d", lean[i].Service, feat, sum, want)
		}
		// the rest is the same (the rates move with the estimator: compare
		// without any counters)
		zero := func(sd ServiceDestinations) ServiceDestinations {
			sd.Service.Stats, sd.Service.Stats64 = Stats{}, Stats{}
			sd.Destinations = slices.Clone(sd.Destinations)
			for j := range sd.Destinations {
				sd.Destinations[j].Stats, sd.Destinations[j].Stats64 = Stats{}, Stats{}
			}
			return sd
		}
		if a, b := zero(full[i]), zero(lean[i]); !reflect.DeepEqual(a, b) {
			t.Errorf("listed without counters:\n%+v\nwith:\n%+v", b, a)
		}
	}
}

// TestVMGolden configures goldenServices, goldenDests, goldenDaemons and
// goldenTimeouts, records the kernel's replies, prints them as
// "IPVS-GOLDEN <kernel> <name>.bin <base64>" lines (for
// ipvs/internal/golden to write into testdata/ipvs/) and compares them with
// the committed fixtures.
func TestVMGolden(t *testing.T) {
	kernel := os.Getenv("RIG_KERNEL")
	if kernel == "" {
		t.Fatal("RIG_KERNEL not set")
	}
	if !stockModules() {
		kernel += "-ours"
	}
	c, ns := nsClient(t)
	for _, s := range goldenServices {
		if err := c.CreateService(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetTimeouts(t.Context(), goldenTimeouts); err != nil {
		t.Fatal(err)
	}
	record := func(name string, cmd uint8, flags netlink.HeaderFlags, data []byte) {
		t.Helper()
		msgs, err := c.nc.Execute(netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(c.family), Flags: netlink.Request | flags},
			Data:   genlHeader(cmd, data),
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		old, err := os.ReadFile(filepath.Join("..", "testdata", "ipvs", kernel, name+".bin"))
		// genetlink numbers a family when it registers, so the ID depends on what registered
		// before: compare with the fixture's (the sanitizer kernel's differs from Debian's).
		family := netlink.HeaderType(c.family)
		if err == nil && len(old) >= 6 {
			family = netlink.HeaderType(binary.NativeEndian.Uint16(old[4:6]))
		}
		var raw []byte
		for _, m := range msgs {
			m.Header.Sequence, m.Header.PID = 0, 0
			if m.Header.Type == netlink.HeaderType(c.family) {
				m.Header.Type = family
			}
			b, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			raw = append(raw, b...)
		}
		fmt.Printf("IPVS-GOLDEN %s %s.bin %s\n", kernel, name, base64.StdEncoding.EncodeToString(raw))
		if err != nil {
			t.Errorf("%s: no committed fixture (%v); write it with ipvs/internal/golden", name, err)
		} else if !bytes.Equal(old, raw) {
			t.Errorf("%s: the kernel's reply differs from the committed fixture", name)
		}
	}
	// Sync daemons refuse to run with mixed-family destinations: record
	// them first.
	ns.Run(t, vmnet.IP, "link", "add", "sync0", "type", "dummy")
	ns.Run(t, vmnet.IP, "link", "set", "sync0", "up", "mtu", "1500")
	for _, d := range goldenDaemons {
		if err := c.StartDaemon(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	record("daemons", cmdGetDaemon, netlink.Dump, nil)
	// A sync daemon stopped before its thread ran gets no answer from stock
	// IPVS (-EINTR, which netlink does not acknowledge; our patch 0009 fixes
	// it, TestVMDaemonStoppedAtOnce): let the threads reach their loops first.
	time.Sleep(500 * time.Millisecond)
	for _, d := range goldenDaemons {
		if err := c.StopDaemon(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range goldenDests {
		if err := c.CreateDestination(t.Context(), goldenServices[0], d); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CreateDestination(t.Context(), goldenServices[2], goldenDest6); err != nil {
		t.Fatal(err)
	}
	record("info", cmdGetInfo, 0, nil)
	record("config", cmdGetConfig, 0, nil)
	for i, s := range goldenServices {
		b, err := encodeServiceRequest(s, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		record(goldenServiceFiles[i], cmdGetService, 0, b)
	}
	for name, s := range map[string]Service{"dests-tcp4": goldenServices[0], "dests-udp6": goldenServices[2]} {
		b, err := encodeServiceRequest(s, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		record(name, cmdGetDest, netlink.Dump, b)
	}
	if stockModules() {
		return
	}
	// The extension, as far as the module has it.
	feat, err := c.Features(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if feat.Has(FeatureFullNAT) {
		for _, la := range goldenLaddrs {
			ns.Addr(t, "lo", la.Address.String()+"/32")
		}
		for _, la := range goldenLaddrs {
			if err := c.CreateLocalAddress(t.Context(), goldenServices[0], la); err != nil {
				t.Fatal(err)
			}
		}
		b, err := encodeServiceRequest(goldenServices[0], false, 0)
		if err != nil {
			t.Fatal(err)
		}
		record("laddrs-tcp4", cmdGetLaddr, netlink.Dump, b)
		if err := c.CreateDestination(t.Context(), goldenServices[1], goldenFullNATDest); err != nil {
			t.Fatal(err)
		}
		if b, err = encodeServiceRequest(goldenServices[1], false, 0); err != nil {
			t.Fatal(err)
		}
		record("dests-fnat", cmdGetDest, netlink.Dump, b)
	}
	if feat.Has(FeatureEstTimeout) {
		if err := c.CreateService(t.Context(), goldenEstService); err != nil {
			t.Fatal(err)
		}
		b, err := encodeServiceRequest(goldenEstService, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		record("service-est", cmdGetService, 0, b)
	}
	if feat.Has(FeatureProxyProtocol) {
		if err := c.CreateService(t.Context(), goldenPPService); err != nil {
			t.Fatal(err)
		}
		b, err := encodeServiceRequest(goldenPPService, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		record("service-pp", cmdGetService, 0, b)
	}
	if feat.Has(FeatureTableLaddrs) {
		// one service, so that the order is the same in the fake
		for _, s := range append([]Service{goldenEstService, goldenPPService}, goldenServices[1:]...) {
			_ = c.DeleteService(t.Context(), s)
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

// TestVMDumpBesideOtherNamespaces: a service dump that takes several netlink messages lists every
// service of its namespace once while another namespace adds and deletes services. Upstream
// resumes such a dump at an index that counts every namespace's services, so the churn next door
// makes it repeat or skip services; our module (patch 0006) counts only the namespace's own.
func TestVMDumpBesideOtherNamespaces(t *testing.T) {
	a, _ := nsClient(t)
	b, _ := nsClient(t)
	const n = 400
	var batch Batch
	for i := range n {
		batch.CreateService(Service{Protocol: TCP, Address: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), Port: 80, Scheduler: "rr"})
	}
	if err := a.Apply(t.Context(), &batch); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	churned := make(chan error, 1)
	go func() {
		for round := 0; ; round++ {
			select {
			case <-stop:
				churned <- nil
				return
			default:
			}
			var add, del Batch
			for i := range 20 {
				s := Service{Protocol: UDP, Address: netip.AddrFrom4([4]byte{198, 19, byte(round), byte(i)}), Port: 53, Scheduler: "rr"}
				add.CreateService(s)
				del.DeleteService(s)
			}
			if err := b.Apply(t.Context(), &add); err != nil {
				churned <- err
				return
			}
			if err := b.Apply(t.Context(), &del); err != nil {
				churned <- err
				return
			}
		}
	}()
	bad := 0
	const dumps = 150
	for d := range dumps {
		svcs, err := a.Services(t.Context())
		if err != nil {
			t.Fatalf("dump %d: %v", d, err)
		}
		seen := map[netip.Addr]int{}
		for _, s := range svcs {
			seen[s.Address]++
		}
		dup := 0
		for _, c := range seen {
			dup += c - 1
		}
		if len(svcs) != n || len(seen) != n {
			bad++
			t.Logf("dump %d: %d services, %d distinct, %d repeated (want %d once each)", d, len(svcs), len(seen), dup, n)
		}
	}
	close(stop)
	if err := <-churned; err != nil {
		t.Fatalf("churn in the other namespace: %v", err)
	}
	if stockModules() {
		t.Logf("stock ip_vs: %d of %d dumps wrong beside another namespace's churn (upstream's resume index)", bad, dumps)
		return
	}
	if bad != 0 {
		t.Errorf("%d of %d dumps of %d services were wrong while another namespace changed its services", bad, dumps, n)
	}
}

// vmMixedTable builds a table of NAT, DR and FULLNAT services (with local
// addresses), IPv4, IPv6 and fwmark, big enough that a dump of it takes
// many parts, and returns its stable services.
func vmMixedTable(t *testing.T, c *Client, ns vmnet.NS) []Service {
	t.Helper()
	la4, la6 := netip.MustParseAddr("198.51.100.77"), netip.MustParseAddr("2001:db8:77::1")
	ns.Run(t, vmnet.IP, "addr", "add", la4.String()+"/32", "dev", "lo")
	ns.Run(t, vmnet.IP, "-6", "addr", "add", la6.String()+"/128", "dev", "lo", "nodad")
	var b Batch
	var svcs []Service
	for i := range 300 {
		var s Service
		var rs func(j int) netip.Addr
		switch i % 3 {
		case 0:
			s = Service{Protocol: TCP, Address: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), Port: 80, Scheduler: "rr"}
			rs = func(j int) netip.Addr { return netip.AddrFrom4([4]byte{198, 19, byte(i), byte(j)}) }
		case 1:
			a := netip.MustParseAddr("2001:db8::").As16()
			a[14], a[15] = byte(i>>8), byte(i)
			s = Service{Family: INET6, Protocol: UDP, Address: netip.AddrFrom16(a), Port: 53, Scheduler: "wlc"}
			rs = func(j int) netip.Addr {
				r := netip.MustParseAddr("2001:db8:1::").As16()
				r[13], r[14], r[15] = byte(i>>8), byte(i), byte(j)
				return netip.AddrFrom16(r)
			}
		default:
			s = Service{FWMark: uint32(1000 + i), Scheduler: "rr"}
			rs = func(j int) netip.Addr { return netip.AddrFrom4([4]byte{198, 20, byte(i), byte(j)}) }
		}
		b.CreateService(s)
		svcs = append(svcs, s)
		fullnat := i%2 == 0 && s.FWMark == 0
		for j := range 5 {
			d := Destination{Address: rs(j), Port: 8000, Weight: int32(j + 1)}
			switch {
			case fullnat:
				d.ForwardMethod = FullNAT
			case j%2 == 0:
				d.ForwardMethod = DirectRoute
				d.Port = s.Port
			}
			b.CreateDestination(s, d)
		}
		if fullnat {
			la := la4
			if s.Family == INET6 {
				la = la6
			}
			b.CreateLocalAddress(s, LocalAddress{Address: la})
		}
	}
	if err := c.Apply(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	return svcs
}

// TestVMTableDump: our module lists a mixed table in one GET_TABLE dump
// exactly as the per-service dumps do, and a listing while another client
// changes the table still holds every stable service once with all its
// destinations (an interrupted dump is repeated).
func TestVMTableDump(t *testing.T) {
	c, ns := nsClient(t)
	f, err := c.Features(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if stockModules() {
		if f.Has(FeatureTableDump) {
			t.Fatalf("stock module reports %v", f)
		}
		t.Skip("GET_TABLE is our module's")
	}
	if !f.Has(FeatureTableDump) {
		t.Fatalf("our module lacks the table dump: %v", f)
	}
	stable := vmMixedTable(t, c, ns)
	got, err := c.ServicesWithDestinations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := c.Services(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(svcs) || len(got) != len(stable) {
		t.Fatalf("table dump: %d services, service dump %d, want %d", len(got), len(svcs), len(stable))
	}
	for i, s := range svcs {
		ds, err := c.Destinations(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(strip(got[i].Service), strip(s)) {
			t.Errorf("service %d: table dump %+v, service dump %+v", i, got[i].Service, s)
			continue
		}
		if len(ds) != 5 || len(got[i].Destinations) != len(ds) {
			t.Errorf("%v: table dump %d destinations, per-service dump %d, want 5", s, len(got[i].Destinations), len(ds))
			continue
		}
		for j := range ds {
			if stripDest(got[i].Destinations[j]) != stripDest(ds[j]) {
				t.Errorf("%v destination %d: table dump %+v, per-service dump %+v", s, j, got[i].Destinations[j], ds[j])
			}
		}
	}

	// Churn: another client adds and deletes services and destinations.
	other, err := NewInNamespace("/run/netns/" + string(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	stop := make(chan struct{})
	churned := make(chan error, 1)
	go func() {
		for round := 0; ; round++ {
			select {
			case <-stop:
				churned <- nil
				return
			default:
			}
			var add, del Batch
			for i := range 10 {
				s := Service{Protocol: TCP, Address: netip.AddrFrom4([4]byte{198, 21, byte(round), byte(i)}), Port: 80, Scheduler: "rr"}
				add.CreateService(s)
				add.CreateDestination(s, Destination{Address: netip.AddrFrom4([4]byte{198, 22, byte(round), byte(i)}), Port: 80, Weight: 1})
				del.DeleteService(s)
			}
			if err := other.Apply(t.Context(), &add); err != nil {
				churned <- err
				return
			}
			if err := other.Apply(t.Context(), &del); err != nil {
				churned <- err
				return
			}
		}
	}()
	want := map[string]bool{}
	for _, s := range stable {
		want[s.String()] = true
	}
	interrupted := 0
	for d := range 10 {
		all, err := c.ServicesWithDestinations(t.Context())
		if errors.Is(err, ErrDumpInterrupted) {
			interrupted++
			continue
		}
		if err != nil {
			t.Fatalf("listing %d: %v", d, err)
		}
		seen := map[string]int{}
		for _, sd := range all {
			if want[sd.Service.String()] {
				seen[sd.Service.String()]++
				if len(sd.Destinations) != 5 {
					t.Errorf("listing %d: %v with %d destinations, want 5", d, sd.Service, len(sd.Destinations))
				}
			}
		}
		if len(seen) != len(want) {
			t.Errorf("listing %d: %d of %d stable services", d, len(seen), len(want))
		}
		for k, n := range seen {
			if n != 1 {
				t.Errorf("listing %d: %s listed %d times", d, k, n)
			}
		}
	}
	close(stop)
	if err := <-churned; err != nil {
		t.Fatalf("churn: %v", err)
	}
	t.Logf("10 listings during churn, %d gave up after %d interrupted attempts", interrupted, tableDumpAttempts)
}

// parseConnTable parses the director's connection table (tp's test, 20 connections to each
// VIP) and lists it with ipvsadm -Lnc: the entries per VIP, and the listing.
// checkConnectionListing compares Client.Connections (the module's dump, or the /proc
// fallback entered in the director's namespace on a stock module) with the director's
// /proc/net/ip_vs_conn, checks the per-service filter and that another namespace lists none.
func checkConnectionListing(t *testing.T, c *Client, d vmnet.NS, tp *vmnet.Topology) {
	t.Helper()
	key := func(c Connection) string {
		return fmt.Sprint(c.Protocol, c.Client, c.Virtual, c.Destination, c.State)
	}
	var nl, proc map[string]Connection
	for try := 1; ; try++ {
		nl, proc = map[string]Connection{}, map[string]Connection{}
		for conn, err := range c.Connections(t.Context()) {
			if err != nil {
				t.Fatal(err)
			}
			nl[key(conn)] = conn
		}
		for conn, err := range ParseConnections(strings.NewReader(d.Run(t, "cat", ConnPath))) {
			if err != nil {
				t.Fatal(err)
			}
			proc[key(conn)] = conn
		}
		// /proc may skip an entry (see above); the dump walks this namespace only
		if len(proc) == 40 || try == 5 {
			break
		}
		t.Logf("read %d: /proc lists %d entries, reading again", try, len(proc))
	}
	if len(nl) != 40 || len(proc) != 40 {
		t.Errorf("Connections lists %d entries, /proc %d; want 40", len(nl), len(proc))
	}
	for k, p := range proc {
		n, ok := nl[k]
		if !ok {
			t.Errorf("/proc entry %+v not listed by Connections", p)
			continue
		}
		if d := n.Expires - p.Expires; d < -2*time.Second || d > 2*time.Second {
			t.Errorf("%s: expires in %v over netlink, %v in /proc", k, n.Expires, p.Expires)
		}
		if stockModules() {
			continue
		}
		// the state's timeout: TIME_WAIT's, or CLOSE's where the connection ended with a
		// reset (a loaded clean-clone run had one of 40 so)
		timeout := 120 * time.Second
		if n.State == "CLOSE" {
			timeout = 10 * time.Second
		}
		if n.Flags.ForwardMethod() != Masquerade || n.Timeout != timeout || n.Local.IsValid() ||
			(n.Family != INET) != n.Virtual.Addr().Is6() {
			t.Errorf("%s: %+v", k, n)
		}
	}
	svc := Service{Protocol: TCP, Address: tp.VIP6, Port: 80}
	n6 := 0
	for conn, err := range c.ServiceConnections(t.Context(), svc) {
		if err != nil {
			t.Fatal(err)
		}
		if n6++; conn.Virtual != netip.AddrPortFrom(tp.VIP6, 80) {
			t.Errorf("ServiceConnections(%v) lists %+v", svc, conn)
		}
	}
	if n6 != 20 {
		t.Errorf("ServiceConnections(%v) listed %d, want 20", svc, n6)
	}
	missing := Service{Protocol: TCP, Address: tp.VIP, Port: 81}
	var last error
	for conn, err := range c.ServiceConnections(t.Context(), missing) {
		if err == nil {
			t.Errorf("ServiceConnections(%v) lists %+v", missing, conn)
		}
		last = err
	}
	// the module knows services; /proc does not, so it lists none
	if stockModules() != (last == nil) || (last != nil && !errors.Is(last, ErrNotFound)) {
		t.Errorf("ServiceConnections(%v) ends with %v; want ErrNotFound from the module, nothing from /proc", missing, last)
	}
	// the client's namespace has IPVS but no connections
	other, err := NewInNamespace("/run/netns/" + string(tp.Client))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for conn, err := range other.Connections(t.Context()) {
		t.Errorf("another namespace lists %+v, %v", conn, err)
	}
}

func parseConnTable(t *testing.T, d vmnet.NS, tp *vmnet.Topology) (n4, n6 int, lnc string) {
	t.Helper()
	text := d.Run(t, "cat", ConnPath)
	for conn, err := range ParseConnections(strings.NewReader(text)) {
		if err != nil {
			t.Fatal(err)
		}
		if conn.Protocol != "TCP" || conn.Local.IsValid() {
			t.Errorf("entry %+v", conn)
		}
		switch conn.Virtual {
		case netip.AddrPortFrom(tp.VIP, 80):
			n4++
			if conn.Client.Addr() != tp.ClientAddr {
				t.Errorf("v4 client %v", conn.Client)
			}
		case netip.AddrPortFrom(tp.VIP6, 80):
			n6++
			if conn.Client.Addr() != tp.ClientAddr6 {
				t.Errorf("v6 client %v", conn.Client)
			}
		default:
			t.Errorf("entry for unknown virtual %v", conn.Virtual)
		}
	}
	return n4, n6, d.Run(t, "/usr/sbin/ipvsadm", "-Lnc")
}

// realtimeOn locks the calling goroutine to its thread, pins the thread to cpu and makes it
// SCHED_FIFO: a kernel thread it wakes cannot run on that CPU until it blocks.
func realtimeOn(cpu int) error {
	if err := vmnet.PinThread(cpu); err != nil {
		return err
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 1}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Errorf("SCHED_FIFO: %w", err)
	}
	return nil
}

// TestVMDaemonStoppedAtOnce: a sync daemon stopped right after it started, before its kernel
// thread ever ran, stops and the call returns. The kernel's kthread_stop() says -EINTR then;
// upstream passes that on, and netlink acknowledges no -EINTR, so a stop that waited for its
// answer waited forever (CI hung in TestVMDaemons once). Our module answers (patch 0009); on
// a stock one StopDaemon sees the answer to the GET_INFO it sends after the stop come first.
// The test keeps the threads from running: the calls come from a SCHED_FIFO thread on CPU 0
// while another spins SCHED_FIFO on CPU 1, so a new sync thread runs only when the stop waits
// for it.
func TestVMDaemonStoppedAtOnce(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Fatalf("needs 2 CPUs, the VM has %d", runtime.NumCPU())
	}
	c, ns := nsClient(t)
	ns.Run(t, vmnet.IP, "link", "add", "sync0", "type", "dummy")
	ns.Run(t, vmnet.IP, "link", "set", "sync0", "up", "mtu", "1500")
	ns.Addr(t, "sync0", "192.0.2.50/24")

	var stop atomic.Bool
	spinning := make(chan error)
	go func() {
		err := realtimeOn(1)
		spinning <- err
		if err != nil {
			return
		}
		for !stop.Load() { // spin: CPU 1 is taken
		}
	}()
	if err := <-spinning; err != nil {
		t.Fatal(err)
	}
	defer stop.Store(true)

	done := make(chan error, 1)
	go func() {
		// the thread stays locked, SCHED_FIFO, and dies with the goroutine
		if err := realtimeOn(0); err != nil {
			done <- err
			return
		}
		for i := range 20 {
			for _, d := range []Daemon{
				{State: DaemonBackup, Interface: "sync0", SyncID: 6},
				{State: DaemonMaster, Interface: "sync0", SyncID: 5},
			} {
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
				err := c.StartDaemon(ctx, d)
				if err == nil {
					err = c.StopDaemon(ctx, d)
				}
				cancel()
				if err != nil {
					done <- fmt.Errorf("round %d, %v daemon: %w", i, d.State, err)
					return
				}
			}
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ds, err := c.Daemons(t.Context()); err != nil || len(ds) != 0 {
		t.Errorf("Daemons() after the stops = %v, %v", ds, err)
	}
}
