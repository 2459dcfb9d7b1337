//go:build vmtest

// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/connfill"
	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
)

// TestVMConnectionListing lists a table of 100,000 and then 1,000,000 connections over netlink
// (Client.Connections on the module's IPVS_CMD_GET_CONN) and from /proc/net/ip_vs_conn
// (ipvs.ReadConnections, the file ipvsadm -Lnc reads), and prints the times, the rate and the
// ratio. With the stock module only /proc exists, and Client.Connections reads it (100,000
// only). A /proc listing is stopped after procLimit and its time extrapolated. It fails only
// when a listing is incomplete.
//
// The connections: with sloppy_tcp an ACK opens an ESTABLISHED connection (15 minutes), so
// spoofed ACKs from the flood tool (a source of their own each) fill the table with no
// handshake; the real server is a blackhole route on the director, so nothing answers them.
func TestVMConnectionListing(t *testing.T) {
	tp := vmnet.New(t, vmnet.Options{Servers: 1})
	d := tp.Director
	rs := netip.MustParseAddr("198.51.100.250")
	d.Run(t, vmnet.IP, "route", "add", "blackhole", rs.String()+"/32")
	c, err := ipvs.NewInNamespace("/run/netns/" + string(d))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	svc := ipvs.Service{Protocol: ipvs.TCP, Address: tp.VIP, Port: 80, Scheduler: "rr"}
	if err := c.CreateService(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDestination(t.Context(), svc, ipvs.Destination{Address: rs, Port: 80, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	d.Sysctl(t, "net.ipv4.vs.sloppy_tcp", "1")
	// nothing expires during the run (ESTABLISHED: 15 minutes by default)
	if err := c.SetTimeouts(t.Context(), ipvs.Timeouts{TCP: 4 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	feat, err := c.Features(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dump, sizes := "netlink", []int{100_000, 1_000_000}
	if !feat.Has(ipvs.FeatureConnDump) {
		// both listings are /proc, whose million takes many minutes (procLimit)
		dump, sizes = "/proc (stock module)", sizes[:1]
	}
	have := 0
	for _, n := range sizes {
		connfill.Fill(t, c, tp.Client, netip.AddrPortFrom(tp.VIP, 80), svc, have, n)
		have = n
		conns := func() int {
			ds, err := c.Destinations(t.Context(), svc)
			if err != nil || len(ds) != 1 {
				t.Fatalf("destinations: %v, %v", ds, err)
			}
			return int(ds[0].ActiveConns + ds[0].InactiveConns)
		}
		want := conns()
		var nl, proc int
		procDone := true
		runtime.GC()
		tn := timeIt(t, "Connections", func() error {
			for _, err := range c.Connections(t.Context()) {
				if err != nil {
					return err
				}
				nl++
			}
			return nil
		})
		runtime.GC()
		tProc := timeIt(t, "/proc", func() error {
			return vmnet.InNetns(string(d), func() error {
				// this thread's namespace (/proc/net is the main thread's)
				start := time.Now()
				for _, err := range ipvs.ReadConnections("/proc/thread-self/net/ip_vs_conn") {
					if err != nil {
						return err
					}
					if proc++; proc%1000 == 0 && time.Since(start) > procLimit {
						procDone = false
						break
					}
				}
				return nil
			})
		})
		if nl != want || (procDone && proc != want) {
			t.Errorf("%d connections in the kernel: Connections listed %d, /proc %d", want, nl, proc)
		}
		procText := fmt.Sprintf("%.2fs (%.0f/s) | ratio %.1fx", tProc.Seconds(), float64(proc)/tProc.Seconds(), tProc.Seconds()/tn.Seconds())
		if !procDone {
			procText = fmt.Sprintf("stopped after %.0fs at %d entries (%.0f/s): at that rate (it only slows: each read() walks the table from its start) the table takes at least %.0fs, %.0fx the dump",
				tProc.Seconds(), proc, float64(proc)/tProc.Seconds(), float64(want)/(float64(proc)/tProc.Seconds()),
				float64(want)/(float64(proc)/tProc.Seconds())/tn.Seconds())
		}
		fmt.Printf("BENCH conns kernel=%s modules=%s n=%d: Connections (%s) %.2fs (%.0f/s) | /proc/net/ip_vs_conn %s | ip_vs_conn objects of %s bytes\n",
			os.Getenv("RIG_KERNEL"), os.Getenv("RIG_MODULES"), want, dump, tn.Seconds(), float64(nl)/tn.Seconds(),
			procText, connSlab())
	}
}

// connSlab is the size of an ip_vs_conn object (SLUB's object_size; the cache may be merged
// with others of its size).
func connSlab() string {
	b, err := os.ReadFile("/sys/kernel/slab/ip_vs_conn/object_size")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// procLimit bounds a /proc listing: each read() of it returns one page and the kernel finds
// where to resume by walking the table from its start, so a million entries take many minutes.
const procLimit = 2 * time.Minute
