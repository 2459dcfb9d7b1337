// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package vmnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FRR in the VM is Debian's frr package (8.4 on bookworm): the rig puts zebra, bgpd and vtysh
// into the initramfs, with the user frr and the group frrvty the daemons insist on.
const (
	// FRRDaemons is the directory of FRR's daemons (zebra, bgpd).
	FRRDaemons = "/usr/lib/frr"
	// Vtysh is FRR's shell.
	Vtysh = "/usr/bin/vtysh"
	// FRRRunDir holds each namespace's FRR run directory, FRRRunDir/<namespace>: the daemons
	// run with pathspace <namespace> (-N), so their pid files, vty sockets and zebra's API
	// socket live there and vtysh -N <namespace> finds them.
	FRRRunDir = "/var/run/frr"
)

// ErrBGPConfig is what BGPConfig.Render's errors wrap: the configuration is invalid.
var ErrBGPConfig = errors.New("invalid BGP configuration")

// ErrFRR is what the errors of a running FRR wrap: a daemon did not start, refused its
// configuration or did not answer.
var ErrFRR = errors.New("FRR")

// ErrRouteWait is what WaitRoute's error wraps when the route did not become what was asked
// for in time.
var ErrRouteWait = errors.New("route not as expected in time")

// BGPNeighbor is one BGP session of a speaker.
type BGPNeighbor struct {
	// Addr is the neighbor's address: the session of an IPv4 neighbor carries IPv4 unicast,
	// that of an IPv6 neighbor IPv6 unicast.
	Addr netip.Addr
	// AS is the neighbor's AS number; the speaker's own makes the session iBGP.
	AS uint32
	// Passive makes the speaker wait for the neighbor to connect, never connect itself (a
	// router its directors connect to): no connection collisions, so sessions come up sooner.
	Passive bool
}

// BGPConfig is a BGP speaker's configuration, rendered by Render into bgpd.conf.
type BGPConfig struct {
	// RouterID is the speaker's router id, an IPv4 address (required).
	RouterID netip.Addr
	// AS is the speaker's AS number (required).
	AS uint32
	// Neighbors are its sessions.
	Neighbors []BGPNeighbor
	// Announce are the prefixes the speaker announces: connected routes (addresses of its
	// namespace's interfaces, such as the VIPs on vip0) redistributed through a route map that
	// matches exactly these prefixes (`redistribute connected route-map`), per family. A prefix
	// is announced while its address is on an interface that is up, and withdrawn when that
	// interface goes down. Every neighbor gets these prefixes and nothing else: a router with no
	// Announce announces nothing.
	Announce []netip.Prefix
	// MaximumPaths is how many next hops a route learned from several neighbors may have in the
	// kernel (ECMP), for eBGP and iBGP, IPv4 and IPv6 (0: FRR's default).
	MaximumPaths int
	// Keepalive and Hold are the BGP timers in seconds (defaults 1 and 3): a peer that dies
	// without closing its session is noticed after Hold seconds.
	Keepalive, Hold int
}

// Render returns the bgpd.conf for c, or an error wrapping ErrBGPConfig that names what is
// wrong.
func (c BGPConfig) Render(hostname string) (string, error) {
	bad := func(format string, a ...any) (string, error) {
		return "", fmt.Errorf("%w: %s", ErrBGPConfig, fmt.Sprintf(format, a...))
	}
	if !c.RouterID.Is4() {
		return bad("router id %v is not an IPv4 address", c.RouterID)
	}
	if c.AS == 0 {
		return bad("AS number 0")
	}
	keepalive, hold := c.Keepalive, c.Hold
	if keepalive == 0 {
		keepalive = 1
	}
	if hold == 0 {
		hold = 3
	}
	if keepalive < 0 || hold < 3 || hold < keepalive {
		return bad("timers keepalive %d hold %d: hold must be at least 3 and not below keepalive", keepalive, hold)
	}
	if c.MaximumPaths < 0 || c.MaximumPaths > 256 {
		return bad("maximum-paths %d is not between 1 and 256 (Debian's FRR)", c.MaximumPaths)
	}
	if hostname == "" || strings.ContainsAny(hostname, " \t\n") {
		return bad("hostname %q", hostname)
	}
	var v4, v6 []BGPNeighbor
	seen := map[netip.Addr]bool{}
	for _, n := range c.Neighbors {
		switch {
		case !n.Addr.IsValid() || n.Addr.IsUnspecified() || n.Addr.Zone() != "":
			return bad("neighbor address %v", n.Addr)
		case n.AS == 0:
			return bad("neighbor %v has AS number 0", n.Addr)
		case seen[n.Addr]:
			return bad("neighbor %v twice", n.Addr)
		}
		seen[n.Addr] = true
		if n.Addr.Unmap().Is4() {
			v4 = append(v4, n)
		} else {
			v6 = append(v6, n)
		}
	}
	var p4, p6 []netip.Prefix
	for _, p := range c.Announce {
		switch {
		case !p.IsValid():
			return bad("announced prefix %v", p)
		case p.Masked() != p:
			return bad("announced prefix %v has host bits set (%v)", p, p.Masked())
		case p.Addr().Is4():
			p4 = append(p4, p)
		default:
			p6 = append(p6, p)
		}
	}

	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	// The datacenter profile: no advertisement interval (updates and withdrawals go out at
	// once), short connect retry.
	w("frr defaults datacenter")
	w("hostname %s", hostname)
	w("!")
	// One prefix list and route map per family; a family without prefixes gets a route map that
	// denies everything.
	for _, f := range []struct {
		name, ip string
		prefixes []netip.Prefix
	}{{"ANNOUNCE4", "ip", p4}, {"ANNOUNCE6", "ipv6", p6}} {
		for i, p := range f.prefixes {
			w("%s prefix-list %s seq %d permit %v", f.ip, f.name, 5*(i+1), p)
		}
		if len(f.prefixes) > 0 {
			w("route-map %s permit 10", f.name)
			w(" match %s address prefix-list %s", f.ip, f.name)
		} else {
			w("route-map %s deny 10", f.name)
		}
		w("exit")
		w("!")
	}
	w("router bgp %d", c.AS)
	w(" bgp router-id %v", c.RouterID)
	w(" no bgp ebgp-requires-policy")
	w(" no bgp default ipv4-unicast")
	// Paths through directors of different ASes are equal too.
	w(" bgp bestpath as-path multipath-relax")
	w(" timers bgp %d %d", keepalive, hold)
	for _, n := range c.Neighbors {
		w(" neighbor %v remote-as %d", n.Addr, n.AS)
		w(" neighbor %v timers connect 1", n.Addr)
		w(" neighbor %v advertisement-interval 0", n.Addr)
		if n.Passive {
			w(" neighbor %v passive", n.Addr)
		}
	}
	for _, f := range []struct {
		afi, rmap string
		nbrs      []BGPNeighbor
		prefixes  []netip.Prefix
	}{{"ipv4", "ANNOUNCE4", v4, p4}, {"ipv6", "ANNOUNCE6", v6, p6}} {
		if len(f.nbrs) == 0 && len(f.prefixes) == 0 {
			continue
		}
		w(" address-family %s unicast", f.afi)
		if len(f.prefixes) > 0 {
			w("  redistribute connected route-map %s", f.rmap)
		}
		for _, n := range f.nbrs {
			w("  neighbor %v activate", n.Addr)
			w("  neighbor %v route-map %s out", n.Addr, f.rmap)
		}
		if c.MaximumPaths > 0 {
			w("  maximum-paths %d", c.MaximumPaths)
			w("  maximum-paths ibgp %d", c.MaximumPaths)
		}
		w(" exit-address-family")
	}
	w("exit")
	return b.String(), nil
}

// FRR is zebra and bgpd running in a namespace.
type FRR struct {
	// NS is the namespace, also the daemons' pathspace (-N).
	NS NS
	// Dir holds their configuration (zebra.conf, bgpd.conf, vtysh.conf) and what they log (zebra.log,
	// bgpd.log). It is removed at cleanup.
	Dir string

	mu    sync.Mutex
	procs []*frrProc // bgpd first: it stops first
}

type frrProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// The FRR of each namespace: one at a time, since they would share its run directory.
var frrRunning = struct {
	sync.Mutex
	ns map[NS]*FRR
}{ns: map[NS]*FRR{}}

// StartBGP renders c (hostname: the namespace's name) and starts FRR with it in ns, as
// StartFRR does. Invalid input fails the test with Render's error.
func StartBGP(t testing.TB, ns NS, c BGPConfig) *FRR {
	t.Helper()
	return StartBGPs(t, map[NS]BGPConfig{ns: c})[ns]
}

// StartBGPs starts FRR in each namespace of confs as StartBGP does, side by side: each zebra, then
// each bgpd once every zebra listens. (zebra takes about a second to start under TCG, bgpd
// several: it loads its YANG models.)
func StartBGPs(t testing.TB, confs map[NS]BGPConfig) map[NS]*FRR {
	t.Helper()
	texts := map[NS]string{}
	for ns, c := range confs {
		conf, err := c.Render(string(ns))
		if err != nil {
			t.Fatalf("FRR in %s: %v", ns, err)
		}
		texts[ns] = conf
	}
	return StartFRRs(t, texts)
}

// StartFRR starts zebra, then bgpd with bgpdConf as its configuration, in ns, as Debian runs them
// (user frr), with pathspace ns, no TCP vty and their logs in files under Dir. It returns once
// zebra listens and bgpd runs; WaitEstablished waits for the sessions. The daemons stop at
// cleanup (Stop). A configuration line bgpd refused (FRR only logs it) fails the test there, or
// in WaitEstablished; if the test failed, the end of the daemons' logs and their BGP summary are
// logged.
func StartFRR(t testing.TB, ns NS, bgpdConf string) *FRR {
	t.Helper()
	return StartFRRs(t, map[NS]string{ns: bgpdConf})[ns]
}

// StartFRRs starts FRR in each namespace of bgpdConfs (its bgpd.conf) as StartFRR does, side by
// side: each zebra, then each bgpd once every zebra listens.
func StartFRRs(t testing.TB, bgpdConfs map[NS]string) map[NS]*FRR {
	t.Helper()
	all := map[NS]*FRR{}
	for _, ns := range slices.Sorted(maps.Keys(bgpdConfs)) {
		f := newFRR(t, ns)
		all[ns] = f
		if err := f.startZebra(bgpdConfs[ns]); err != nil {
			t.Fatalf("FRR in %s: %v", ns, err)
		}
	}
	for _, ns := range slices.Sorted(maps.Keys(bgpdConfs)) {
		if err := all[ns].startBgpd(); err != nil {
			t.Fatalf("FRR in %s: %v", ns, err)
		}
	}
	return all
}

// newFRR claims ns for an FRR and arranges its cleanup. A namespace whose FRR was stopped or
// killed may get a new one (a director's FRR that restarts).
func newFRR(t testing.TB, ns NS) *FRR {
	t.Helper()
	f := &FRR{NS: ns}
	frrRunning.Lock()
	if old := frrRunning.ns[ns]; old != nil && old.running() {
		frrRunning.Unlock()
		t.Fatalf("FRR in %s: already running", ns)
	}
	frrRunning.ns[ns] = f
	frrRunning.Unlock()
	t.Cleanup(func() {
		if f.started() {
			if bad := f.configErrors(); bad != "" {
				t.Errorf("FRR in %s: bgpd refused lines of its configuration:\n%s", ns, bad)
			}
			if t.Failed() {
				t.Logf("FRR in %s, at the end of a failed test:\n%s", ns, f.Report())
			}
		}
		f.Stop()
		if f.Dir != "" {
			_ = os.RemoveAll(f.Dir)
		}
		frrRunning.Lock()
		defer frrRunning.Unlock()
		// Only the namespace's latest FRR (its cleanup runs first) removes the run directory.
		if frrRunning.ns[ns] == f {
			_ = os.RemoveAll(f.runDir())
			delete(frrRunning.ns, ns)
		}
	})
	return f
}

func (f *FRR) runDir() string { return filepath.Join(FRRRunDir, string(f.NS)) }

func (f *FRR) args(daemon string) []string {
	return []string{"-f", filepath.Join(f.Dir, daemon+".conf"), "-N", string(f.NS), "-P", "0", "--log", "stdout"}
}

// startZebra writes the configuration and starts zebra.
func (f *FRR) startZebra(bgpdConf string) error {
	// The daemons read their configuration as user frr: a directory of our own that others
	// may read (t.TempDir's are not), not writable by them.
	dir, err := os.MkdirTemp("", "frr-"+string(f.NS)+"-")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrFRR, err)
	}
	f.Dir = dir
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("%w: %v", ErrFRR, err)
	}
	for name, text := range map[string]string{
		"zebra.conf": "hostname " + string(f.NS) + "\n",
		"bgpd.conf":  bgpdConf,
		// vtysh authenticates its user with PAM (service frr), which the VM does not have,
		// unless vtysh.conf lets the user in without.
		"vtysh.conf": "username root nopassword\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return fmt.Errorf("%w: %v", ErrFRR, err)
		}
	}
	// A previous FRR of this namespace's name left its sockets: zebra's would look ready.
	if err := os.RemoveAll(f.runDir()); err != nil {
		return fmt.Errorf("%w: %v", ErrFRR, err)
	}
	if err := os.MkdirAll(FRRRunDir, 0o755); err != nil {
		return fmt.Errorf("%w: %v", ErrFRR, err)
	}
	return f.spawn("zebra", f.args("zebra"))
}

// startBgpd waits until zebra listens and starts bgpd: bgpd connects to zebra once its
// initialisation is done, and retries only seconds later.
func (f *FRR) startBgpd() error {
	zserv := filepath.Join(f.runDir(), "zserv.api")
	for end := time.Now().Add(20 * time.Second); ; {
		if _, err := os.Stat(zserv); err == nil {
			break
		}
		if time.Now().After(end) || f.exited("zebra") {
			return fmt.Errorf("%w: zebra did not open %s:\n%s", ErrFRR, zserv, f.Log("zebra"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return f.spawn("bgpd", f.args("bgpd"))
}

// running reports whether one of the daemons still runs.
func (f *FRR) running() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.procs {
		select {
		case <-p.done:
		default:
			return true
		}
	}
	return false
}

func (f *FRR) started() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.procs) > 0
}

// configErrors returns the lines of bgpd's log that name a configuration line it refused, with
// the configuration, or "".
func (f *FRR) configErrors() string {
	var bad []string
	for _, l := range strings.Split(f.Log("bgpd"), "\n") {
		if strings.Contains(l, "config line") {
			bad = append(bad, l)
		}
	}
	if len(bad) == 0 {
		return ""
	}
	conf, _ := os.ReadFile(filepath.Join(f.Dir, "bgpd.conf"))
	return strings.Join(bad, "\n") + "\n" + numbered(string(conf))
}

// spawn starts FRRDaemons/name in the namespace, logging to Dir/name.log.
func (f *FRR) spawn(name string, args []string) error {
	log, err := os.Create(filepath.Join(f.Dir, name+".log"))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrFRR, err)
	}
	cmd := f.NS.Command(append([]string{filepath.Join(FRRDaemons, name)}, args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("%w: starting %s: %v", ErrFRR, name, err)
	}
	p := &frrProc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	f.mu.Lock()
	f.procs = append([]*frrProc{p}, f.procs...)
	f.mu.Unlock()
	return nil
}

func (f *FRR) exited(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.procs {
		if p.name == name {
			select {
			case <-p.done:
				return true
			default:
			}
		}
	}
	return false
}

// Stop stops bgpd, then zebra, with SIGTERM, as an operator's `systemctl stop frr` would: bgpd
// closes its sessions (a BGP notification, so peers withdraw its routes at once) and zebra
// removes its routes from the kernel. A daemon still running after 10 s is killed. Stopping
// again does nothing. Once stopped (or killed), StartBGP may start FRR in the namespace again.
func (f *FRR) Stop() {
	f.signal(syscall.SIGTERM)
}

// Kill kills bgpd and zebra (SIGKILL), as a crash of FRR would: the kernel closes bgpd's
// sessions, so its peers notice at once, and the routes zebra installed stay in the kernel. (A
// director that goes silent is noticed when its peers' hold timer expires, Hold seconds.)
func (f *FRR) Kill() {
	f.signal(syscall.SIGKILL)
}

func (f *FRR) signal(sig syscall.Signal) {
	f.mu.Lock()
	procs := f.procs
	f.mu.Unlock()
	for _, p := range procs {
		select {
		case <-p.done:
			continue
		default:
		}
		_ = p.cmd.Process.Signal(sig)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// Log returns what daemon ("zebra" or "bgpd") has logged so far.
func (f *FRR) Log(daemon string) string {
	b, err := os.ReadFile(filepath.Join(f.Dir, daemon+".log"))
	if err != nil {
		return fmt.Sprintf("(no log of %s: %v)", daemon, err)
	}
	return string(b)
}

// Vtysh runs FRR's shell on the namespace's daemons with each command in turn (vtysh -c) and
// returns what they printed.
func (f *FRR) Vtysh(cmds ...string) (string, error) {
	// Not -N: vtysh would look for its vtysh.conf in <config_dir>/<pathspace>/.
	args := []string{"--config_dir", f.Dir, "--vty_socket", f.runDir()}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	cmd := exec.Command(Vtysh, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%w: vtysh in %s %q: %v: %s", ErrFRR, f.NS, cmds, err, stderr.String())
	}
	return string(out), nil
}

// Sessions returns the state of each of bgpd's sessions by neighbor address ("Established",
// "Active", "Connect", ...), from `show bgp neighbors json`.
func (f *FRR) Sessions() (map[netip.Addr]string, error) {
	out, err := f.Vtysh("show bgp neighbors json")
	if err != nil {
		return nil, err
	}
	var nbrs map[string]struct {
		State string `json:"bgpState"`
	}
	if err := json.Unmarshal([]byte(out), &nbrs); err != nil {
		return nil, fmt.Errorf("%w: show bgp neighbors json: %v: %q", ErrFRR, err, out)
	}
	states := map[netip.Addr]string{}
	for a, n := range nbrs {
		addr, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("%w: show bgp neighbors json: neighbor %q: %v", ErrFRR, a, err)
		}
		states[addr] = n.State
	}
	return states, nil
}

// WaitEstablished waits until every one of bgpd's sessions is established and fails the test
// after timeout, naming the sessions that are not; at once if a daemon exited, or as soon as
// bgpd answers if it refused a line of its configuration. It returns how long it waited.
func (f *FRR) WaitEstablished(t testing.TB, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	checked := false
	for {
		states, err := f.Sessions()
		if err == nil && !checked {
			// bgpd read its configuration before it answered.
			checked = true
			if bad := f.configErrors(); bad != "" {
				t.Fatalf("FRR in %s: bgpd refused lines of its configuration:\n%s", f.NS, bad)
			}
		}
		var down []string
		for a, s := range states {
			if s != "Established" {
				down = append(down, fmt.Sprintf("%v %s", a, s))
			}
		}
		if err == nil && len(states) > 0 && len(down) == 0 {
			return time.Since(start)
		}
		for _, d := range []string{"zebra", "bgpd"} {
			if f.exited(d) {
				t.Fatalf("FRR in %s: %s exited:\n%s", f.NS, d, f.Log(d))
			}
		}
		if time.Since(start) > timeout {
			slices.Sort(down)
			t.Fatalf("FRR in %s: BGP sessions not established after %v: %v %v", f.NS, timeout, down, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Report is what FRR in the namespace shows of itself: its BGP summary and routes, and the
// end of each daemon's log.
func (f *FRR) Report() string {
	var b strings.Builder
	out, err := f.Vtysh("show bgp summary", "show ip route", "show ipv6 route")
	fmt.Fprintf(&b, "%s", out)
	if err != nil {
		fmt.Fprintf(&b, "%v\n", err)
	}
	for _, d := range []string{"zebra", "bgpd"} {
		lines := strings.Split(strings.TrimRight(f.Log(d), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		fmt.Fprintf(&b, "--- %s log (last %d lines)\n%s\n", d, len(lines), strings.Join(lines, "\n"))
	}
	return b.String()
}

func numbered(text string) string {
	var b strings.Builder
	for i, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(&b, "%3d %s\n", i+1, l)
	}
	return b.String()
}

// AddVIPs creates the dummy interface vip0 in ns, up, with each address as a host route (/32,
// /128). IPv6 addresses stay on vip0 while it is down (keep_addr_on_down), as IPv4 addresses
// do: without it the kernel deletes them, so a director drained with `ip link set vip0 down`
// would come back up without its IPv6 VIPs and never announce them again.
func AddVIPs(t testing.TB, ns NS, vips ...netip.Addr) {
	t.Helper()
	script := IP + " link add vip0 type dummy && echo 1 > /proc/sys/net/ipv6/conf/vip0/keep_addr_on_down && " +
		IP + " link set vip0 up"
	for _, a := range vips {
		script += fmt.Sprintf(" && %s addr add %v dev vip0", IP, netip.PrefixFrom(a, a.BitLen()))
		if a.Is6() {
			script += " nodad"
		}
	}
	ns.Sh(t, script)
}

// NextHop is one next hop of a route in a namespace's kernel table.
type NextHop struct {
	// Gateway is the next hop's address (an IPv6 link-local one for routes bgpd learned over
	// IPv6); the zero Addr for a route through a device only.
	Gateway netip.Addr
	// Dev is the interface the next hop is reached through.
	Dev string
}

// String is "via GATEWAY dev DEV" or "dev DEV".
func (h NextHop) String() string {
	if h.Gateway.IsValid() {
		return fmt.Sprintf("via %v dev %s", h.Gateway, h.Dev)
	}
	return "dev " + h.Dev
}

// RouteNextHops returns the next hops of ns's route to exactly dst in its main table (`ip -j
// route show exact`): one per path of a multipath route, one for a plain route, none when
// there is no route, in the kernel's order.
func RouteNextHops(ns NS, dst netip.Prefix) ([]NextHop, error) {
	fam := "-4"
	if dst.Addr().Is6() {
		fam = "-6"
	}
	out, err := exec.Command(IP, "-n", string(ns), "-j", fam, "route", "show", "exact", dst.String()).Output()
	if err != nil {
		return nil, fmt.Errorf("ip route show exact %v in %s: %w", dst, ns, err)
	}
	type hop struct {
		Gateway string `json:"gateway"`
		Dev     string `json:"dev"`
	}
	var routes []struct {
		hop
		Type     string `json:"type"`
		Nexthops []hop  `json:"nexthops"`
	}
	if err := json.Unmarshal(out, &routes); err != nil {
		return nil, fmt.Errorf("ip route show exact %v in %s: %w: %q", dst, ns, err, out)
	}
	var hops []NextHop
	for _, r := range routes {
		if r.Type != "" && r.Type != "unicast" {
			continue
		}
		list := r.Nexthops
		if len(list) == 0 {
			list = []hop{r.hop}
		}
		for _, h := range list {
			nh := NextHop{Dev: h.Dev}
			if h.Gateway != "" {
				if nh.Gateway, err = netip.ParseAddr(h.Gateway); err != nil {
					return nil, fmt.Errorf("ip route show exact %v in %s: gateway %q: %w", dst, ns, h.Gateway, err)
				}
			}
			hops = append(hops, nh)
		}
	}
	return hops, nil
}

// WaitRoute polls ns's route to dst (RouteNextHops, every 10 ms) until ok accepts its next hops,
// and returns them with the time from the call to the first poll that saw them. After timeout
// it returns the last next hops seen and an error wrapping ErrRouteWait.
func WaitRoute(ns NS, dst netip.Prefix, timeout time.Duration, ok func([]NextHop) bool) ([]NextHop, time.Duration, error) {
	start := time.Now()
	for {
		hops, err := RouteNextHops(ns, dst)
		if err == nil && ok(hops) {
			return hops, time.Since(start), nil
		}
		if time.Since(start) > timeout {
			if err == nil {
				err = ErrRouteWait
			} else {
				err = fmt.Errorf("%w: %w", ErrRouteWait, err)
			}
			return hops, time.Since(start), fmt.Errorf("route to %v in %s after %v: next hops %v: %w", dst, ns, timeout, hops, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitNextHops waits until ns's route to dst has exactly n next hops (n = 0: no route), fails the
// test after timeout, and returns the next hops and how long it waited.
func WaitNextHops(t testing.TB, ns NS, dst netip.Prefix, n int, timeout time.Duration) ([]NextHop, time.Duration) {
	t.Helper()
	hops, took, err := WaitRoute(ns, dst, timeout, func(h []NextHop) bool { return len(h) == n })
	if err != nil {
		t.Fatalf("waiting for %d next hops: %v", n, err)
	}
	return hops, took
}
