// Copyright The fullnat Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package toa

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fullnat/fullnat/internal/vmnet"
)

// allowRig is a server namespace with IPv4, IPv6-only and dual-stack listeners, reached by the
// director (through l) and by a forger (through f) that sends TOA options too.
type allowRig struct {
	l, f              *link
	tp, ftp           *tap
	ln4, ln6only, ln6 *listener
}

func newAllowRig(t *testing.T) *allowRig {
	t.Helper()
	r := &allowRig{l: newLink(t)}
	r.f = r.l.forger(t)
	r.tp, r.ftp = r.l.tap(t), r.f.tap(t)
	r.ln4, r.ln6only, r.ln6 = r.l.listen(t, false, false), r.l.listen(t, true, true), r.l.listen(t, true, false)
	return r
}

// forgerSrc returns a forger address and a port not used before in this run.
func forgerSrc(v6 bool) netip.AddrPort {
	p := director(v6).Port()
	if v6 {
		return netip.AddrPortFrom(forger6, p)
	}
	return netip.AddrPortFrom(forger4, p)
}

// sender is who opens a connection: the director or the forger.
type sender int

const (
	fromDirector sender = iota
	fromForger
)

func (s sender) String() string {
	if s == fromForger {
		return "forger"
	}
	return "director"
}

// check opens one connection of each kind from s with a TOA and expects the client when
// honoured, the sender's own address otherwise: an IPv4 client on an IPv4 socket, an IPv6
// client on an IPv6-only socket, an IPv4 client on a dual-stack socket (tcp_v6_syn_recv_sock
// handing over to tcp_v4_syn_recv_sock), in that order.
func (r *allowRig) check(t *testing.T, s sender, honoured4, honoured6 bool) {
	t.Helper()
	tp, src := r.tp, director
	if s == fromForger {
		tp, src = r.ftp, forgerSrc
	}
	pick := func(honoured bool, client, real netip.AddrPort) netip.AddrPort {
		if honoured {
			return client
		}
		return real
	}
	a := src(false)
	t.Logf("%v %v, IPv4 socket, honoured %v", s, a, honoured4)
	expect(t, tp, r.ln4, a, nil, TOAv4(cli4), pick(honoured4, cli4, a))
	a = src(true)
	t.Logf("%v %v, IPv6 socket, honoured %v", s, a, honoured6)
	expect(t, tp, r.ln6only, a, nil, TOAv6(KindTOAv6, cli6), pick(honoured6, cli6, a))
	a = src(false)
	t.Logf("%v %v, dual-stack socket, honoured %v", s, a, honoured4)
	expect(t, tp, r.ln6, a, nil, TOAv4(cli4), pick(honoured4, mapped(cli4), mapped(a)))
}

// stats reads toa_stats of the server namespace.
func (r *allowRig) stats(t *testing.T) map[string]uint64 {
	t.Helper()
	st, err := readStats(r.l.rs)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// wantDelta checks how much the connection counters grew from before.
func (r *allowRig) wantDelta(t *testing.T, before map[string]uint64, toa, untrusted uint64) {
	t.Helper()
	after := r.stats(t)
	got := func(k string) uint64 { return after[k] - before[k] }
	if got("syn_recv_sock_toa") != toa || got("syn_recv_sock_untrusted") != untrusted || got("syn_recv_sock_no_toa") != 0 {
		t.Errorf("toa_stats grew by syn_recv_sock_toa %d, syn_recv_sock_untrusted %d, syn_recv_sock_no_toa %d; want %d, %d, 0",
			got("syn_recv_sock_toa"), got("syn_recv_sock_untrusted"), got("syn_recv_sock_no_toa"), toa, untrusted)
	}
}

// A non-empty net.toa.allow honours a TOA only from the senders it names, counts the others in
// syn_recv_sock_untrusted, and an empty one honours everyone.
func TestAllowList(t *testing.T) {
	loadTOA(t)
	r := newAllowRig(t)

	// Empty: today's behaviour, a forged TOA is honoured too.
	if got, err := readAllow(r.l.rs); err != nil || got != "" {
		t.Fatalf("net.toa.allow of a new namespace = %q (%v), want empty", got, err)
	}
	st := r.stats(t)
	r.check(t, fromDirector, true, true)
	r.check(t, fromForger, true, true)
	r.wantDelta(t, st, 6, 0)

	// The director's local addresses.
	setAllow(t, r.l.rs, "198.51.100.1 2001:db8:2::1/128", "198.51.100.1/32 2001:db8:2::1/128")
	st = r.stats(t)
	r.check(t, fromDirector, true, true)
	r.check(t, fromForger, false, false)
	r.wantDelta(t, st, 3, 3)
	// A socket whose TOA was ignored counts as one without a client in getname().
	if after := r.stats(t); after["getname_toa_ok"]-st["getname_toa_ok"] != 6 {
		t.Errorf("getname_toa_ok grew by %d, want 6 (the director's connections only)", after["getname_toa_ok"]-st["getname_toa_ok"])
	}

	// Networks: the forger's address is inside them or just outside.
	setAllow(t, r.l.rs, "198.51.100.0/24 192.0.2.64/26 2001:db8:2::/64 2001:db8:4::/64",
		"198.51.100.0/24 192.0.2.64/26 2001:db8:2::/64 2001:db8:4::/64")
	st = r.stats(t)
	r.check(t, fromForger, true, true)
	r.wantDelta(t, st, 3, 0)
	setAllow(t, r.l.rs, "198.51.100.0/24 192.0.2.0/26 192.0.2.67/32 2001:db8:2::/64 2001:db8:4:0:8000::/65",
		"198.51.100.0/24 192.0.2.0/26 192.0.2.67/32 2001:db8:2::/64 2001:db8:4:0:8000::/65")
	st = r.stats(t)
	r.check(t, fromForger, false, false)
	r.check(t, fromDirector, true, true)
	r.wantDelta(t, st, 3, 3)

	// A family's whole space trusts only that family.
	setAllow(t, r.l.rs, "0.0.0.0/0", "0.0.0.0/0")
	st = r.stats(t)
	r.check(t, fromForger, true, false)
	r.check(t, fromDirector, true, false)
	r.wantDelta(t, st, 4, 2)
	setAllow(t, r.l.rs, "::/0", "::/0")
	st = r.stats(t)
	r.check(t, fromForger, false, true)
	r.wantDelta(t, st, 1, 2)

	// Empty again: everyone.
	setAllow(t, r.l.rs, "\n", "")
	st = r.stats(t)
	r.check(t, fromForger, true, true)
	r.wantDelta(t, st, 3, 0)
}

// Writes replace the list whole: a write with anything invalid fails with a clear error and
// changes nothing.
func TestAllowListWrites(t *testing.T) {
	loadTOA(t)
	r := newAllowRig(t)

	// Canonical form: lengths always, compressed lower-case IPv6, duplicates dropped, any white
	// space between prefixes.
	setAllow(t, r.l.rs, " 198.51.100.1\t2001:DB8:2:0:0::1/128\n198.51.100.1/32  10.0.0.0/8\n",
		"198.51.100.1/32 2001:db8:2::1/128 10.0.0.0/8")

	// 64 distinct prefixes is the limit; repeating one of them does not count.
	var many []string
	for i := 0; i < 64; i++ {
		many = append(many, fmt.Sprintf("10.%d.0.0/16", i))
	}
	full := strings.Join(many, " ")
	setAllow(t, r.l.rs, full+" 10.0.0.0/16", full)

	const list = "198.51.100.1/32 2001:db8:2::1/128"
	setAllow(t, r.l.rs, list, list)
	cases := []struct {
		name, v string
		err     error
	}{
		{"IPv4 length 33", "198.51.100.1/33", unix.EINVAL},
		{"IPv6 length 129", "2001:db8::/129", unix.EINVAL},
		{"IPv4 host bits", "198.51.100.1/24", unix.EINVAL},
		{"IPv6 host bits", "2001:db8:2::1/64", unix.EINVAL},
		{"octet 256", "198.51.100.256", unix.EINVAL},
		{"three octets", "198.51.100", unix.EINVAL},
		{"five octets", "198.51.100.1.2", unix.EINVAL},
		{"leading zero", "010.0.0.1", unix.EINVAL},
		{"a name", "director", unix.EINVAL},
		{"empty length", "198.51.100.0/", unix.EINVAL},
		{"length only", "/24", unix.EINVAL},
		{"trailing garbage", "198.51.100.0/24x", unix.EINVAL},
		{"negative length", "198.51.100.0/-1", unix.EINVAL},
		{"signed length", "198.51.100.0/+24", unix.EINVAL},
		{"zone", "fe80::1%r0", unix.EINVAL},
		{"IPv4-mapped IPv6", "::ffff:198.51.100.1", unix.EINVAL},
		{"triple colon", "2001:db8:::1", unix.EINVAL},
		{"comma separated", "198.51.100.1,192.0.2.66", unix.EINVAL},
		{"valid then invalid", "192.0.2.66 junk", unix.EINVAL},
		{"65 prefixes", full + " 192.0.2.66", unix.E2BIG},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := writeAllow(r.l.rs, c.v, 0)
			if !errors.Is(err, c.err) {
				t.Errorf("writing %q: %v, want %v", c.v, err, c.err)
			}
			if got, err := readAllow(r.l.rs); err != nil || got != list {
				t.Errorf("after writing %q net.toa.allow = %q (%v), want %q unchanged", c.v, got, err, list)
			}
		})
	}
	t.Run("write at an offset", func(t *testing.T) {
		if err := writeAllow(r.l.rs, "192.0.2.66", 1); !errors.Is(err, unix.EINVAL) {
			t.Errorf("writing at offset 1: %v, want EINVAL", err)
		}
		if got, err := readAllow(r.l.rs); err != nil || got != list {
			t.Errorf("net.toa.allow = %q (%v), want %q unchanged", got, err, list)
		}
	})

	// The list still works as written.
	st := r.stats(t)
	r.check(t, fromDirector, true, true)
	r.check(t, fromForger, false, false)
	r.wantDelta(t, st, 3, 3)
}

// Each network namespace has its own list.
func TestAllowListPerNamespace(t *testing.T) {
	loadTOA(t)
	a, b := newAllowRig(t), newAllowRig(t)

	setAllow(t, a.l.rs, "198.51.100.1 2001:db8:2::1", "198.51.100.1/32 2001:db8:2::1/128")
	if got, err := readAllow(b.l.rs); err != nil || got != "" {
		t.Fatalf("namespace B: net.toa.allow = %q (%v), want empty", got, err)
	}
	sa, sb := a.stats(t), b.stats(t)
	a.check(t, fromForger, false, false)
	b.check(t, fromForger, true, true)
	a.wantDelta(t, sa, 0, 3)
	b.wantDelta(t, sb, 3, 0)

	// B trusts only the forger: the director's TOA is ignored there and still honoured in A.
	setAllow(t, b.l.rs, "192.0.2.66 2001:db8:4::66", "192.0.2.66/32 2001:db8:4::66/128")
	if got, err := readAllow(a.l.rs); err != nil || got != "198.51.100.1/32 2001:db8:2::1/128" {
		t.Fatalf("namespace A: net.toa.allow = %q (%v) after writing B's", got, err)
	}
	sa, sb = a.stats(t), b.stats(t)
	a.check(t, fromDirector, true, true)
	b.check(t, fromDirector, false, false)
	b.check(t, fromForger, true, true)
	a.wantDelta(t, sa, 3, 0)
	b.wantDelta(t, sb, 3, 3)
}

// Anyone may read a namespace's list; only whoever has CAP_NET_ADMIN over the namespace may write
// it: an unprivileged user may not, the root of a user namespace may for its own network
// namespace and not for the initial one.
func TestAllowListRights(t *testing.T) {
	loadTOA(t)
	l := newLink(t)
	const list = "198.51.100.1/32"
	setAllow(t, l.rs, list, list)

	// sh runs script as uid/gid 1000 in the server's namespace, or in new user and network
	// namespaces (or a new user namespace only) where it is root, mapped to 1000.
	sh := func(script string, attr *syscall.SysProcAttr, inServer bool) (string, error) {
		var out []byte
		run := func() error {
			cmd := exec.Command("/bin/sh", "-c", script)
			cmd.SysProcAttr = attr
			var err error
			out, err = cmd.CombinedOutput()
			return err
		}
		var err error
		if inServer {
			err = vmnet.InNetns(string(l.rs), run)
		} else {
			err = run()
		}
		return strings.TrimSpace(string(out)), err
	}
	user := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1000, Gid: 1000}}
	// Root of the user namespace is uid 1000 outside: the process must become it (Credential),
	// not stay the initial namespace's uid 0, which sysctls treat as root whatever its
	// capabilities, as they do for the kernel's own sysctls.
	userns := func(flags uintptr) *syscall.SysProcAttr {
		return &syscall.SysProcAttr{
			Cloneflags:                 flags,
			UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1000, Size: 1}},
			GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1000, Size: 1}},
			GidMappingsEnableSetgroups: true,
			Credential:                 &syscall.Credential{Uid: 0, Gid: 0},
		}
	}

	out, err := sh("cat "+allowPath, user, true)
	if err != nil || out != list {
		t.Errorf("unprivileged user reads %q (%v), want %q", out, err, list)
	}
	out, err = sh("echo 192.0.2.66 > "+allowPath, user, true)
	if err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("unprivileged user wrote net.toa.allow: %v: %s", err, out)
	}
	if got, err := readAllow(l.rs); err != nil || got != list {
		t.Errorf("net.toa.allow = %q (%v) after an unprivileged write, want %q", got, err, list)
	}

	// Its own network namespace: the module's pernet init gives it an empty list.
	out, err = sh("cat "+allowPath+" && echo 192.0.2.64/26 > "+allowPath+" && cat "+allowPath,
		userns(unix.CLONE_NEWUSER|unix.CLONE_NEWNET), false)
	if err != nil || out != "192.0.2.64/26" {
		t.Errorf("root of a user namespace in its own network namespace: %v: %q, want %q", err, out, "192.0.2.64/26")
	}

	// The initial network namespace belongs to the initial user namespace.
	before, err := os.ReadFile(allowPath)
	if err != nil {
		t.Fatal(err)
	}
	out, err = sh("echo 192.0.2.66 > "+allowPath, userns(unix.CLONE_NEWUSER), false)
	if err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("root of a user namespace wrote the initial namespace's net.toa.allow: %v: %s", err, out)
	}
	if after, err := os.ReadFile(allowPath); err != nil || string(after) != string(before) {
		t.Errorf("initial namespace's net.toa.allow = %q (%v), was %q", after, err, before)
	}
}
