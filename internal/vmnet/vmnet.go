// Package vmnet builds test topologies inside the rig's VM: network namespaces joined by veth
// pairs and a bridge, and helpers to run commands and the lvs-peer traffic tool in them, and
// FRR's zebra and bgpd (StartBGP) with waits on the routes they install (WaitNextHops).
//
// It shells out to iproute2 at /usr/sbin/ip (busybox's ip has no netns support). Everything it
// creates is removed by t.Cleanup.
//
// The standard topology (see New) uses documentation addresses only:
//
//	client ns "cl"      192.0.2.2/24     2001:db8:1::2/64   default via the director
//	director ns "dr"    192.0.2.1/24     2001:db8:1::1/64   (veth to the client)
//	                    198.51.100.1/24  2001:db8:2::1/64   (bridge br0 to the real servers)
//	                    VIP 203.0.113.10/32, 2001:db8:10::10/128 on dummy vip0
//	real servers "rsN"  198.51.100.1N/24 2001:db8:2::1N/64  default via the director only if RouteBack
package vmnet

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// IP is iproute2's ip, by full path.
const IP = "/usr/sbin/ip"

// Bin is where the rig puts the project's own binaries.
const Bin = "/opt/fullnat/bin"

// NS is a network namespace.
type NS string

// Run runs argv inside the namespace and returns its combined output; it fails the test on error.
func (ns NS) Run(t testing.TB, argv ...string) string {
	t.Helper()
	out, err := ns.Try(argv...)
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s", ns, strings.Join(argv, " "), err, out)
	}
	return out
}

// Try runs argv inside the namespace and returns its combined output and error.
func (ns NS) Try(argv ...string) (string, error) {
	full := append([]string{"netns", "exec", string(ns)}, argv...)
	out, err := exec.Command(IP, full...).CombinedOutput()
	return string(out), err
}

// Sh runs a shell command line inside the namespace.
func (ns NS) Sh(t testing.TB, script string) string {
	t.Helper()
	return ns.Run(t, "/bin/sh", "-c", script)
}

// Command returns an exec.Cmd that runs argv inside the namespace.
func (ns NS) Command(argv ...string) *exec.Cmd {
	return exec.Command(IP, append([]string{"netns", "exec", string(ns)}, argv...)...)
}

// Add creates a namespace with loopback up, removed at cleanup.
func Add(t testing.TB, name string) NS {
	t.Helper()
	run(t, IP, "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command(IP, "netns", "del", name).Run() })
	ns := NS(name)
	ns.Run(t, IP, "link", "set", "lo", "up")
	return ns
}

// Veth joins a and b with a veth pair named aIf (in a) and bIf (in b), both up.
func Veth(t testing.TB, a NS, aIf string, b NS, bIf string) {
	t.Helper()
	a.Run(t, IP, "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", string(b))
	a.Run(t, IP, "link", "set", aIf, "up")
	b.Run(t, IP, "link", "set", bIf, "up")
}

// Addr adds prefix to ifname in ns; IPv6 addresses skip duplicate address detection.
func (ns NS) Addr(t testing.TB, ifname, prefix string) {
	t.Helper()
	args := []string{IP, "addr", "add", prefix, "dev", ifname}
	if strings.Contains(prefix, ":") {
		args = append(args, "nodad")
	}
	ns.Run(t, args...)
}

// Sysctl sets a sysctl in ns.
func (ns NS) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	ns.Sh(t, fmt.Sprintf("echo %s > /proc/sys/%s", value, strings.ReplaceAll(key, ".", "/")))
}

// IPBatch runs iproute2's commands (lines such as "addr add 192.0.2.1/24 dev eth0", without
// the leading ip) in ns, all in one process (ip -n NS -batch -): much faster under TCG than a
// process per command. It fails the test on the first command that fails.
func (ns NS) IPBatch(t testing.TB, cmds ...string) {
	t.Helper()
	cmd := exec.Command(IP, "-n", string(ns), "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("in %s: ip -batch: %v\n%s\ncommands:\n%s", ns, err, out, strings.Join(cmds, "\n"))
	}
}

// Topology is the standard client / director / real servers layout.
type Topology struct {
	Client, Director NS
	Servers          []NS
	// ClientAddr and ClientAddr6 are the client's addresses.
	ClientAddr, ClientAddr6 netip.Addr
	// VIP and VIP6 are the virtual addresses on the director.
	VIP, VIP6 netip.Addr
	// DirectorRS and DirectorRS6 are the director's addresses on the real servers' segment.
	DirectorRS, DirectorRS6 netip.Addr
	// ServerAddrs and ServerAddrs6 are the real servers' addresses, in Servers' order.
	ServerAddrs, ServerAddrs6 []netip.Addr
}

// Options tunes New.
type Options struct {
	// Servers is the number of real servers (default 2).
	Servers int
	// RouteBack gives the real servers a default route through the director (NAT needs it;
	// FULLNAT must work without it).
	RouteBack bool
}

// New builds the standard topology.
func New(t testing.TB, o Options) *Topology {
	t.Helper()
	if o.Servers == 0 {
		o.Servers = 2
	}
	tp := &Topology{
		Client:       Add(t, "cl"),
		Director:     Add(t, "dr"),
		ClientAddr:   netip.MustParseAddr("192.0.2.2"),
		ClientAddr6:  netip.MustParseAddr("2001:db8:1::2"),
		VIP:          netip.MustParseAddr("203.0.113.10"),
		VIP6:         netip.MustParseAddr("2001:db8:10::10"),
		DirectorRS:   netip.MustParseAddr("198.51.100.1"),
		DirectorRS6:  netip.MustParseAddr("2001:db8:2::1"),
		ServerAddrs:  nil,
		ServerAddrs6: nil,
	}
	c, d := tp.Client, tp.Director
	Veth(t, c, "eth0", d, "c0")
	c.Addr(t, "eth0", "192.0.2.2/24")
	c.Addr(t, "eth0", "2001:db8:1::2/64")
	d.Addr(t, "c0", "192.0.2.1/24")
	d.Addr(t, "c0", "2001:db8:1::1/64")
	c.Run(t, IP, "route", "add", "default", "via", "192.0.2.1")
	c.Run(t, IP, "-6", "route", "add", "default", "via", "2001:db8:1::1")

	d.Run(t, IP, "link", "add", "vip0", "type", "dummy")
	d.Run(t, IP, "link", "set", "vip0", "up")
	d.Addr(t, "vip0", "203.0.113.10/32")
	d.Addr(t, "vip0", "2001:db8:10::10/128")
	d.Run(t, IP, "link", "add", "br0", "type", "bridge")
	d.Run(t, IP, "link", "set", "br0", "up")
	d.Addr(t, "br0", "198.51.100.1/24")
	d.Addr(t, "br0", "2001:db8:2::1/64")
	d.Sysctl(t, "net.ipv4.ip_forward", "1")
	d.Sysctl(t, "net.ipv6.conf.all.forwarding", "1")

	for i := 1; i <= o.Servers; i++ {
		rs := Add(t, fmt.Sprintf("rs%d", i))
		Veth(t, d, fmt.Sprintf("r%d", i), rs, "eth0")
		d.Run(t, IP, "link", "set", fmt.Sprintf("r%d", i), "master", "br0")
		a4 := netip.MustParseAddr(fmt.Sprintf("198.51.100.%d", 10+i))
		a6 := netip.MustParseAddr(fmt.Sprintf("2001:db8:2::%d", 10+i))
		rs.Addr(t, "eth0", a4.String()+"/24")
		rs.Addr(t, "eth0", a6.String()+"/64")
		if o.RouteBack {
			rs.Run(t, IP, "route", "add", "default", "via", "198.51.100.1")
			rs.Run(t, IP, "-6", "route", "add", "default", "via", "2001:db8:2::1")
		}
		tp.Servers = append(tp.Servers, rs)
		tp.ServerAddrs = append(tp.ServerAddrs, a4)
		tp.ServerAddrs6 = append(tp.ServerAddrs6, a6)
	}
	return tp
}

// Serve starts `lvs-peer serve` in ns with the given name, listening on TCP and UDP port on every
// address given, and stops it at cleanup.
func Serve(t testing.TB, ns NS, name string, port uint16, addrs ...netip.Addr) {
	t.Helper()
	args := []string{"--name", name}
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, port).String()
		args = append(args, "--listen", ap, "--udp", ap)
	}
	ServeArgs(t, ns, args...)
}

// ServeArgs starts `lvs-peer serve` with args in ns, waits until it listens, and stops it at
// cleanup. The returned function stops it earlier (a real server that dies); calling it again
// does nothing.
func ServeArgs(t testing.TB, ns NS, args ...string) (stop func()) {
	t.Helper()
	cmd := ns.Command(append([]string{Bin + "/lvs-peer", "serve"}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting lvs-peer in %s: %v", ns, err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) }
	t.Cleanup(stop)
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if strings.TrimSpace(line) != "ready" {
			t.Fatalf("lvs-peer in %s did not start: %q", ns, line)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("lvs-peer in %s did not start in time", ns)
	}
	return stop
}

func run(t testing.TB, argv ...string) {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// Summary is what `lvs-peer dial` reports.
type Summary struct {
	OK     int `json:"ok"`
	Failed int `json:"failed"`
	// Lost is the datagrams of --op pps that got no answer.
	Lost    int            `json:"lost"`
	Servers map[string]int `json:"servers"`
	Peers   map[string]int `json:"peers"`
	// Seen maps each server name to the peer addresses (without port) it saw, with counts.
	Seen      map[string]map[string]int `json:"seen"`
	Bytes     int64                     `json:"bytes"`
	ElapsedMS int64                     `json:"elapsed_ms"`
	// SlowestMS is the longest successful operation, connection set-up included.
	SlowestMS int64    `json:"slowest_ms"`
	Errors    []string `json:"errors"`
}

// Dial runs `lvs-peer dial` in ns with args and returns its summary; a failed operation fails
// the test.
func Dial(t testing.TB, ns NS, args ...string) Summary {
	t.Helper()
	s, out, err := TryDial(ns, args...)
	if err != nil {
		t.Fatalf("lvs-peer dial %s in %s: %v\n%s", strings.Join(args, " "), ns, err, out)
	}
	return s
}

// TryDial is Dial that returns the error instead of failing the test.
func TryDial(ns NS, args ...string) (Summary, string, error) {
	cmd := ns.Command(append([]string{Bin + "/lvs-peer", "dial"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var s Summary
	if jerr := json.Unmarshal(out, &s); jerr != nil && err == nil {
		err = fmt.Errorf("bad summary %q: %w", out, jerr)
	}
	return s, string(out) + stderr.String(), err
}
