// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

// Number and name parsing with the C library's semantics ipvsadm relies
// on: strtol, atoi, inet_aton, inet_pton, and host and service lookups
// through /etc/hosts, /etc/services and DNS.

import (
	"bufio"
	"context"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

func cIsSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func cIsDigit(c byte) bool { return c >= '0' && c <= '9' }

// cStrtol parses like strtol(s, &end, 10): it returns the value, the
// unparsed rest, whether any digit was read and whether it overflowed.
func cStrtol(s string) (v int64, rest string, ok, erange bool) {
	i := 0
	for i < len(s) && cIsSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var acc uint64
	for i < len(s) && cIsDigit(s[i]) {
		if !erange {
			acc = acc*10 + uint64(s[i]-'0')
			if (!neg && acc > math.MaxInt64) || (neg && acc > math.MaxInt64+1) {
				erange = true
			}
		}
		i++
	}
	if i == start {
		return 0, s, false, false
	}
	switch {
	case erange && neg:
		v = math.MinInt64
	case erange:
		v = math.MaxInt64
	case neg:
		v = -int64(acc)
	default:
		v = int64(acc)
	}
	return v, s[i:], true, erange
}

// stringToNumber is ipvsadm's string_to_number: the whole string must be
// a base-10 number within [min, max]; otherwise -1.
func stringToNumber(s string, min, max int64) int64 {
	v, rest, ok, erange := cStrtol(s)
	if ok && rest == "" && !erange && min <= v && v <= max {
		return v
	}
	return -1
}

// cAtoi is atoi: strtol truncated to int.
func cAtoi(s string) int32 {
	v, _, _, _ := cStrtol(s)
	return int32(v)
}

// cStrtoul0 parses an unsigned number with base 0 (0x hex, 0 octal, else
// decimal) from the start of s, which must begin with a digit.
func cStrtoul0(s string) (v uint64, rest string, overflow bool) {
	base := uint64(10)
	i := 0
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && isHex(s[2]):
		base, i = 16, 2
	case len(s) > 0 && s[0] == '0':
		base = 8
	}
	for ; i < len(s); i++ {
		d, ok := digitVal(s[i])
		if !ok || d >= base {
			break
		}
		if v > (math.MaxUint64-d)/base {
			overflow = true
		}
		v = v*base + d
	}
	return v, s[i:], overflow
}

func isHex(c byte) bool { _, ok := digitVal(c); return ok }

func digitVal(c byte) (uint64, bool) {
	switch {
	case c >= '0' && c <= '9':
		return uint64(c - '0'), true
	case c >= 'a' && c <= 'f':
		return uint64(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return uint64(c-'A') + 10, true
	}
	return 0, false
}

// inetAton is glibc's inet_aton: 1 to 4 parts, each in C number syntax.
func inetAton(s string) (netip.Addr, bool) {
	var parts [4]uint64
	n := 0
	rest := s
	var val uint64
	for {
		if rest == "" || !cIsDigit(rest[0]) {
			return netip.Addr{}, false
		}
		var of bool
		val, rest, of = cStrtoul0(rest)
		if of || val > 0xffffffff {
			return netip.Addr{}, false
		}
		if rest != "" && rest[0] == '.' {
			if n > 2 || val > 0xff {
				return netip.Addr{}, false
			}
			parts[n] = val
			n++
			rest = rest[1:]
			continue
		}
		break
	}
	if rest != "" && (rest[0] >= 0x80 || !cIsSpace(rest[0])) {
		return netip.Addr{}, false
	}
	max := [4]uint64{0xffffffff, 0xffffff, 0xffff, 0xff}
	if val > max[n] {
		return netip.Addr{}, false
	}
	var a uint32
	for i := 0; i < n; i++ {
		a |= uint32(parts[i]) << (24 - 8*i)
	}
	a |= uint32(val)
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), true
}

// inetPton6 is inet_pton(AF_INET6): no zones, no IPv4 forms.
func inetPton6(s string) (netip.Addr, bool) {
	if !strings.Contains(s, ":") || strings.Contains(s, "%") {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return netip.Addr{}, false
	}
	return a, true
}

// inetPton4 is inet_pton(AF_INET): exactly four decimal parts.
func inetPton4(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

// resolver looks up names as glibc's gethostbyname, gethostbyaddr,
// getservbyname and getservbyport do with "files dns".
type resolver struct {
	hostsPath    string
	servicesPath string
	// dns enables DNS after the files (the system resolver, pure Go).
	dns bool

	hosts    []hostLine
	services []servLine
	loadedH  bool
	loadedS  bool
}

type hostLine struct {
	addr  netip.Addr
	names []string
}

type servLine struct {
	names []string
	port  uint16
	proto string
}

// newSystemResolver follows /etc/nsswitch.conf's "hosts:" line as far as
// it matters here: DNS is asked after the files unless the line exists
// and does not name dns.
func newSystemResolver() *resolver {
	r := &resolver{hostsPath: "/etc/hosts", servicesPath: "/etc/services", dns: true}
	readFields("/etc/nsswitch.conf", func(f []string) {
		if f[0] != "hosts:" {
			return
		}
		r.dns = false
		for _, s := range f[1:] {
			if s == "dns" {
				r.dns = true
			}
		}
	})
	return r
}

func readFields(path string, fn func(f []string)) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if fs := strings.Fields(line); len(fs) > 0 {
			fn(fs)
		}
	}
}

func (r *resolver) loadHosts() {
	if r.loadedH {
		return
	}
	r.loadedH = true
	readFields(r.hostsPath, func(f []string) {
		if len(f) < 2 {
			return
		}
		var a netip.Addr
		if v4, ok := inetPton4(f[0]); ok {
			a = v4
		} else if v6, ok := inetPton6(f[0]); ok {
			a = v6
		} else {
			return
		}
		r.hosts = append(r.hosts, hostLine{addr: a, names: f[1:]})
	})
}

func (r *resolver) loadServices() {
	if r.loadedS {
		return
	}
	r.loadedS = true
	readFields(r.servicesPath, func(f []string) {
		if len(f) < 2 {
			return
		}
		pp := strings.SplitN(f[1], "/", 2)
		if len(pp) != 2 {
			return
		}
		port, err := strconv.ParseUint(pp[0], 10, 16)
		if err != nil {
			return
		}
		names := append([]string{f[0]}, f[2:]...)
		r.services = append(r.services, servLine{names: names, port: uint16(port), proto: pp[1]})
	})
}

func dnsContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// hostToAddr is gethostbyname for IPv4: the first address of name.
func (r *resolver) hostToAddr(name string) (netip.Addr, bool) {
	if name == "" {
		return netip.Addr{}, false
	}
	// glibc answers names made of digits and dots itself: inet_aton
	// already failed on them, so they do not resolve.
	digitsDots := true
	for i := 0; i < len(name); i++ {
		if !cIsDigit(name[i]) && name[i] != '.' {
			digitsDots = false
			break
		}
	}
	if digitsDots {
		return netip.Addr{}, false
	}
	r.loadHosts()
	for _, h := range r.hosts {
		if !h.addr.Is4() {
			continue
		}
		for _, n := range h.names {
			if strings.EqualFold(n, name) {
				return h.addr, true
			}
		}
	}
	if !r.dns {
		return netip.Addr{}, false
	}
	ctx, cancel := dnsContext()
	defer cancel()
	res := &net.Resolver{PreferGo: true}
	ips, err := res.LookupNetIP(ctx, "ip4", name)
	if err != nil || len(ips) == 0 {
		return netip.Addr{}, false
	}
	return ips[0].Unmap(), true
}

// addrToHost is gethostbyaddr: the canonical name of addr, or false.
func (r *resolver) addrToHost(a netip.Addr) (string, bool) {
	r.loadHosts()
	for _, h := range r.hosts {
		if h.addr == a {
			return h.names[0], true
		}
	}
	if !r.dns {
		return "", false
	}
	ctx, cancel := dnsContext()
	defer cancel()
	res := &net.Resolver{PreferGo: true}
	names, err := res.LookupAddr(ctx, a.String())
	if err != nil || len(names) == 0 {
		return "", false
	}
	return strings.TrimSuffix(names[0], "."), true
}

func protoName(proto uint16) string {
	switch proto {
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	case protoSCTP:
		return "sctp"
	}
	return ""
}

// serviceToPort is getservbyname(name, proto) for TCP, UDP and SCTP.
func (r *resolver) serviceToPort(name string, proto uint16) (uint16, bool) {
	pn := protoName(proto)
	if pn == "" {
		return 0, false
	}
	r.loadServices()
	for _, s := range r.services {
		if s.proto != pn {
			continue
		}
		for _, n := range s.names {
			if n == name {
				return s.port, true
			}
		}
	}
	return 0, false
}

// portToService is getservbyport(port, proto): the official name.
func (r *resolver) portToService(port uint16, proto uint16) (string, bool) {
	pn := protoName(proto)
	if pn == "" {
		return "", false
	}
	r.loadServices()
	for _, s := range r.services {
		if s.proto == pn && s.port == port {
			return s.names[0], true
		}
	}
	return "", false
}
