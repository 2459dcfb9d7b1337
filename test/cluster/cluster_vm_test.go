// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
)

// Addresses of the topology (see the package documentation).
var (
	vip      = netip.MustParseAddr("203.0.113.10")
	gateway  = netip.MustParseAddr("198.51.100.1") // NAT: the real servers' default gateway
	servers  = []netip.Addr{netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.12")}
	clientIP = netip.MustParseAddr("192.0.2.2")
	syncIf   = "sync0" // the sync daemons' --mcast-interface on each director
)

// Sync settings on every director: each connection is sent when it becomes ESTABLISHED, on
// every state change, and again at its next packet once its timer has moved on by
// syncRefresh (sync_threshold "0 0": no packet-count rule, only the refresh period), so a
// director that (re)joins learns every live connection within syncRefresh plus the master's
// flush delay (upstream sends a partly filled buffer after at most 2 s).
const (
	syncRefresh   = 2 // net.ipv4.vs.sync_refresh_period, seconds
	syncThreshold = "0 0"
	syncID        = "1"
)

// mode is the forwarding method under test.
type mode struct {
	name    string
	fullnat bool
}

// director is one director namespace and its fixed addresses.
type director struct {
	name   string
	ns     vmnet.NS
	uplink netip.Addr // on eth0, towards the router
	router netip.Addr // the router's end of that link
	rsAddr netip.Addr // own address on rs0 (real-server segment)
	sync   netip.Addr // on sync0
	laddr  netip.Addr // FULLNAT: its own local address
	gen    int        // incarnation: the router's and switch's port names carry it
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
		a: &director{name: "da", uplink: netip.MustParseAddr("198.18.1.2"), router: netip.MustParseAddr("198.18.1.1"),
			rsAddr: netip.MustParseAddr("198.51.100.2"), sync: netip.MustParseAddr("198.18.3.2"),
			laddr: netip.MustParseAddr("198.51.100.101")},
		b: &director{name: "db", uplink: netip.MustParseAddr("198.18.2.2"), router: netip.MustParseAddr("198.18.2.1"),
			rsAddr: netip.MustParseAddr("198.51.100.3"), sync: netip.MustParseAddr("198.18.3.3"),
			laddr: netip.MustParseAddr("198.51.100.102")},
	}
	vmnet.Veth(t, c.client, "eth0", c.router, "c0")
	c.client.Addr(t, "eth0", clientIP.String()+"/24")
	c.client.Run(t, vmnet.IP, "route", "add", "default", "via", "192.0.2.1")
	c.router.Addr(t, "c0", "192.0.2.1/24")
	c.router.Sysctl(t, "net.ipv4.ip_forward", "1")

	for _, br := range []string{"br-rs", "br-sync"} {
		c.sw.Run(t, vmnet.IP, "link", "add", br, "type", "bridge")
		c.sw.Run(t, vmnet.IP, "link", "set", br, "up")
	}
	for i, addr := range servers {
		rs := vmnet.Add(t, fmt.Sprintf("rs%d", i+1))
		port := fmt.Sprintf("p%d", i+1)
		vmnet.Veth(t, c.sw, port, rs, "eth0")
		c.sw.Run(t, vmnet.IP, "link", "set", port, "master", "br-rs")
		rs.Addr(t, "eth0", addr.String()+"/24")
		if !m.fullnat {
			rs.Run(t, vmnet.IP, "route", "add", "default", "via", gateway.String())
		}
		c.rss = append(c.rss, rs)
	}
	c.up(c.b)
	c.up(c.a)
	// A owns the traffic: the route a BGP session with A would install, and (NAT) the gateway.
	c.router.Run(t, vmnet.IP, "route", "add", vip.String()+"/32", "via", c.a.uplink.String())
	c.takeOver(c.a, nil)
	c.startDaemons(c.b)
	c.startDaemons(c.a)
	return c
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
	vmnet.Veth(t, c.router, "t"+tag, d.ns, "eth0")
	c.router.Addr(t, "t"+tag, d.router.String()+"/24")
	d.ns.Addr(t, "eth0", d.uplink.String()+"/24")
	d.ns.Run(t, vmnet.IP, "route", "add", "default", "via", d.router.String())
	for _, l := range []struct{ port, ifname, br string }{{"r" + tag, "rs0", "br-rs"}, {"s" + tag, "sync0", "br-sync"}} {
		vmnet.Veth(t, c.sw, l.port, d.ns, l.ifname)
		c.sw.Run(t, vmnet.IP, "link", "set", l.port, "master", l.br)
	}
	d.ns.Addr(t, "rs0", d.rsAddr.String()+"/24")
	d.ns.Addr(t, "sync0", d.sync.String()+"/24")
	d.ns.Run(t, vmnet.IP, "link", "add", "vip0", "type", "dummy")
	d.ns.Run(t, vmnet.IP, "link", "set", "vip0", "up")
	d.ns.Addr(t, "vip0", vip.String()+"/32")
	d.ns.Sysctl(t, "net.ipv4.ip_forward", "1")
	d.ns.Sysctl(t, "net.ipv4.vs.sync_refresh_period", fmt.Sprint(syncRefresh))
	d.ns.Sysctl(t, "net.ipv4.vs.sync_threshold", syncThreshold)

	svc := netip.AddrPortFrom(vip, 80).String()
	adm(t, d.ns, "-A", "-t", svc, "-s", "rr")
	fwd := "-m"
	if c.m.fullnat {
		// B's own local address is B's from the start; A's is A's while A lives, and is
		// B's after the failover until A takes it back (takeOver). The module takes only a
		// local address the director has: a rejoining A gets it at the failback.
		if d == c.b || d.gen == 1 {
			d.ns.Addr(t, "rs0", d.laddr.String()+"/24")
			adm(t, d.ns, "-P", "-t", svc, "-z", d.laddr.String())
		}
		fwd = "-b"
	}
	for _, rs := range servers {
		adm(t, d.ns, "-a", "-t", svc, "-r", netip.AddrPortFrom(rs, 80).String(), fwd)
	}
}

// daemon starts d's sync daemon of state ("master" or "backup") on sync0 with syncid 1, with
// our ipvsadm as an operator would.
func (c *cluster) daemon(d *director, state string) {
	c.t.Helper()
	args := []string{"--start-daemon", state, "--mcast-interface", syncIf, "--syncid", syncID}
	if c.m.fullnat {
		args = append(args, fullnatDaemonArgs...)
	}
	adm(c.t, d.ns, args...)
}

// fullnatDaemonArgs go to every --start-daemon of the FULLNAT case: the ipvsadm option that
// sets the daemon attribute turning the FULLNAT sync options on (IPVS_DAEMON_ATTR_FNAT in
// kmod/CLUSTER.md), once ipvsadm has one. Empty: the module's default.
var fullnatDaemonArgs []string

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

// stats returns the counters of d's service on the VIP.
func (c *cluster) stats(d *director) ipvs.Stats {
	t := c.t
	t.Helper()
	cl := c.lib(d)
	defer cl.Close()
	svcs, err := cl.Services(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", d.name, err)
	}
	for _, s := range svcs {
		if s.Address == vip && s.Port == 80 {
			return s.Stats
		}
	}
	t.Fatalf("%s: no service on %s:80 in %+v", d.name, vip, svcs)
	return ipvs.Stats{}
}

// takeOver gives d the addresses that move with the traffic (NAT: the real servers' gateway;
// FULLNAT: A's local address), taking them from other if set, with unsolicited ARP from d as
// keepalived's VRRP sends it.
func (c *cluster) takeOver(d, other *director) {
	t := c.t
	t.Helper()
	moving := gateway
	if c.m.fullnat {
		moving = c.a.laddr
		if d == c.a && d.gen == 1 {
			return // A has had it since up()
		}
	}
	if other != nil {
		other.ns.Run(t, vmnet.IP, "addr", "del", moving.String()+"/24", "dev", "rs0")
	}
	d.ns.Addr(t, "rs0", moving.String()+"/24")
	if c.m.fullnat && d == c.a {
		adm(t, d.ns, "-P", "-t", netip.AddrPortFrom(vip, 80).String(), "-z", moving.String())
	}
	// busybox arping -U: requests with source and target the moved address; three, a second
	// apart, as VRRP repeats its gratuitous ARP. The first goes out at once.
	cmd := d.ns.Command("/bin/busybox", "arping", "-U", "-c", "3", "-I", "rs0", "-s", moving.String(), moving.String())
	if err := cmd.Start(); err != nil {
		t.Fatalf("arping in %s: %v", d.name, err)
	}
	t.Cleanup(func() { _ = cmd.Wait() })
}

// route points the router's route to the VIP at d (what BGP installs when the other
// director's announcement is withdrawn).
func (c *cluster) route(d *director) {
	c.t.Helper()
	c.router.Run(c.t, vmnet.IP, "route", "replace", vip.String()+"/32", "via", d.uplink.String())
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
			if cn.Protocol == "TCP" && cn.Virtual == netip.AddrPortFrom(vip, 80) {
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
		{c.router, "ip route; ip neigh"},
		{c.a.ns, "ip -s link; ip neigh; /opt/fullnat/bin/ipvsadm -Ln --stats; /opt/fullnat/bin/ipvsadm -Lnc; cat /proc/net/ip_vs_conn_fnat; grep -h . /proc/net/snmp"},
		{c.b.ns, "ip -s link; ip neigh; /opt/fullnat/bin/ipvsadm -Ln --stats; /opt/fullnat/bin/ipvsadm -Lnc; cat /proc/net/ip_vs_conn_fnat; grep -h . /proc/net/snmp"},
		{c.rss[0], "ip neigh; grep -h Tcp /proc/net/snmp"},
		{c.rss[1], "ip neigh; grep -h Tcp /proc/net/snmp"},
	} {
		out, _ := ns.ns.Try("/bin/sh", "-c", strings.ReplaceAll(ns.script, "ip ", vmnet.IP+" "))
		t.Logf("in %s: %s\n%s", ns.ns, ns.script, out)
	}
}

// passed fails unless d's service counts packets in both directions within a few seconds (on
// 6.1 the counters are summed by the rate estimator, every 2 s).
func (c *cluster) passed(d *director, when string) {
	c.t.Helper()
	var st ipvs.Stats
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if st = c.stats(d); st.PacketsIn > 0 && st.PacketsOut > 0 {
			return
		}
	}
	c.t.Errorf("%s's service counted %d packets in, %d out %s: the transfers did not pass it", d.name, st.PacketsIn, st.PacketsOut, when)
}
