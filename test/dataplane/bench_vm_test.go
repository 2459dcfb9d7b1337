// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package dataplane

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"testing"

	"github.com/fullnat/fullnat/internal/vmnet"
)

// stockDir holds Debian's own IPVS modules in a VM booted with ours (rig/vm.sh).
const stockDir = "/opt/fullnat/stock"

// setup is one module and forwarding method under test.
type setup struct {
	name  string
	stock bool   // Debian's ip_vs.ko instead of ours
	fwd   string // ipvsadm's -m or -b
	pp    string // the service's --proxy-protocol (FULLNAT), "" for none
}

// result is what one setup measured.
type result struct {
	cps     float64 // hello connections per second
	getMBps float64 // MB/s from the real servers
	putMBps float64 // MB/s to the real servers
}

func sh(t *testing.T, script string) {
	t.Helper()
	if out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
}

func load(t *testing.T, s setup) {
	t.Helper()
	if s.stock {
		// What Debian's ip_vs needs: libcrc32c only where the kernel still has it (6.x; 7.x's
		// crc32c is built in); insmod fails if anything is missing.
		sh(t, "modprobe -a nf_conntrack nf_defrag_ipv6 && "+
			"{ ! grep -q '/libcrc32c.ko' /lib/modules/$(uname -r)/modules.dep || modprobe libcrc32c; } && "+
			"insmod "+stockDir+"/ip_vs.ko && insmod "+stockDir+"/ip_vs_rr.ko")
	} else {
		sh(t, "modprobe -a ip_vs ip_vs_rr")
	}
}

func unload(t *testing.T) {
	t.Helper()
	sh(t, "rmmod ip_vs_rr ip_vs")
}

// measure builds the topology, sets up a two-server service with s's module and method, and
// times connections and transfers through it.
func measure(t *testing.T, s setup) result {
	var r result
	load(t, s)
	defer unload(t)
	t.Run(s.name, func(t *testing.T) {
		tp := vmnet.New(t, vmnet.Options{Servers: 2, RouteBack: s.fwd == "-m"})
		for i, rs := range tp.Servers {
			listen := "--listen"
			if s.pp != "" {
				listen = "--proxy-listen" // the same server after the header
			}
			vmnet.ServeArgs(t, rs, "--name", fmt.Sprintf("rs%d", i+1), listen, netip.AddrPortFrom(tp.ServerAddrs[i], 80).String())
		}
		d := tp.Director
		adm := "/usr/sbin/ipvsadm"
		vip := netip.AddrPortFrom(tp.VIP, 80).String()
		if s.fwd == "-b" {
			adm = vmnet.Bin + "/ipvsadm"
			d.Run(t, vmnet.IP, "addr", "add", "198.51.100.201/24", "dev", "br0")
		}
		add := []string{adm, "-A", "-t", vip, "-s", "rr"}
		if s.pp != "" {
			add = append(add, "--proxy-protocol", s.pp)
		}
		d.Run(t, add...)
		if s.fwd == "-b" {
			d.Run(t, adm, "-P", "-t", vip, "-z", "198.51.100.201")
		}
		for _, a := range tp.ServerAddrs {
			d.Run(t, adm, "-a", "-t", vip, "-r", netip.AddrPortFrom(a, 80).String(), s.fwd)
		}
		t.Cleanup(func() { d.Run(t, adm, "-C") })
		vmnet.Dial(t, tp.Client, "--addr", vip, "--count", "50", "--parallel", "4") // warm up
		h := vmnet.Dial(t, tp.Client, "--addr", vip, "--count", "2000", "--parallel", "8")
		const size, count = 8 << 20, 4
		g := vmnet.Dial(t, tp.Client, "--addr", vip, "--op", "get", "--size", fmt.Sprint(size), "--count", fmt.Sprint(count), "--parallel", "2", "--timeout", "60s")
		p := vmnet.Dial(t, tp.Client, "--addr", vip, "--op", "put", "--size", fmt.Sprint(size), "--count", fmt.Sprint(count), "--parallel", "2", "--timeout", "60s")
		mbps := func(ms int64) float64 { return float64(size*count) / 1e6 / (float64(ms) / 1000) }
		r = result{cps: float64(h.OK) / (float64(h.ElapsedMS) / 1000), getMBps: mbps(g.ElapsedMS), putMBps: mbps(p.ElapsedMS)}
	})
	return r
}

// TestDataPlaneBenchmark: stock NAT, our NAT and our FULLNAT, two rounds in alternating order;
// the best of each is reported.
func TestDataPlaneBenchmark(t *testing.T) {
	if _, err := os.Stat(stockDir + "/ip_vs.ko"); err != nil {
		t.Fatalf("the stock modules are not in the VM: %v", err)
	}
	setups := []setup{
		{"stock-NAT", true, "-m", ""},
		{"ours-NAT", false, "-m", ""},
		{"ours-FULLNAT", false, "-b", ""},
		// the cost of the PROXY protocol header: once per connection
		{"ours-FULLNAT+PP", false, "-b", "v2"},
	}
	best := map[string]result{}
	for round := 0; round < 2; round++ {
		for i := range setups {
			s := setups[i]
			if round == 1 {
				s = setups[len(setups)-1-i]
			}
			r := measure(t, s)
			if t.Failed() {
				return
			}
			fmt.Printf("BENCH round %d %-15s %7.0f conn/s  get %6.1f MB/s  put %6.1f MB/s\n", round, s.name, r.cps, r.getMBps, r.putMBps)
			b := best[s.name]
			b.cps, b.getMBps, b.putMBps = max(b.cps, r.cps), max(b.getMBps, r.getMBps), max(b.putMBps, r.putMBps)
			best[s.name] = b
		}
	}
	base := best["stock-NAT"]
	fmt.Printf("BENCH kernel=%s data plane, best of 2 rounds (2 real servers, 2000 connections, 4 x 8 MB each way)\n", os.Getenv("RIG_KERNEL"))
	for _, s := range setups {
		b := best[s.name]
		fmt.Printf("BENCH %-15s %7.0f conn/s (%.2fx)  get %6.1f MB/s (%.2fx)  put %6.1f MB/s (%.2fx)  vs stock NAT\n",
			s.name, b.cps, b.cps/base.cps, b.getMBps, b.getMBps/base.getMBps, b.putMBps, b.putMBps/base.putMBps)
	}
}
