// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package cluster

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fullnat/fullnat/internal/flood"
	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
)

// family is one address family of the topology (see the package documentation); the
// cluster is dual-stack, every phase of a test has transfers of both.
type family struct {
	name      string
	plen      string // prefix length of every link
	host      string // "/32" or "/128"
	vip       netip.Addr
	gateway   netip.Addr // NAT: the real servers' default gateway
	servers   []netip.Addr
	client    netip.Addr
	clientGW  netip.Addr // the router on the client's link
	linkA     netip.Prefix
	linkB     netip.Prefix // router-director links: the router is ::1/.1, the director ::2/.2
	rsA, rsB  netip.Addr   // the directors' own addresses on the real-server segment
	lA, lB    netip.Addr   // FULLNAT: the directors' own local addresses
	ipCommand []string     // "ip" or "ip -6"
}

var (
	v4 = family{
		name: "IPv4", plen: "/24", host: "/32",
		vip:      netip.MustParseAddr("203.0.113.10"),
		gateway:  netip.MustParseAddr("198.51.100.1"),
		servers:  []netip.Addr{netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.12")},
		client:   netip.MustParseAddr("192.0.2.2"),
		clientGW: netip.MustParseAddr("192.0.2.1"),
		linkA:    netip.MustParsePrefix("198.18.1.0/24"), linkB: netip.MustParsePrefix("198.18.2.0/24"),
		rsA: netip.MustParseAddr("198.51.100.2"), rsB: netip.MustParseAddr("198.51.100.3"),
		lA: netip.MustParseAddr("198.51.100.101"), lB: netip.MustParseAddr("198.51.100.102"),
		ipCommand: []string{vmnet.IP},
	}
	v6 = family{
		name: "IPv6", plen: "/64", host: "/128",
		vip:      netip.MustParseAddr("2001:db8:10::10"),
		gateway:  netip.MustParseAddr("2001:db8:2::1"),
		servers:  []netip.Addr{netip.MustParseAddr("2001:db8:2::11"), netip.MustParseAddr("2001:db8:2::12")},
		client:   netip.MustParseAddr("2001:db8:1::2"),
		clientGW: netip.MustParseAddr("2001:db8:1::1"),
		linkA:    netip.MustParsePrefix("2001:db8:11::/64"), linkB: netip.MustParsePrefix("2001:db8:12::/64"),
		rsA: netip.MustParseAddr("2001:db8:2::2"), rsB: netip.MustParseAddr("2001:db8:2::3"),
		lA: netip.MustParseAddr("2001:db8:2::101"), lB: netip.MustParseAddr("2001:db8:2::102"),
		ipCommand: []string{vmnet.IP, "-6"},
	}
	families = []family{v4, v6}
)

// ip returns the family's ip command with args.
func (f family) ip(args ...string) []string {
	return append(append([]string{}, f.ipCommand...), args...)
}

// svc is the virtual service's address and port as ipvsadm takes it.
func (f family) svc() string { return netip.AddrPortFrom(f.vip, 80).String() }

// nth is the address n of prefix p (1: the router, 2: the director).
func nth(p netip.Prefix, n int) netip.Addr {
	a := p.Addr()
	for range n {
		a = a.Next()
	}
	return a
}

// syncIf is the sync daemons' --mcast-interface on each director.
const syncIf = "sync0"

// Sync settings on every director: each connection is sent when it becomes ESTABLISHED, on
// every state change, and again at its next packet once its timer has moved on by
// syncRefresh (sync_threshold "0 0": no packet-count rule, only the refresh period), so a
// director that (re)joins learns every live connection within syncRefresh plus the master's
// flush delay (upstream's master sends a partly filled buffer once it is 2 s old and looks
// every second: up to 3 s, the sync lag TestFailover measures).
const (
	syncRefresh   = 2 // net.ipv4.vs.sync_refresh_period, seconds
	syncThreshold = "0 0"
	syncID        = "1"
)

// mode is the forwarding method under test.
type mode struct {
	name    string
	fullnat bool
	// synproxy: the services have SYNPROXY, and the first transfers open during a SYN flood
	synproxy bool
	// bgp: the router's routes to the VIPs come from BGP (the test starts FRR); newCluster
	// installs none
	bgp bool
}

// director is one director namespace.
type director struct {
	name string
	ns   vmnet.NS
	sync netip.Addr // on sync0
	gen  int        // incarnation: the router's and switch's port names carry it
}

// link is the family's router-director link of d.
func (c *cluster) link(d *director, f family) netip.Prefix {
	if d == c.a {
		return f.linkA
	}
	return f.linkB
}

// uplink is d's address towards the router.
func (c *cluster) uplink(d *director, f family) netip.Addr { return nth(c.link(d, f), 2) }

// rsAddr is d's own address on the real-server segment.
func (c *cluster) rsAddr(d *director, f family) netip.Addr {
	if d == c.a {
		return f.rsA
	}
	return f.rsB
}

// laddr is d's own FULLNAT local address.
func (c *cluster) laddr(d *director, f family) netip.Addr {
	if d == c.a {
		return f.lA
	}
	return f.lB
}

// tag names the router's and the switch's ports of d's current incarnation: a1, b1, a2...
func (d *director) tag() string { return fmt.Sprintf("%s%d", d.name[1:], d.gen) }

// cluster is the whole topology.
type cluster struct {
	t      *testing.T
	m      mode
	client vmnet.NS
	router vmnet.NS
	sw     vmnet.NS
	rss    []vmnet.NS
	a, b   *director
}

// adm runs our ipvsadm in ns.
func adm(t *testing.T, ns vmnet.NS, args ...string) string {
	t.Helper()
	return ns.Run(t, append([]string{vmnet.Bin + "/ipvsadm"}, args...)...)
}

func newCluster(t *testing.T, m mode) *cluster {
	t.Helper()
	if os.Getenv("RIG_MODULES") != "ours" {
		t.Fatalf("the cluster tests need our modules (RIG_MODULES=ours), got %q", os.Getenv("RIG_MODULES"))
	}
	for _, mod := range []string{"ip_vs", "ip_vs_rr"} {
		if out, err := exec.Command("/sbin/modprobe", mod).CombinedOutput(); err != nil {
			t.Fatalf("modprobe %s: %v\n%s", mod, err, out)
		}
	}
	c := &cluster{
		t:      t,
		m:      m,
		client: vmnet.Add(t, "cl"),
		router: vmnet.Add(t, "rt"),
		sw:     vmnet.Add(t, "sw"),
		a:      &director{name: "da", sync: netip.MustParseAddr("198.18.3.2")},
		b:      &director{name: "db", sync: netip.MustParseAddr("198.18.3.3")},
	}
	// Under TCG every process costs: each namespace is set up by one ip -batch (and one
	// shell for its sysctls), not a command per line.
	rt := []string{"link add c0 type veth peer name eth0 netns cl", "link set c0 up"}
	cl := []string{"link set eth0 up"}
	for _, f := range families {
		rt = append(rt, "addr add "+f.clientGW.String()+f.plen+" dev c0"+nodad(f))
		cl = append(cl, "addr add "+f.client.String()+f.plen+" dev eth0"+nodad(f),
			"route add default via "+f.clientGW.String())
	}
	batch(t, c.router, rt...)
	batch(t, c.client, cl...)
	sysctls(t, c.router, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	// the SYN flood's spoofed sources: the directors' SYN-ACKs to them end here
	batch(t, c.router, "route add blackhole "+flood.Sources4.String(), "route add blackhole "+flood.Sources6.String())

	sw := []string{"link add br-rs type bridge", "link set br-rs up", "link add br-sync type bridge", "link set br-sync up"}
	for i := range v4.servers {
		name := fmt.Sprintf("rs%d", i+1)
		c.rss = append(c.rss, vmnet.Add(t, name))
		port := fmt.Sprintf("p%d", i+1)
		sw = append(sw, "link add "+port+" type veth peer name eth0 netns "+name, "link set "+port+" master br-rs", "link set "+port+" up")
	}
	batch(t, c.sw, sw...)
	for i, rs := range c.rss {
		lines := []string{"link set eth0 up"}
		for _, f := range families {
			lines = append(lines, "addr add "+f.servers[i].String()+f.plen+" dev eth0"+nodad(f))
			if !m.fullnat {
				lines = append(lines, "route add default via "+f.gateway.String())
			}
		}
		batch(t, rs, lines...)
	}
	c.up(c.b)
	c.up(c.a)
	// A owns the traffic: the route a BGP session with A would install, and (NAT) the gateway.
	if !m.bgp {
		var routes []string
		for _, f := range families {
			routes = append(routes, "route add "+f.vip.String()+f.host+" via "+c.uplink(c.a, f).String())
		}
		batch(t, c.router, routes...)
	}
	c.takeOver(c.a, nil)
	c.startDaemons(c.b)
	c.startDaemons(c.a)
	return c
}

// nodad is the suffix of an IPv6 "addr add": no duplicate address detection.
func nodad(f family) string {
	if f.vip.Is6() {
		return " nodad"
	}
	return ""
}

// batch runs iproute2 commands (one per line, without "ip") in ns in one process.
func batch(t *testing.T, ns vmnet.NS, lines ...string) {
	t.Helper()
	cmd := ns.Command(vmnet.IP, "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("in %s: ip -batch: %v\n%s\ncommands:\n%s", ns, err, out, strings.Join(lines, "\n"))
	}
}

// sysctls sets key=value pairs in ns with one shell.
func sysctls(t *testing.T, ns vmnet.NS, kvs ...string) {
	t.Helper()
	var script []string
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		script = append(script, fmt.Sprintf("echo %s > /proc/sys/%s", v, strings.ReplaceAll(k, ".", "/")))
	}
	ns.Sh(t, strings.Join(script, " && "))
}

// restore runs ipvsadm commands (one per line, without "ipvsadm") in ns with one ipvsadm -R.
func restore(t *testing.T, ns vmnet.NS, lines ...string) {
	t.Helper()
	cmd := ns.Command(vmnet.Bin+"/ipvsadm", "-R")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("in %s: ipvsadm -R: %v\n%s\nrules:\n%s", ns, err, out, strings.Join(lines, "\n"))
	}
}

// up builds a director's namespace (again, after a kill): links, addresses, VIP, sysctls and
// the service; no sync daemon, and none of the addresses that move (gateway, A's local
// address) yet.
func (c *cluster) up(d *director) {
	t := c.t
	t.Helper()
	d.gen++
	d.ns = vmnet.Add(t, d.name)
	tag := d.tag()
	batch(t, c.router, "link add t"+tag+" type veth peer name eth0 netns "+d.name, "link set t"+tag+" up")
	batch(t, c.sw,
		"link add r"+tag+" type veth peer name rs0 netns "+d.name, "link set r"+tag+" master br-rs", "link set r"+tag+" up",
		"link add s"+tag+" type veth peer name sync0 netns "+d.name, "link set s"+tag+" master br-sync", "link set s"+tag+" up")
	lines := []string{
		"link set eth0 up", "link set rs0 up", "link set sync0 up",
		"addr add " + d.sync.String() + "/24 dev sync0",
		"link add vip0 type dummy", "link set vip0 up",
	}
	var rt, rules []string
	for _, f := range families {
		link := c.link(d, f)
		rt = append(rt, "addr add "+nth(link, 1).String()+f.plen+" dev t"+tag+nodad(f))
		lines = append(lines,
			"addr add "+nth(link, 2).String()+f.plen+" dev eth0"+nodad(f),
			"route add default via "+nth(link, 1).String(),
			"addr add "+c.rsAddr(d, f).String()+f.plen+" dev rs0"+nodad(f),
			"addr add "+f.vip.String()+f.host+" dev vip0"+nodad(f))
		svc := "-A -t " + f.svc() + " -s rr"
		if c.m.synproxy {
			svc += " -j enable"
		}
		rules = append(rules, svc)
		fwd := "-m"
		if c.m.fullnat {
			// B's own local address is B's from the start; A's is A's while A lives, and
			// is B's after the failover until A takes it back (takeOver). The module takes
			// only a local address the director has: a rejoining A gets it at the failback.
			if d == c.b || d.gen == 1 {
				lines = append(lines, "addr add "+c.laddr(d, f).String()+f.plen+" dev rs0"+nodad(f))
				rules = append(rules, "-P -t "+f.svc()+" -z "+c.laddr(d, f).String())
			}
			fwd = "-b"
		}
		for _, rs := range f.servers {
			rules = append(rules, "-a -t "+f.svc()+" -r "+netip.AddrPortFrom(rs, 80).String()+" "+fwd)
		}
	}
	batch(t, c.router, rt...)
	batch(t, d.ns, lines...)
	sysctls(t, d.ns, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
		fmt.Sprintf("net.ipv4.vs.sync_refresh_period=%d", syncRefresh), "net.ipv4.vs.sync_threshold="+syncThreshold)
	restore(t, d.ns, rules...)
}

// daemon starts d's sync daemon of state ("master" or "backup") on sync0 with syncid 1, with
// our ipvsadm as an operator would.
func (c *cluster) daemon(d *director, state string) {
	c.t.Helper()
	adm(c.t, d.ns, "--start-daemon", state, "--mcast-interface", syncIf, "--syncid", syncID)
}

// startDaemons starts the backup daemon, then the master, and checks with the library that
// both run: every director sends and receives at once.
func (c *cluster) startDaemons(d *director) {
	c.t.Helper()
	c.daemon(d, "backup")
	c.daemon(d, "master")
	c.checkDaemons(d)
}

// lib opens a library client in d's namespace; the caller closes it (its socket would keep
// the namespace, and so a killed director's daemons, alive).
func (c *cluster) lib(d *director) *ipvs.Client {
	c.t.Helper()
	cl, err := ipvs.NewInNamespace("/run/netns/" + d.name)
	if err != nil {
		c.t.Fatalf("%s: %v", d.name, err)
	}
	return cl
}

// checkDaemons fails unless d runs a master and a backup daemon on sync0 with syncid 1.
func (c *cluster) checkDaemons(d *director) {
	t := c.t
	t.Helper()
	cl := c.lib(d)
	defer cl.Close()
	ds, err := cl.Daemons(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", d.name, err)
	}
	states := map[ipvs.DaemonState]bool{}
	for _, x := range ds {
		if x.Interface != syncIf || x.SyncID != 1 {
			t.Errorf("%s: daemon %+v, want interface %s syncid 1", d.name, x, syncIf)
		}
		states[x.State] = true
	}
	if len(ds) != 2 || !states[ipvs.DaemonMaster] || !states[ipvs.DaemonBackup] {
		t.Fatalf("%s: want a master and a backup daemon, the kernel lists %+v", d.name, ds)
	}
}

// stats returns the counters of d's service on each family's VIP.
func (c *cluster) stats(d *director) map[netip.Addr]ipvs.Stats {
	t := c.t
	t.Helper()
	cl := c.lib(d)
	defer cl.Close()
	svcs, err := cl.Services(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", d.name, err)
	}
	st := map[netip.Addr]ipvs.Stats{}
	for _, s := range svcs {
		if s.Port == 80 {
			st[s.Address] = s.Stats
		}
	}
	return st
}

// takeOver gives d the addresses that move with the traffic (NAT: the real servers' gateway;
// FULLNAT: A's local address), taking them from other if set, announced as keepalived's VRRP
// will: unsolicited ARP (busybox arping -U: three requests a second apart, with the moved
// address as source and target; the first goes out at once) and, for IPv6, an unsolicited
// neighbour advertisement.
func (c *cluster) takeOver(d, other *director) {
	t := c.t
	t.Helper()
	if c.m.fullnat && d == c.a && d.gen == 1 {
		return // A has had its own since up()
	}
	for _, f := range families {
		moving := f.gateway
		if c.m.fullnat {
			moving = f.lA
		}
		if other != nil {
			other.ns.Run(t, f.ip("addr", "del", moving.String()+f.plen, "dev", "rs0")...)
		}
		d.ns.Addr(t, "rs0", moving.String()+f.plen)
		if c.m.fullnat && d == c.a {
			adm(t, d.ns, "-P", "-t", f.svc(), "-z", moving.String())
		}
		if f.vip.Is6() {
			if err := unsolicitedNA(d.name, "rs0", moving); err != nil {
				t.Fatal(err)
			}
			continue
		}
		cmd := d.ns.Command("/bin/busybox", "arping", "-U", "-c", "3", "-I", "rs0", "-s", moving.String(), moving.String())
		if err := cmd.Start(); err != nil {
			t.Fatalf("arping in %s: %v", d.name, err)
		}
		t.Cleanup(func() { _ = cmd.Wait() })
	}
}

// route points the router's route to the VIP at d (what BGP installs when the other
// director's announcement is withdrawn).
func (c *cluster) route(d *director) {
	c.t.Helper()
	for _, f := range families {
		c.router.Run(c.t, f.ip("route", "replace", f.vip.String()+f.host, "via", c.uplink(d, f).String())...)
	}
}

// kill takes director d down the way a dead box goes: its links go down at once, nothing more
// leaves it.
func (c *cluster) kill(d *director) {
	c.t.Helper()
	d.ns.Sh(c.t, fmt.Sprintf("%[1]s link set eth0 down && %[1]s link set rs0 down && %[1]s link set sync0 down", vmnet.IP))
}

// bury removes a killed director: its cables are pulled (the veths are deleted from the
// router's and the switch's side, so no port of the dead incarnation is left there), then its
// namespace is deleted, so that its IPVS state (connections, daemons) is gone and a rejoin
// starts empty, as after a reboot.
func (c *cluster) bury(d *director) {
	t := c.t
	t.Helper()
	tag := d.tag()
	c.router.Run(t, vmnet.IP, "link", "del", "t"+tag)
	c.sw.Run(t, vmnet.IP, "link", "del", "r"+tag)
	c.sw.Run(t, vmnet.IP, "link", "del", "s"+tag)
	if out, err := exec.Command(vmnet.IP, "netns", "del", d.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns del %s: %v\n%s", d.name, err, out)
	}
}

// connTable reads d's connection table (the FULLNAT one for FULLNAT) from a thread in d's
// namespace, keyed by client address and port.
func (c *cluster) connTable(d *director) (map[netip.AddrPort]ipvs.Connection, error) {
	path := "/proc/thread-self/net/ip_vs_conn"
	if c.m.fullnat {
		path = "/proc/thread-self/net/ip_vs_conn_fnat"
	}
	conns := map[netip.AddrPort]ipvs.Connection{}
	err := vmnet.InNetns(d.name, func() error {
		for cn, err := range ipvs.ReadConnections(path) {
			if err != nil {
				return err
			}
			if cn.Protocol == "TCP" && cn.Virtual.Port() == 80 && (cn.Virtual.Addr() == v4.vip || cn.Virtual.Addr() == v6.vip) {
				conns[cn.Client] = cn
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: connection table: %w", d.name, err)
	}
	return conns, nil
}

// waitConns polls d's table until it holds every transfer of xs in state ESTABLISHED; it
// returns, per transfer, when it was first seen, or fails after timeout naming the missing.
func (c *cluster) waitConns(d *director, xs []*transfer, timeout time.Duration) (map[netip.AddrPort]ipvs.Connection, []time.Time) {
	t := c.t
	t.Helper()
	seen := make([]time.Time, len(xs))
	deadline := time.Now().Add(timeout)
	for {
		conns, err := c.connTable(d)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		var missing []string
		for i, x := range xs {
			cn, ok := conns[x.client]
			if ok && cn.State == "ESTABLISHED" {
				if seen[i].IsZero() {
					seen[i] = now
				}
				continue
			}
			missing = append(missing, fmt.Sprintf("%s (client %s, state %q)", x.name(), x.client, cn.State))
		}
		if len(missing) == 0 {
			return conns, seen
		}
		if now.After(deadline) {
			t.Fatalf("%s: after %v its connection table lacks %s; it lists:\n%s", d.name, timeout,
				strings.Join(missing, ", "), adm(t, d.ns, "-Lnc"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dump logs what the namespaces see, after a failure.
func (c *cluster) dump() {
	t := c.t
	for _, ns := range []struct {
		ns     vmnet.NS
		script string
	}{
		{c.router, "ip route; ip -6 route; ip neigh; ip -6 neigh"},
		{c.a.ns, "ip -s link; ip neigh; ip -6 neigh; /opt/fullnat/bin/ipvsadm -Ln --stats; /opt/fullnat/bin/ipvsadm -Lnc; cat /proc/net/ip_vs_conn_fnat; grep -h . /proc/net/snmp; grep NeighborAdv /proc/net/snmp6"},
		{c.b.ns, "ip -s link; ip neigh; ip -6 neigh; /opt/fullnat/bin/ipvsadm -Ln --stats; /opt/fullnat/bin/ipvsadm -Lnc; cat /proc/net/ip_vs_conn_fnat; grep -h . /proc/net/snmp; grep NeighborAdv /proc/net/snmp6"},
		{c.rss[0], "ip neigh; ip -6 neigh; grep -h Tcp /proc/net/snmp; grep NeighborAdv /proc/net/snmp6"},
		{c.rss[1], "ip neigh; ip -6 neigh; grep -h Tcp /proc/net/snmp; grep NeighborAdv /proc/net/snmp6"},
	} {
		out, _ := ns.ns.Try("/bin/sh", "-c", strings.ReplaceAll(ns.script, "ip ", vmnet.IP+" "))
		t.Logf("in %s: %s\n%s", ns.ns, ns.script, out)
	}
}

// passed fails unless d's service on each family's VIP counts packets in both directions
// within a few seconds (on 6.1 the counters are summed by the rate estimator, every 2 s).
func (c *cluster) passed(d *director, when string) {
	c.t.Helper()
	var st map[netip.Addr]ipvs.Stats
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		st = c.stats(d)
		ok := true
		for _, f := range families {
			ok = ok && st[f.vip].PacketsIn > 0 && st[f.vip].PacketsOut > 0
		}
		if ok {
			return
		}
	}
	for _, f := range families {
		if s := st[f.vip]; s.PacketsIn == 0 || s.PacketsOut == 0 {
			c.t.Errorf("%s's service on %s counted %d packets in, %d out %s: the transfers did not pass it", d.name, f.vip, s.PacketsIn, s.PacketsOut, when)
		}
	}
}

// unsolicitedNA sends, from namespace ns on ifname, an unsolicited neighbour advertisement for
// addr to all nodes (RFC 4861 7.2.6): flags router and override, the interface's link-layer
// address as target option, hop limit 255. Neighbours that have addr in their cache take the
// new link-layer address at once (the kernel computes an ICMPv6 raw socket's checksum).
func unsolicitedNA(ns, ifname string, addr netip.Addr) error {
	return vmnet.InNetns(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return fmt.Errorf("unsolicited NA in %s: %w", ns, err)
		}
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
		if err != nil {
			return fmt.Errorf("unsolicited NA in %s: %w", ns, err)
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 255); err != nil {
			return fmt.Errorf("unsolicited NA in %s: hop limit: %w", ns, err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index); err != nil {
			return fmt.Errorf("unsolicited NA in %s: interface: %w", ns, err)
		}
		if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: addr.As16()}); err != nil {
			return fmt.Errorf("unsolicited NA in %s: bind %s: %w", ns, addr, err)
		}
		msg := make([]byte, 32)
		msg[0] = 136  // neighbour advertisement
		msg[4] = 0xa0 // router, override (not solicited)
		target := addr.As16()
		copy(msg[8:24], target[:])
		msg[24], msg[25] = 2, 1 // target link-layer address, 8 bytes
		copy(msg[26:32], ifi.HardwareAddr)
		to := &unix.SockaddrInet6{Addr: netip.MustParseAddr("ff02::1").As16(), ZoneId: uint32(ifi.Index)}
		if err := unix.Sendto(fd, msg, 0, to); err != nil {
			return fmt.Errorf("unsolicited NA in %s for %s: %w", ns, addr, err)
		}
		return nil
	})
}
