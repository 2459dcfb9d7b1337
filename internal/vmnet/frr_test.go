// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package vmnet

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestBGPConfigRender(t *testing.T) {
	director := BGPConfig{
		RouterID: netip.MustParseAddr("10.0.1.2"),
		AS:       65001,
		Neighbors: []BGPNeighbor{
			{Addr: netip.MustParseAddr("10.0.1.1"), AS: 65000},
			{Addr: netip.MustParseAddr("fd00:1::1"), AS: 65000},
		},
		Announce: []netip.Prefix{netip.MustParsePrefix("203.0.113.10/32"), netip.MustParsePrefix("2001:db8:10::10/128")},
	}
	conf, err := director.Render("d1")
	if err != nil {
		t.Fatal(err)
	}
	// Each family's prefixes in its own list and route map, redistributed and sent to the
	// neighbors of that family only; the timers' defaults; no maximum-paths when not asked.
	for _, want := range []string{
		"hostname d1\n",
		"ip prefix-list ANNOUNCE4 seq 5 permit 203.0.113.10/32\n",
		"ipv6 prefix-list ANNOUNCE6 seq 5 permit 2001:db8:10::10/128\n",
		"route-map ANNOUNCE4 permit 10\n match ip address prefix-list ANNOUNCE4\n",
		"route-map ANNOUNCE6 permit 10\n match ipv6 address prefix-list ANNOUNCE6\n",
		"router bgp 65001\n bgp router-id 10.0.1.2\n",
		" timers bgp 1 3\n",
		" neighbor 10.0.1.1 remote-as 65000\n",
		" address-family ipv4 unicast\n  redistribute connected route-map ANNOUNCE4\n  neighbor 10.0.1.1 activate\n  neighbor 10.0.1.1 route-map ANNOUNCE4 out\n exit-address-family\n",
		" address-family ipv6 unicast\n  redistribute connected route-map ANNOUNCE6\n  neighbor fd00:1::1 activate\n  neighbor fd00:1::1 route-map ANNOUNCE6 out\n exit-address-family\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("director's bgpd.conf has no %q:\n%s", want, conf)
		}
	}
	for _, not := range []string{"maximum-paths", "passive"} {
		if strings.Contains(conf, not) {
			t.Errorf("director's bgpd.conf has %q:\n%s", not, conf)
		}
	}

	router := BGPConfig{
		RouterID:     netip.MustParseAddr("192.0.2.1"),
		AS:           65000,
		Neighbors:    []BGPNeighbor{{Addr: netip.MustParseAddr("10.0.1.2"), AS: 65001, Passive: true}},
		MaximumPaths: 8,
		Keepalive:    2,
		Hold:         6,
	}
	conf, err = router.Render("rt")
	if err != nil {
		t.Fatal(err)
	}
	// A router announces nothing: its route maps deny all; no IPv6 family without neighbors or
	// prefixes.
	for _, want := range []string{
		"route-map ANNOUNCE4 deny 10\n",
		" neighbor 10.0.1.2 passive\n",
		" timers bgp 2 6\n",
		"  neighbor 10.0.1.2 route-map ANNOUNCE4 out\n  maximum-paths 8\n  maximum-paths ibgp 8\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("router's bgpd.conf has no %q:\n%s", want, conf)
		}
	}
	for _, not := range []string{"redistribute", "address-family ipv6", "prefix-list ANNOUNCE4"} {
		if strings.Contains(conf, not) {
			t.Errorf("router's bgpd.conf has %q:\n%s", not, conf)
		}
	}
}

func TestBGPConfigRenderErrors(t *testing.T) {
	ok := BGPConfig{RouterID: netip.MustParseAddr("10.0.0.1"), AS: 65000}
	nbr := func(a string, as uint32) []BGPNeighbor {
		return []BGPNeighbor{{Addr: netip.MustParseAddr(a), AS: as}}
	}
	for _, c := range []struct {
		name string
		mod  func(*BGPConfig)
		want string
	}{
		{"no router id", func(c *BGPConfig) { c.RouterID = netip.Addr{} }, "router id invalid IP is not an IPv4 address"},
		{"IPv6 router id", func(c *BGPConfig) { c.RouterID = netip.MustParseAddr("2001:db8::1") }, "router id 2001:db8::1"},
		{"AS 0", func(c *BGPConfig) { c.AS = 0 }, "AS number 0"},
		{"neighbor AS 0", func(c *BGPConfig) { c.Neighbors = nbr("10.0.0.2", 0) }, "neighbor 10.0.0.2 has AS number 0"},
		{"neighbor twice", func(c *BGPConfig) { c.Neighbors = append(nbr("10.0.0.2", 1), nbr("10.0.0.2", 2)...) }, "neighbor 10.0.0.2 twice"},
		{"neighbor with zone", func(c *BGPConfig) { c.Neighbors = nbr("fe80::1%eth0", 1) }, "neighbor address fe80::1%eth0"},
		{"host bits", func(c *BGPConfig) { c.Announce = []netip.Prefix{netip.MustParsePrefix("203.0.113.10/24")} }, "203.0.113.10/24 has host bits set (203.0.113.0/24)"},
		{"hold below 3", func(c *BGPConfig) { c.Hold = 2 }, "timers keepalive 1 hold 2"},
		{"maximum-paths", func(c *BGPConfig) { c.MaximumPaths = 257 }, "maximum-paths 257"},
	} {
		c2 := ok
		c.mod(&c2)
		_, err := c2.Render("x")
		if !errors.Is(err, ErrBGPConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want ErrBGPConfig naming %q", c.name, err, c.want)
		}
	}
	if _, err := ok.Render("two words"); !errors.Is(err, ErrBGPConfig) {
		t.Errorf("hostname with a space: error %v, want ErrBGPConfig", err)
	}
}
