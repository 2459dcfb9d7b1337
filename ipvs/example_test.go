// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/fullnat/fullnat/ipvs"
	"github.com/fullnat/fullnat/ipvs/ipvstest"
)

// Create a virtual service with two real servers, as
// "ipvsadm -A -t 192.0.2.1:80 -s rr; ipvsadm -a -t ... -r ... -m" would.
func ExampleClient_CreateService() {
	ctx := context.Background()
	c, err := ipvs.New()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	svc := ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80, Scheduler: "rr"}
	if err := c.CreateService(ctx, svc); err != nil && !errors.Is(err, os.ErrExist) {
		log.Fatal(err)
	}
	for _, rs := range []string{"198.51.100.11", "198.51.100.12"} {
		d := ipvs.Destination{Address: netip.MustParseAddr(rs), Port: 8080, ForwardMethod: ipvs.Masquerade, Weight: 1}
		if err := c.CreateDestination(ctx, svc, d); err != nil {
			log.Fatal(err)
		}
	}
}

// List every service with its real servers.
func ExampleClient_Services() {
	ctx := context.Background()
	c, err := ipvs.New()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	svcs, err := c.Services(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range svcs {
		fmt.Println(s, s.Scheduler, s.Stats64.Connections)
		ds, err := c.Destinations(ctx, s)
		if err != nil {
			log.Fatal(err)
		}
		for _, d := range ds {
			fmt.Println("  ->", d, d.ForwardMethod, d.Weight, d.ActiveConns)
		}
	}
}

// Apply many changes at once: the requests are pipelined on one socket and
// each failure is reported with the operation that caused it.
func ExampleClient_Apply() {
	ctx := context.Background()
	c, err := ipvs.New()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	var b ipvs.Batch
	for i := range 100 {
		svc := ipvs.Service{Protocol: ipvs.TCP, Address: netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}), Port: 80}
		b.CreateService(svc)
		b.CreateDestination(svc, ipvs.Destination{Address: netip.AddrFrom4([4]byte{198, 19, 0, byte(i)}), Port: 80, Weight: 1})
	}
	err = c.Apply(ctx, &b)
	var be *ipvs.BatchError
	if errors.As(err, &be) {
		for _, f := range be.Failed {
			log.Printf("op %d (%s) failed: %v", f.Index, f.Op.Kind, f.Err)
		}
	} else if err != nil {
		log.Fatal(err)
	}
}

// Use FULLNAT only where the running module has it.
func ExampleClient_Features() {
	ctx := context.Background()
	c, err := ipvs.New()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	svc := ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80}
	d := ipvs.Destination{Address: netip.MustParseAddr("198.51.100.11"), Port: 80, ForwardMethod: ipvs.FullNAT, Weight: 1}
	err = c.CreateDestination(ctx, svc, d)
	if errors.Is(err, ipvs.ErrNotSupported) {
		// stock module: nothing was sent
		d.ForwardMethod = ipvs.Masquerade
		err = c.CreateDestination(ctx, svc, d)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// Stream the connection table without loading it into memory.
func ExampleParseConnections() {
	table := `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP C0000202 D431 CB00710A 0050 C633640B 0050 ESTABLISHED     899
UDP C0000202 9C40 CB00710A 0035 C633640C 0035 UDP             298
`
	// On a director: for c, err := range ipvs.ReadConnections(ipvs.ConnPath)
	for c, err := range ipvs.ParseConnections(strings.NewReader(table)) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(c.Protocol, c.Client, "->", c.Virtual, "->", c.Destination, c.State, c.Expires)
	}
	// Output:
	// TCP 192.0.2.2:54321 -> 203.0.113.10:80 -> 198.51.100.11:80 ESTABLISHED 14m59s
	// UDP 192.0.2.2:40000 -> 203.0.113.10:53 -> 198.51.100.12:53 UDP 4m58s
}

// Stream the connections of one service. Here the kernel is ipvstest's
// fake; on a director c comes from ipvs.New().
func ExampleClient_ServiceConnections() {
	k := ipvstest.New(ipvstest.Options{})
	c, err := k.Client()
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	svc := ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("203.0.113.10"), Port: 80, Scheduler: "rr"}
	if err := c.CreateService(ctx, svc); err != nil {
		log.Fatal(err)
	}
	// what traffic would have made
	_ = k.AddConnection(ipvs.Connection{Protocol: "TCP", Client: netip.MustParseAddrPort("192.0.2.2:54321"),
		Virtual: netip.MustParseAddrPort("203.0.113.10:80"), Local: netip.MustParseAddrPort("198.51.100.101:5001"),
		Destination: netip.MustParseAddrPort("198.51.100.11:80"), State: "ESTABLISHED",
		Expires: 899 * time.Second, Flags: ipvs.ConnFlags(ipvs.FullNAT)})
	for conn, err := range c.ServiceConnections(ctx, svc) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(conn.Client, "->", conn.Virtual, "via", conn.Local, "->", conn.Destination,
			conn.Flags.ForwardMethod(), conn.State, conn.Expires)
	}
	// Output:
	// 192.0.2.2:54321 -> 203.0.113.10:80 via 198.51.100.101:5001 -> 198.51.100.11:80 FullNat ESTABLISHED 14m59s
}

// Services print the way they are identified in errors.
func ExampleService_String() {
	fmt.Println(ipvs.Service{Protocol: ipvs.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80})
	fmt.Println(ipvs.Service{Protocol: ipvs.UDP, Address: netip.MustParseAddr("2001:db8::1"), Port: 53})
	fmt.Println(ipvs.Service{FWMark: 7})
	fmt.Println(ipvs.FlagPersistent | ipvs.FlagSynProxy)
	// Output:
	// TCP 192.0.2.1:80
	// UDP [2001:db8::1]:53
	// FWM 7
	// persistent|synproxy
}
