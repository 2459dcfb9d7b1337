//go:build vmtest

package keepalived

import (
	"fmt"
	"net/netip"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
)

// readmeExample is the director pair's keepalived.conf in the README: the indented block after
// the marker line.
func readmeExample(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- test/keepalived TestVRRPPair runs this configuration as written -->\n"
	_, rest, ok := strings.Cut(string(readme), marker)
	if !ok {
		t.Fatalf("README.md has no line %q", strings.TrimSpace(marker))
	}
	var b strings.Builder
	for _, l := range strings.Split(rest, "\n") {
		if l != "" && !strings.HasPrefix(l, "    ") {
			break
		}
		b.WriteString(strings.TrimPrefix(l, "    ") + "\n")
	}
	conf := strings.TrimSpace(b.String()) + "\n"
	for _, w := range []string{"vrrp_instance", "state MASTER", "priority 150", "198.51.100.101-102", "vip_bind_dev vip0", "syn_proxy"} {
		if !strings.Contains(conf, w) {
			t.Fatalf("README.md's director pair example has no %q:\n%s", w, conf)
		}
	}
	return conf
}

// TestVRRPPair runs the README's director pair: two director namespaces with our keepalived on the
// README's configuration (director 2: state BACKUP, priority 100, local addresses .103-.104),
// clients on a shared segment routing the VIP via the VRRP address 192.0.2.1, two real servers on
// another. Both directors have the FULLNAT+SYNPROXY service and, with quorum, the VIP on vip0
// (vip_bind_dev); director 1 is master and the real servers see only its local addresses. When
// director 1's keepalived stops, director 2 takes 192.0.2.1 within a few seconds and new
// connections go through it (the real servers see only its local addresses); from two seconds
// after the takeover on, no connection fails.
func TestVRRPPair(t *testing.T) {
	conf1 := readmeExample(t)
	conf2 := conf1
	for _, r := range [][2]string{{"router_id lvs1", "router_id lvs2"}, {"state MASTER", "state BACKUP"},
		{"priority 150", "priority 100"}, {"198.51.100.101-102", "198.51.100.103-104"}} {
		if !strings.Contains(conf2, r[0]) {
			t.Fatalf("README.md's example has no %q", r[0])
		}
		conf2 = strings.Replace(conf2, r[0], r[1], 1)
	}
	if os.Getenv("RIG_MODULES") != "ours" {
		t.Fatalf("FULLNAT needs our modules (RIG_MODULES=ours), got %q", os.Getenv("RIG_MODULES"))
	}
	if _, err := os.Stat(ourKeepalived); err != nil {
		t.Fatalf("our keepalived is not in the VM (make keepalived): %v", err)
	}
	for _, m := range []string{"ip_vs", "ip_vs_wrr"} {
		if out, err := osexec.Command("/sbin/modprobe", m).CombinedOutput(); err != nil {
			t.Fatalf("modprobe %s: %v\n%s", m, err, out)
		}
	}

	// The two segments are bridges in a switch namespace.
	sw := vmnet.Add(t, "sw")
	for _, br := range []string{"brc", "brs"} {
		sw.Run(t, vmnet.IP, "link", "add", br, "type", "bridge")
		sw.Run(t, vmnet.IP, "link", "set", br, "up")
	}
	port := func(ns vmnet.NS, ifname, br, swIf string) {
		t.Helper()
		vmnet.Veth(t, ns, ifname, sw, swIf)
		sw.Run(t, vmnet.IP, "link", "set", swIf, "master", br)
	}
	cl := vmnet.Add(t, "cl")
	port(cl, "eth0", "brc", "cl")
	cl.Addr(t, "eth0", "192.0.2.2/24")
	cl.Run(t, vmnet.IP, "route", "add", "203.0.113.10/32", "via", "192.0.2.1")
	for i := 1; i <= 2; i++ {
		rs := vmnet.Add(t, fmt.Sprintf("rs%d", i))
		port(rs, "eth0", "brs", fmt.Sprintf("rs%d", i))
		rs.Addr(t, "eth0", fmt.Sprintf("198.51.100.%d/24", 10+i))
		vmnet.Serve(t, rs, fmt.Sprintf("rs%d", i), 80, netip.MustParseAddr(fmt.Sprintf("198.51.100.%d", 10+i)))
	}
	var drs [2]vmnet.NS
	for i := range drs {
		d := vmnet.Add(t, fmt.Sprintf("dr%d", i+1))
		port(d, "eth0", "brc", fmt.Sprintf("d%dc", i+1))
		port(d, "eth1", "brs", fmt.Sprintf("d%ds", i+1))
		d.Addr(t, "eth0", fmt.Sprintf("192.0.2.%d/24", 11+i))
		d.Addr(t, "eth1", fmt.Sprintf("198.51.100.%d/24", 2+i))
		for a := 101 + 2*i; a <= 102+2*i; a++ {
			d.Addr(t, "eth1", fmt.Sprintf("198.51.100.%d/24", a))
		}
		d.Run(t, vmnet.IP, "link", "add", "vip0", "type", "dummy")
		d.Run(t, vmnet.IP, "link", "set", "vip0", "up")
		d.Sysctl(t, "net.ipv4.ip_forward", "1")
		drs[i] = d
	}
	dir := t.TempDir()
	var kas [2]*daemon
	for i, c := range []string{conf1, conf2} {
		f := filepath.Join(dir, fmt.Sprintf("dr%d.conf", i+1))
		if err := os.WriteFile(f, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		kas[i] = startDaemon(t, drs[i], ourKeepalived, f)
	}

	hasAddr := func(d vmnet.NS, ifname, addr string) bool {
		out, _ := d.Try(vmnet.IP, "-o", "-4", "addr", "show", "dev", ifname)
		return strings.Contains(out, " "+addr+" ")
	}
	master := func(i int) bool {
		return hasAddr(drs[i], "eth0", "192.0.2.1/24") && !hasAddr(drs[1-i], "eth0", "192.0.2.1/24")
	}
	ready := func(d vmnet.NS) bool {
		svc, ds := service(d)
		return hasAddr(d, "vip0", "203.0.113.10/32") && strings.HasSuffix(svc, " synproxy") &&
			ds["198.51.100.11:80"] == dest{"FullNat", "1"} && ds["198.51.100.12:80"] == dest{"FullNat", "1"}
	}
	waitFor(t, 30*time.Second, "director 1 to be VRRP master and both to have the service and the VIP", func() bool {
		return master(0) && ready(drs[0]) && ready(drs[1])
	})

	// through checks that connections reach both real servers from director i's local addresses.
	through := func(i int, what string) {
		t.Helper()
		s := vmnet.Dial(t, cl, "--addr", "203.0.113.10:80", "--count", "12", "--parallel", "3")
		if s.OK != 12 || s.Servers["rs1"] == 0 || s.Servers["rs2"] == 0 {
			t.Errorf("%s: want 12 connections over rs1 and rs2, got %+v", what, s)
		}
		for server, peers := range s.Seen {
			for p := range peers {
				if p != fmt.Sprintf("198.51.100.%d", 101+2*i) && p != fmt.Sprintf("198.51.100.%d", 102+2*i) {
					t.Errorf("%s: %s saw peer %s, want a local address of director %d", what, server, p, i+1)
				}
			}
		}
	}
	through(0, "director 1 master")

	// The prober: new connections all the time, each batch on record.
	stopProber := startProber(cl, "203.0.113.10:80", 4, 3*time.Second)
	time.Sleep(time.Second)

	tStop := time.Now()
	kas[0].stop()
	took := waitFor(t, 15*time.Second, "director 2 to take 192.0.2.1", func() bool { return master(1) })
	tTaken := time.Now()
	if took > 5*time.Second {
		t.Errorf("director 2 took over after %v, want within 5 s (director 1 announces priority 0 as it stops)", took)
	}
	if hasAddr(drs[0], "vip0", "203.0.113.10/32") {
		t.Errorf("director 1 kept the VIP on vip0 after its keepalived stopped")
	}
	if !ready(drs[1]) {
		t.Errorf("director 2 lost its service or VIP:\n%s", table(drs[1]))
	}
	time.Sleep(4 * time.Second)
	batches := stopProber()

	settled := tTaken.Add(2 * time.Second)
	var failedInWindow, okTotal, after int
	for _, b := range batches {
		okTotal += b.s.OK
		if b.err == nil && b.s.Failed == 0 {
			if b.start.After(settled) {
				after++
			}
			continue
		}
		if b.end.After(tStop) && b.start.Before(settled) {
			failedInWindow += 4 - b.s.OK
			continue
		}
		t.Errorf("batch %s..%s outside the failover window: %d failed, err %v, errors %v",
			b.start.Format("15:04:05.000"), b.end.Format("15:04:05.000"), b.s.Failed, b.err, b.s.Errors)
	}
	if after == 0 {
		t.Errorf("no batch of connections completed after the takeover settled: too few to tell")
	}
	t.Logf("failover: director 2 master %v after director 1 stopped; %d batches, %d connections ok, %d failed before %v after the takeover, %d batches after",
		took, len(batches), okTotal, failedInWindow, settled.Sub(tTaken), after)

	through(1, "director 2 master")
	kas[1].stop()
}
