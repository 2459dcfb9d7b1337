// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/fullnat/fullnat/ipvs"
)

// errUsage marks bad input: lvsctl exits with status 2 for it, 1 for a
// failure of the operation itself.
var errUsage = errors.New("usage")

// usageError wraps a message about bad input so that errors.Is(err, errUsage).
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == errUsage }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// schedulers are the IPVS schedulers of Linux 6.1 to 7.x.
var schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// parseService parses a service identifier:
//
//	tcp:192.0.2.1:80  udp:[2001:db8::1]:53  sctp:192.0.2.1:9
//	fwm:7             fwm6:7 (an IPv6 firewall-mark service)
//
// It is the "id" of a service in lvsctl's JSON output.
func parseService(s string) (ipvs.Service, error) {
	proto, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return ipvs.Service{}, usagef("service %q: want PROTO:ADDR:PORT (tcp:192.0.2.1:80, udp:[2001:db8::1]:53) or fwm:MARK / fwm6:MARK", s)
	}
	switch strings.ToLower(proto) {
	case "fwm", "fwm6":
		mark, err := strconv.ParseUint(rest, 0, 32)
		if err != nil || mark == 0 {
			return ipvs.Service{}, usagef("service %q: firewall mark %q is not a number from 1 to 4294967295", s, rest)
		}
		fam := ipvs.INET
		if strings.ToLower(proto) == "fwm6" {
			fam = ipvs.INET6
		}
		return ipvs.Service{Family: fam, FWMark: uint32(mark)}, nil
	}
	p, err := parseProtocol(proto)
	if err != nil {
		return ipvs.Service{}, usagef("service %q: %v", s, err)
	}
	ap, err := parseAddrPort(rest, true)
	if err != nil {
		return ipvs.Service{}, usagef("service %q: %v", s, err)
	}
	fam := ipvs.INET
	if ap.Addr().Is6() {
		fam = ipvs.INET6
	}
	return ipvs.Service{Family: fam, Protocol: p, Address: ap.Addr(), Port: ap.Port()}, nil
}

// serviceID is the inverse of parseService.
func serviceID(s ipvs.Service) string {
	if s.FWMark != 0 {
		if s.Family == ipvs.INET6 {
			return fmt.Sprintf("fwm6:%d", s.FWMark)
		}
		return fmt.Sprintf("fwm:%d", s.FWMark)
	}
	return strings.ToLower(s.Protocol.String()) + ":" + netip.AddrPortFrom(s.Address, s.Port).String()
}

func parseProtocol(s string) (ipvs.Protocol, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return ipvs.TCP, nil
	case "udp":
		return ipvs.UDP, nil
	case "sctp":
		return ipvs.SCTP, nil
	}
	return 0, fmt.Errorf("unknown protocol %q (want tcp, udp, sctp, fwm or fwm6)", s)
}

// parseAddrPort parses ADDR:PORT or [ADDR6]:PORT. With needPort false a
// bare address is accepted too (port 0). Errors name the bad part.
func parseAddrPort(s string, needPort bool) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	bare := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if a, err := parseAddr(bare); err == nil {
		if needPort {
			return netip.AddrPort{}, fmt.Errorf("%q has no port (want ADDR:PORT or [IPv6]:PORT)", s)
		}
		return netip.AddrPortFrom(a, 0), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not ADDR:PORT or [IPv6]:PORT", s)
	}
	a, err := parseAddr(host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// parseAddr parses an IPv4 or IPv6 address without zone.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("address %q is not an IPv4 or IPv6 address", s)
	}
	return a.Unmap(), nil
}

// checkScheduler refuses a scheduler name no kernel line has.
func checkScheduler(s string) error {
	if slices.Contains(schedulers, s) {
		return nil
	}
	return usagef("unknown scheduler %q (want one of %s)", s, strings.Join(schedulers, ", "))
}

// forwardMethods are the names --method takes.
var forwardMethods = map[string]ipvs.ForwardMethod{
	"nat": ipvs.Masquerade, "masq": ipvs.Masquerade,
	"dr": ipvs.DirectRoute, "route": ipvs.DirectRoute,
	"tunnel": ipvs.Tunnel, "ipip": ipvs.Tunnel,
	"local":   ipvs.Local,
	"fullnat": ipvs.FullNAT, "fnat": ipvs.FullNAT,
}

func parseForwardMethod(s string) (ipvs.ForwardMethod, error) {
	if m, ok := forwardMethods[strings.ToLower(s)]; ok {
		return m, nil
	}
	return 0, usagef("unknown forwarding method %q (want nat, dr, tunnel, local or fullnat)", s)
}

// methodName is the JSON and text name of a forwarding method.
func methodName(m ipvs.ForwardMethod) string {
	switch m {
	case ipvs.Masquerade:
		return "nat"
	case ipvs.DirectRoute:
		return "dr"
	case ipvs.Tunnel:
		return "tunnel"
	case ipvs.Local:
		return "local"
	case ipvs.Bypass:
		return "bypass"
	case ipvs.FullNAT:
		return "fullnat"
	}
	return fmt.Sprintf("method-%d", uint32(m))
}

// serviceFlagNames are the names --flags takes and the JSON "flags" lists.
var serviceFlagNames = []struct {
	name string
	f    ipvs.ServiceFlags
}{
	{"persistent", ipvs.FlagPersistent},
	{"hashed", ipvs.FlagHashed},
	{"one-packet", ipvs.FlagOnePacket},
	{"sched1", ipvs.FlagSched1},
	{"sched2", ipvs.FlagSched2},
	{"sched3", ipvs.FlagSched3},
	{"synproxy", ipvs.FlagSynProxy},
}

// settableFlags are the flags a user may set with --flag ("hashed" and
// "persistent" are the kernel's and --persistent's).
var settableFlags = []string{"one-packet", "sched1", "sched2", "sched3", "synproxy"}

// parseProxyProtocol reads --proxy-protocol: off, v1 or v2.
func parseProxyProtocol(v string) (ipvs.ProxyProtocol, error) {
	for _, p := range []ipvs.ProxyProtocol{ipvs.ProxyProtocolOff, ipvs.ProxyProtocolV1, ipvs.ProxyProtocolV2} {
		if strings.ToLower(v) == p.String() {
			return p, nil
		}
	}
	return 0, usagef("unknown PROXY protocol version %q (want off, v1 or v2)", v)
}

func parseServiceFlags(names []string) (ipvs.ServiceFlags, error) {
	var f ipvs.ServiceFlags
	for _, list := range names {
		for _, n := range strings.Split(list, ",") {
			n = strings.TrimSpace(strings.ToLower(n))
			if n == "" {
				continue
			}
			if !slices.Contains(settableFlags, n) {
				return 0, usagef("unknown service flag %q (want %s)", n, strings.Join(settableFlags, ", "))
			}
			for _, sf := range serviceFlagNames {
				if sf.name == n {
					f |= sf.f
				}
			}
		}
	}
	return f, nil
}

// flagList names the set bits of f, unknown bits as 0x...
func flagList(f ipvs.ServiceFlags) []string {
	out := []string{}
	for _, sf := range serviceFlagNames {
		if f&sf.f != 0 {
			out = append(out, sf.name)
			f &^= sf.f
		}
	}
	if f != 0 {
		out = append(out, fmt.Sprintf("0x%x", uint32(f)))
	}
	return out
}
