//go:build vmtest

// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/flood"
	"github.com/fullnat/fullnat/internal/vmnet"
)

// TestVMConnectionsChurn dumps the connection table over and over for 8 s while a flood creates
// connections and a 4-second timeout expires them: the kernel's walk (ip_vs_conn_walk, resumed
// part by part) meets entries added and freed under it, which the sanitizer kernel watches.
// Every listed entry must be one the flood made; a dump may end interrupted (a resized table on
// 7.x), never otherwise. A service deleted during a filtered dump ends it with ErrNotFound.
func TestVMConnectionsChurn(t *testing.T) {
	tp := vmnet.New(t, vmnet.Options{Servers: 1})
	d := tp.Director
	rs := netip.MustParseAddr("198.51.100.250")
	d.Run(t, vmnet.IP, "route", "add", "blackhole", rs.String()+"/32")
	c, err := NewInNamespace("/run/netns/" + string(d))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	vip := netip.AddrPortFrom(tp.VIP, 80)
	svc := Service{Protocol: TCP, Address: tp.VIP, Port: 80, Scheduler: "rr"}
	if err := c.CreateService(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDestination(t.Context(), svc, Destination{Address: rs, Port: 80, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	d.Sysctl(t, "net.ipv4.vs.sloppy_tcp", "1")
	if err := c.SetTimeouts(t.Context(), Timeouts{TCP: 4 * time.Second}); err != nil {
		t.Fatal(err)
	}
	have, err := c.Features(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !have.Has(FeatureConnDump) && !stockModules() {
		t.Fatalf("our module lacks the connection dump: %v", have)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for round := 0; ; round++ {
			select {
			case <-stop:
				return
			default:
			}
			err := vmnet.InNetns(string(tp.Client), func() error {
				_, err := flood.Run(flood.Config{Target: vip, Flags: flood.ACK, First: round % 64 * 4000, Count: 4000})
				return err
			})
			if err != nil {
				t.Errorf("flood: %v", err)
				return
			}
		}
	}()
	deadline := time.Now().Add(8 * time.Second)
	dumps, most, interrupted := 0, 0, 0
	for time.Now().Before(deadline) {
		n := 0
		for conn, err := range c.Connections(t.Context()) {
			if errors.Is(err, ErrDumpInterrupted) && resizableTables() {
				interrupted++
				break
			}
			if err != nil {
				t.Fatalf("dump %d: %v", dumps, err)
			}
			if conn.Virtual != vip || conn.Destination != netip.AddrPortFrom(rs, 80) || !flood.Spoofed(conn.Client.Addr()) {
				t.Fatalf("dump %d lists %+v", dumps, conn)
			}
			n++
		}
		dumps++
		most = max(most, n)
	}
	// a filtered dump whose service goes away under it (the module's dump: /proc knows no
	// services)
	n, notFound := 0, false
	if have.Has(FeatureConnDump) {
		for _, err := range c.ServiceConnections(t.Context(), svc) {
			if err != nil {
				if notFound = errors.Is(err, ErrNotFound); !notFound {
					t.Errorf("filtered dump after the service went: %v, want ErrNotFound", err)
				}
				break
			}
			if n++; n == 1 {
				if err := c.DeleteService(t.Context(), svc); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !notFound {
			t.Errorf("a filtered dump of %d entries went on after its service was deleted", n)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d dumps, the largest %d entries, %d interrupted; %d listed of the service before it was deleted", dumps, most, interrupted, n)
	// several parts of a netlink dump (about 150 entries each), or pages of /proc
	if most < 500 {
		t.Errorf("the largest dump had %d entries: the flood did not fill the table", most)
	}
}
