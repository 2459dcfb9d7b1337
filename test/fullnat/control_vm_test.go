// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package fullnat

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/fullnat/fullnat/internal/vmnet"
	"golang.org/x/sys/unix"
)

// TestFullNATControl covers the control plane: feature bits, the LADDR commands and their
// errors, the per-service ESTABLISHED timeout, the sysctls and counters, and that all of it is
// per network namespace.
func TestFullNATControl(t *testing.T) {
	f := newFixture(t, 1)
	d := f.tp.Director
	ic := f.ic

	feat, ok, err := ic.features()
	if err != nil || !ok || feat&featureFullNAT == 0 || feat&featureEstTimeout == 0 {
		t.Fatalf("GET_INFO features = %#x (present %v, err %v), want FULLNAT and EST timeout bits", feat, ok, err)
	}

	s4 := service{proto: unix.IPPROTO_TCP, vip: netip.AddrPortFrom(f.tp.VIP, 80)}
	s6 := service{proto: unix.IPPROTO_TCP, vip: netip.AddrPortFrom(f.tp.VIP6, 80)}
	if err := ic.addLaddr(s4, f.laddrs[0]); errno(err) != unix.ESRCH {
		t.Errorf("NEW_LADDR for a missing service: got %v, want ESRCH", err)
	}
	if err := ic.newService(s4, 0); err != nil {
		t.Fatalf("new service: %v", err)
	}
	if err := ic.newService(s6, 0); err != nil {
		t.Fatalf("new service: %v", err)
	}
	if err := ic.addLaddr(s4, f.laddr6[0]); errno(err) != unix.EAFNOSUPPORT {
		t.Errorf("NEW_LADDR of an IPv6 address to an IPv4 service: got %v, want EAFNOSUPPORT", err)
	}
	if err := ic.laddrCmd(cmdNewLaddr, s6, []byte{198, 51, 100, 101}); errno(err) != unix.EAFNOSUPPORT {
		t.Errorf("NEW_LADDR of a 4-byte address to an IPv6 service: got %v, want EAFNOSUPPORT", err)
	}
	if err := ic.laddrCmd(cmdNewLaddr, s4, []byte{1, 2, 3}); errno(err) != unix.ERANGE {
		t.Errorf("NEW_LADDR with a 3-byte address: got %v, want ERANGE from the attribute policy", err)
	}
	for _, la := range f.laddrs {
		if err := ic.addLaddr(s4, la); err != nil {
			t.Fatalf("NEW_LADDR %s: %v", la, err)
		}
	}
	if err := ic.laddrCmd(cmdNewLaddr, s4, []byte{198, 51, 100, 101}); errno(err) != unix.EEXIST {
		t.Errorf("NEW_LADDR of a present address (4-byte form): got %v, want EEXIST", err)
	}
	if err := ic.addLaddr(s6, f.laddr6[0]); err != nil {
		t.Fatalf("NEW_LADDR %s: %v", f.laddr6[0], err)
	}
	got, err := ic.laddrs(s4)
	if err != nil || len(got) != 2 || got[0].addr != f.laddrs[0] || got[1].addr != f.laddrs[1] {
		t.Errorf("GET_LADDR: got %+v, %v; want %v", got, err, f.laddrs)
	}
	if err := ic.delLaddr(s4, f.laddrs[0]); err != nil {
		t.Errorf("DEL_LADDR: %v", err)
	}
	if err := ic.delLaddr(s4, f.laddrs[0]); errno(err) != unix.ENOENT {
		t.Errorf("DEL_LADDR of a missing address: got %v, want ENOENT", err)
	}
	if got, err := ic.laddrs(s4); err != nil || len(got) != 1 || got[0].addr != f.laddrs[1] {
		t.Errorf("GET_LADDR after delete: got %+v, %v; want only %s", got, err, f.laddrs[1])
	}
	// Strict validation: an unknown top-level attribute is rejected by the new commands.
	if _, err := ic.exec(cmdGetLaddr, 0, nil); errno(err) != unix.EINVAL && errno(err) != unix.EOPNOTSUPP {
		t.Errorf("GET_LADDR as a non-dump request: got %v, want an error", err)
	}

	// A deleted service takes its local addresses with it.
	d.Run(t, cipvsadm, "-D", "-t", s4.vip.String())
	if err := ic.newService(s4, 0); err != nil {
		t.Fatalf("new service again: %v", err)
	}
	if got, err := ic.laddrs(s4); err != nil || len(got) != 0 {
		t.Errorf("GET_LADDR of a re-created service: got %+v, %v; want none", got, err)
	}

	// Stock listing still works with a service that has an EST timeout.
	sEst := service{proto: unix.IPPROTO_TCP, vip: netip.AddrPortFrom(f.tp.VIP, 8080)}
	if err := ic.newService(sEst, 77); err != nil {
		t.Fatalf("new service with EST timeout: %v", err)
	}
	if out := d.Run(t, cipvsadm, "-Ln"); !strings.Contains(out, "203.0.113.10:8080 rr") {
		t.Errorf("ipvsadm -Ln does not list the services:\n%s", out)
	}

	// sysctls: defaults, ranges, per namespace.
	for k, want := range map[string]string{
		"fullnat_timestamp_remove_entry": "1", "fullnat_mss_adjust_entry": "1",
		"fullnat_conn_reused_entry": "1", "fullnat_toa_entry": "1",
		"fullnat_lport_max": "65535", "fullnat_lport_min": "5000", "fullnat_lport_tries": "10000",
		"fullnat_sync_flush_ms": "200",
	} {
		if got := strings.TrimSpace(d.Run(t, "/bin/cat", "/proc/sys/net/ipv4/vs/"+k)); got != want {
			t.Errorf("sysctl %s = %q, want %q", k, got, want)
		}
	}
	if _, err := d.Try("/bin/sh", "-c", "echo 80 > /proc/sys/net/ipv4/vs/fullnat_lport_min"); err == nil {
		t.Errorf("fullnat_lport_min accepted 80 (range 1025-65535)")
	}
	d.Sysctl(t, "net.ipv4.vs.fullnat_lport_min", "20000")
	other := vmnet.Add(t, "other")
	if got := strings.TrimSpace(other.Run(t, "/bin/cat", "/proc/sys/net/ipv4/vs/fullnat_lport_min")); got != "5000" {
		t.Errorf("fullnat_lport_min in another namespace = %q, want its own default 5000", got)
	}
	oc := dialIPVS(t, "other")
	if err := oc.addLaddr(s6, f.laddr6[1]); errno(err) != unix.ESRCH {
		t.Errorf("NEW_LADDR in another namespace sees the director's service: %v", err)
	}
	st := vmnet.ExtStats(t, d)
	for _, name := range []string{"fullnat_add_toa_ok", "fullnat_conn_reused", "fullnat_no_laddr", "synproxy_ok_ack", "synproxy_ackstorm", "defence_tcp_drop"} {
		if _, ok := st[name]; !ok {
			t.Errorf("/proc/net/ip_vs_ext_stats lacks %s: %v", name, st)
		}
	}
}
