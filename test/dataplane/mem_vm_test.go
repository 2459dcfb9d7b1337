// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package dataplane

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/benchdata"
	"github.com/fullnat/fullnat/internal/connfill"
	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
)

// memConns is the table size the memory benchmark measures at.
var memConns = scaled(1_000_000, 20_000)

// slabBytes is the kernel's slab memory (/proc/meminfo Slab), in bytes.
func slabBytes(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, ok := strings.CutPrefix(s.Text(), "Slab:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(k), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("/proc/meminfo: %q: %v", s.Text(), err)
			}
			return kb << 10
		}
	}
	t.Fatalf("/proc/meminfo has no Slab line")
	return 0
}

// connObject is the object size of the connection cache cache (ip_vs_conn, or our module's
// ip_vs_conn_fnat for the connections that carry FULLNAT state) and what one object takes in
// its slabs (its slot, and its share of what a slab leaves over), from SLUB's sysfs:
// /proc/slabinfo does not list a cache SLUB merged into another of its size.
func connObject(t *testing.T, cache string) (size, footprint int) {
	t.Helper()
	read := func(f string) int {
		p := "/sys/kernel/slab/" + cache + "/" + f
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		return n
	}
	size = read("object_size")
	if per := read("objs_per_slab"); per > 0 {
		footprint = os.Getpagesize() << read("order") / per
	}
	return size, footprint
}

// TestConnMemory: the kernel memory a connection takes, at a million connections, for stock
// NAT, our NAT, our FULLNAT and our FULLNAT+SYNPROXY, in one VM: the growth of the kernel's slab
// memory over the connections, and the object of the connections' cache. Both modules hash a million
// connections in 2^20 buckets (conn_tab_bits=20, outside the slab memory). The NAT and FULLNAT
// tables are filled with spoofed ACKs (connfill.Fill: sloppy_tcp, one ESTABLISHED connection
// per source, a blackhole real server); FULLNAT's connections take ports of 17 local addresses
// (64,512 ports each at the default range). SYNPROXY connections open only from a client that
// answers the cookie, and are ESTABLISHED only once the real server answers: connfill.Handshakes
// plays both ends of a million handshakes with raw packets.
func TestConnMemory(t *testing.T) {
	if _, err := os.Stat(stockDir + "/ip_vs.ko"); err != nil {
		t.Fatalf("the stock modules are not in the VM: %v", err)
	}
	setups := []struct {
		name            string
		stock, fnat, sp bool
	}{
		{"stock-NAT", true, false, false},
		{"ours-NAT", false, false, false},
		{"ours-FULLNAT", false, true, false},
		{"ours-FULLNAT+SYNPROXY", false, true, true},
	}
	per := map[string]float64{}
	for _, s := range setups {
		load(t, s.stock, "conn_tab_bits=20")
		t.Run(s.name, func(t *testing.T) {
			tp := vmnet.New(t, vmnet.Options{Servers: 1})
			d := tp.Director
			rs := netip.MustParseAddr("198.51.100.250")
			if s.sp {
				// rs1's interface gets what goes to rs, and answers it (connfill.Handshakes)
				mac := strings.TrimSpace(tp.Servers[0].Run(t, "cat", "/sys/class/net/eth0/address"))
				d.Run(t, vmnet.IP, "neigh", "replace", rs.String(), "lladdr", mac, "dev", "br0", "nud", "permanent")
				d.Run(t, vmnet.IP, "route", "add", "198.18.0.0/15", "via", tp.ClientAddr.String())
			} else {
				d.Run(t, vmnet.IP, "route", "add", "blackhole", rs.String()+"/32")
				d.Sysctl(t, "net.ipv4.vs.sloppy_tcp", "1")
			}
			c, err := ipvs.NewInNamespace("/run/netns/" + string(d))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			svc := ipvs.Service{Protocol: ipvs.TCP, Address: tp.VIP, Port: 80, Scheduler: "rr"}
			if s.sp {
				svc.Flags = ipvs.FlagSynProxy
			}
			if err := c.CreateService(t.Context(), svc); err != nil {
				t.Fatal(err)
			}
			dst := ipvs.Destination{Address: rs, Port: 80, Weight: 1}
			if s.fnat {
				dst.ForwardMethod = ipvs.FullNAT
				for i := range 17 {
					la := netip.AddrFrom4([4]byte{198, 51, 100, byte(201 + i)})
					d.Run(t, vmnet.IP, "addr", "add", la.String()+"/32", "dev", "br0")
					if err := c.CreateLocalAddress(t.Context(), svc, ipvs.LocalAddress{Address: la}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := c.CreateDestination(t.Context(), svc, dst); err != nil {
				t.Fatal(err)
			}
			// not t.Context(): it is canceled before the cleanups run
			t.Cleanup(func() { _ = c.Flush(context.Background()) })
			if err := c.SetTimeouts(t.Context(), ipvs.Timeouts{TCP: 4 * time.Hour}); err != nil {
				t.Fatal(err)
			}
			sh(t, "sync; echo 3 > /proc/sys/vm/drop_caches")
			before := slabBytes(t)
			vip := netip.AddrPortFrom(tp.VIP, 80)
			var n int
			if s.sp {
				n = connfill.Handshakes(t, c, tp.Client, "eth0", tp.Servers[0], "eth0", vip, svc, memConns)
			} else {
				n = connfill.Fill(t, c, tp.Client, vip, svc, 0, memConns)
			}
			// Steady state: what the flood's packets held is freed, and SYNPROXY has stopped
			// repeating the handshake's ACK to a silent real server (after 2, 4 and 6 s) and
			// dropped the copy it kept.
			time.Sleep(8 * time.Second)
			grown := slabBytes(t) - before
			cache := "ip_vs_conn"
			if s.fnat {
				cache = "ip_vs_conn_fnat"
			}
			size, foot := connObject(t, cache)
			per[s.name] = float64(grown) / float64(n)
			fmt.Printf("BENCH mem %-21s %d connections: slab +%d MB, %.0f bytes/connection (%s object %d bytes, %d with its slab's share)\n",
				s.name, n, grown>>20, per[s.name], cache, size, foot)
		})
		unload(t)
		if t.Failed() {
			return
		}
	}
	base := per["stock-NAT"]
	fmt.Printf("BENCH kernel=%s memory per connection at %d connections (slab growth)\n", os.Getenv("RIG_KERNEL"), memConns)
	for _, s := range setups {
		fmt.Printf("BENCH mem %-22s %4.0f bytes (%.2fx stock NAT)\n", s.name, per[s.name], per[s.name]/base)
		benchdata.Print(benchdata.Record{Suite: "memory", Name: s.name, Values: map[string]float64{
			"bytes_per_conn": per[s.name], "conns": float64(memConns)}})
	}
}
