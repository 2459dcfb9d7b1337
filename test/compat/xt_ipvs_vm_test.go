//go:build vmtest

package compat

import (
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/fullnat/fullnat/internal/vmnet"
)

// TestIptablesMatchIPVS: `iptables -m ipvs` (Debian's iptables, nft backend, through xt_ipvs)
// loads next to the ip_vs in use and matches the packets IPVS forwards, by virtual address and
// port, for NAT and, with our module, FULLNAT. Debian's own xt_ipvs imports ip_vs symbols whose
// versions change with our structures: unless kmod/ rebuilds it, it does not load with ours.
func TestIptablesMatchIPVS(t *testing.T) {
	methods := []string{"-m"}
	if os.Getenv("RIG_MODULES") == "ours" {
		methods = append(methods, "-b")
	}
	for _, fwd := range methods {
		for _, v6 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/v6=%v", fwd, v6), func(t *testing.T) {
				testIptablesMatch(t, fwd, v6)
			})
		}
	}
}

func testIptablesMatch(t *testing.T, fwd string, v6 bool) {
	tp := vmnet.New(t, vmnet.Options{Servers: 2, RouteBack: fwd == "-m"})
	d := tp.Director
	vip, rss, ipt, laddr, plen := tp.VIP, tp.ServerAddrs, "/usr/sbin/iptables", "198.51.100.201", "24"
	if v6 {
		vip, rss, ipt, laddr, plen = tp.VIP6, tp.ServerAddrs6, "/usr/sbin/ip6tables", "2001:db8:2::201", "64"
	}
	for i, rs := range tp.Servers {
		vmnet.Serve(t, rs, fmt.Sprintf("rs%d", i+1), 80, rss[i])
	}
	adm := cipvsadm
	if fwd == "-b" {
		adm = vmnet.Bin + "/ipvsadm"
		args := []string{vmnet.IP, "addr", "add", laddr + "/" + plen, "dev", "br0"}
		if v6 {
			args = append(args, "nodad")
		}
		d.Run(t, args...)
	}
	vs := netip.AddrPortFrom(vip, 80).String()
	d.Run(t, adm, "-A", "-t", vs, "-s", "rr")
	if fwd == "-b" {
		d.Run(t, adm, "-P", "-t", vs, "-z", laddr)
	}
	for _, rs := range rss {
		d.Run(t, adm, "-a", "-t", vs, "-r", netip.AddrPortFrom(rs, 80).String(), fwd)
	}
	t.Cleanup(func() { d.Run(t, adm, "-C") })

	// Packets IPVS sends on to a real server carry ipvs_property and leave through
	// POSTROUTING; the match finds their connection and compares its virtual address and port.
	bits := "/32"
	if v6 {
		bits = "/128"
	}
	d.Run(t, ipt, "-t", "mangle", "-A", "POSTROUTING", "-m", "ipvs", "--vaddr", vip.String()+bits, "--vport", "80", "--vproto", "tcp", "-j", "ACCEPT")
	d.Run(t, ipt, "-t", "mangle", "-A", "POSTROUTING", "-m", "ipvs", "--vaddr", vip.String()+bits, "--vport", "81", "-j", "ACCEPT")
	t.Cleanup(func() { d.Run(t, ipt, "-t", "mangle", "-F") })

	const conns = 20
	s := vmnet.Dial(t, tp.Client, "--addr", vs, "--count", fmt.Sprint(conns), "--parallel", "2")
	if s.OK != conns {
		t.Fatalf("%d of %d connections through the service: %+v", s.OK, conns, s)
	}
	out := d.Run(t, ipt, "-t", "mangle", "-L", "POSTROUTING", "-n", "-v", "-x")
	t.Logf("%s -t mangle -L POSTROUTING -n -v -x:\n%s", ipt, out)
	pk := rulePackets(t, out)
	if len(pk) != 2 {
		t.Fatalf("want 2 rules with counters, got %v", pk)
	}
	// Each connection sends at least its handshake ACK, a request and a FIN towards the server.
	if pk[0] < 3*conns {
		t.Errorf("--vaddr %s --vport 80 matched %d packets, want at least %d", vip, pk[0], 3*conns)
	}
	if pk[1] != 0 {
		t.Errorf("--vport 81 matched %d packets of a port 80 service, want 0", pk[1])
	}
}

var ruleCounters = regexp.MustCompile(`(?m)^\s*(\d+)\s+\d+\s+ACCEPT`)

// rulePackets returns the packet counter of each rule in an `iptables -L -n -v -x` listing.
func rulePackets(t *testing.T, listing string) []int {
	t.Helper()
	var pk []int
	for _, m := range ruleCounters.FindAllStringSubmatch(listing, -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			t.Fatal(err)
		}
		pk = append(pk, n)
	}
	return pk
}
