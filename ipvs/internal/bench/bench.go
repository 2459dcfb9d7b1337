// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package bench builds the control-plane workload of issue 3 (2,000
// services with 5 real servers each) for the VM benchmark in
// bench_vm_test.go, which times the ipvs library against Debian's C
// ipvsadm in the same VM.
package bench

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/fullnat/fullnat/ipvs"
)

// Workload is a set of services with their destinations.
type Workload struct {
	Services []ipvs.Service
	Dests    [][]ipvs.Destination
}

// New returns services services with dests destinations each, on
// benchmark addresses (198.18.0.0/15).
func New(services, dests int) Workload {
	var w Workload
	for i := range services {
		s := ipvs.Service{Protocol: ipvs.TCP, Address: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), Port: 80, Scheduler: "wlc"}
		w.Services = append(w.Services, s)
		var ds []ipvs.Destination
		for j := range dests {
			ds = append(ds, ipvs.Destination{
				Address:       netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}),
				Port:          uint16(8000 + j),
				ForwardMethod: ipvs.Masquerade,
				Weight:        1,
			})
		}
		w.Dests = append(w.Dests, ds)
	}
	return w
}

// Requests is the number of changes the workload makes.
func (w Workload) Requests() int {
	n := len(w.Services)
	for _, ds := range w.Dests {
		n += len(ds)
	}
	return n
}

// Batch returns the workload as one ipvs.Batch.
func (w Workload) Batch() *ipvs.Batch {
	var b ipvs.Batch
	b.Grow(w.Requests())
	for i, s := range w.Services {
		b.CreateService(s)
		for _, d := range w.Dests[i] {
			b.CreateDestination(s, d)
		}
	}
	return &b
}

// Restore returns the workload as input for "ipvsadm -R".
func (w Workload) Restore() string {
	var sb strings.Builder
	for i, s := range w.Services {
		vip := netip.AddrPortFrom(s.Address, s.Port)
		fmt.Fprintf(&sb, "-A -t %s -s %s\n", vip, s.Scheduler)
		for _, d := range w.Dests[i] {
			fmt.Fprintf(&sb, "-a -t %s -r %s -m -w %d\n", vip, netip.AddrPortFrom(d.Address, d.Port), d.Weight)
		}
	}
	return sb.String()
}

// Dump lists every service and its destinations with c, as "ipvsadm -Ln"
// does, and returns the number of services and destinations.
func Dump(ctx context.Context, c *ipvs.Client) (services, dests int, err error) {
	all, err := c.ServicesWithDestinations(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, s := range all {
		dests += len(s.Destinations)
	}
	return len(all), dests, nil
}

// LocalAddrs are the FULLNAT local addresses of FullNATRestore's
// services; the director must have them (ipvsadm -P checks).
var LocalAddrs = []netip.Addr{netip.MustParseAddr("198.18.255.1"), netip.MustParseAddr("198.18.255.2")}

// FullNATRestore returns the workload as an Alibaba-style table for
// "ipvsadm -R": every service with SYNPROXY and an ESTABLISHED timeout,
// FULLNAT real servers (-b) and one -P line per local address.
func (w Workload) FullNATRestore() string {
	var sb strings.Builder
	for i, s := range w.Services {
		vip := netip.AddrPortFrom(s.Address, s.Port)
		fmt.Fprintf(&sb, "-A -t %s -s %s -j enable -V 600\n", vip, s.Scheduler)
		for _, d := range w.Dests[i] {
			fmt.Fprintf(&sb, "-a -t %s -r %s -b -w %d\n", vip, netip.AddrPortFrom(d.Address, d.Port), d.Weight)
		}
		for _, la := range LocalAddrs {
			fmt.Fprintf(&sb, "-P -t %s -z %s\n", vip, la)
		}
	}
	return sb.String()
}
