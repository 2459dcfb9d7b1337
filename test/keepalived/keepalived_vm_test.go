//go:build vmtest

package keepalived

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
)

const (
	// ourKeepalived is Debian's keepalived 2.2.7 with patches/keepalived/2.2.7 (make keepalived),
	// the build every test runs.
	ourKeepalived = vmnet.Bin + "/keepalived"
	// stockKeepalived is Debian's own.
	stockKeepalived = "/usr/sbin/keepalived"
	// ipvsadm is ours: it shows FullNat, synproxy and the local addresses (-G).
	ipvsadm = vmnet.Bin + "/ipvsadm"
)

// build is one of our keepalived builds in the VM: Debian's keepalived VERSION with
// patches/keepalived/VERSION.
type build struct {
	version string
	bin     string
	// on tells whether the build's subtests run on a kernel line (RIG_KERNEL): a Debian
	// release's keepalived on that release's kernel.
	on func(kernel string) bool
}

// builds are the versions `make keepalived` builds (KEEPALIVED_VERSIONS), where rig/vm.sh puts
// them: bookworm's 2.2.7 at /opt/fullnat/bin/keepalived (ourKeepalived), tested through
// forEachBuild on bookworm's 6.1; any other version at /opt/fullnat/bin/keepalived-VERSION
// (trixie's 2.3.3, on trixie's 6.12 and on 7.x from trixie-backports). The tests that do not
// go through forEachBuild run 2.2.7 on every line.
var builds = []build{
	{"2.2.7", ourKeepalived, func(k string) bool { return k == "6.1" }},
	{"2.3.3", vmnet.Bin + "/keepalived-2.3.3", func(k string) bool { return k != "6.1" }},
}

// forEachBuild runs f as a subtest per build of this kernel line, named by its version
// (-run 'TestX/2.3.3'). A build missing from the VM fails its subtest.
func forEachBuild(t *testing.T, f func(t *testing.T, k build)) {
	t.Helper()
	for _, k := range builds {
		if !k.on(os.Getenv("RIG_KERNEL")) {
			continue
		}
		t.Run(k.version, func(t *testing.T) {
			if _, err := os.Stat(k.bin); err != nil {
				t.Fatalf("our keepalived %s is not in the VM (make keepalived): %v", k.version, err)
			}
			f(t, k)
		})
	}
}

// first tells whether k is the first build tested on this kernel line: checks that prove
// something about a test itself (Debian's keepalived does not pass it) run there only.
func (k build) first() bool {
	for _, b := range builds {
		if b.on(os.Getenv("RIG_KERNEL")) {
			return b.version == k.version
		}
	}
	return false
}

// director builds the standard topology (no route back: FULLNAT needs none) with our module
// loaded and the local addresses the configurations use on the director's inside bridge:
// 198.51.100.101-103 and 2001:db8:2::101-102.
func director(t *testing.T, servers int) *vmnet.Topology {
	t.Helper()
	if os.Getenv("RIG_MODULES") != "ours" {
		t.Fatalf("FULLNAT needs our modules (RIG_MODULES=ours), got %q", os.Getenv("RIG_MODULES"))
	}
	if _, err := os.Stat(ourKeepalived); err != nil {
		t.Fatalf("our keepalived is not in the VM (make keepalived): %v", err)
	}
	tp := vmnet.New(t, vmnet.Options{Servers: servers})
	d := tp.Director
	for _, m := range []string{"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_wlc"} {
		d.Run(t, "/sbin/modprobe", m)
	}
	for i := 1; i <= 3; i++ {
		d.Addr(t, "br0", fmt.Sprintf("198.51.100.%d/24", 100+i))
	}
	for i := 1; i <= 2; i++ {
		d.Run(t, vmnet.IP, "-6", "addr", "add", fmt.Sprintf("2001:db8:2::%d/64", 100+i), "dev", "br0", "nodad")
	}
	t.Cleanup(func() { _, _ = d.Try(ipvsadm, "-C") })
	return tp
}

// lockedBuffer collects a daemon's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// daemon is a keepalived running in the foreground, logging to its output.
type daemon struct {
	cmd  *exec.Cmd
	logs *lockedBuffer
	done chan struct{}
}

// startKeepalived starts keepalived running the checker only (--check); see startDaemon.
func startKeepalived(t *testing.T, ns vmnet.NS, bin, conf string) *daemon {
	t.Helper()
	return startDaemon(t, ns, bin, conf, "--check")
}

// startDaemon starts keepalived in the foreground with its pid files in a fresh directory,
// logging to its output, with args (none: VRRP and the checker); the log is in the test's log
// if it fails. It is stopped at cleanup.
func startDaemon(t *testing.T, ns vmnet.NS, bin, conf string, args ...string) *daemon {
	t.Helper()
	dir := t.TempDir()
	k := &daemon{logs: &lockedBuffer{}, done: make(chan struct{})}
	argv := append([]string{bin, "--dont-fork", "--log-console", "--log-detail", "-f", conf,
		"-p", filepath.Join(dir, "ka.pid"), "-c", filepath.Join(dir, "ka-check.pid"),
		"-r", filepath.Join(dir, "ka-vrrp.pid")}, args...)
	k.cmd = ns.Command(argv...)
	k.cmd.Stdout, k.cmd.Stderr = k.logs, k.logs
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() { _ = k.cmd.Wait(); close(k.done) }()
	t.Cleanup(func() {
		k.stop()
		// keepalived respawns a child process that dies: the configuration is set up again
		// and a test of its end state would pass through the crash.
		if l := k.logs.String(); strings.Contains(l, "died: Respawning") || strings.Contains(l, "exited due to") {
			t.Errorf("a keepalived process died (see the log below)")
		}
		if t.Failed() {
			t.Logf("%s -f %s in %s log:\n%s", bin, conf, ns, k.logs.String())
		}
	})
	return k
}

// stop ends keepalived (SIGTERM, as systemd does) and waits for it.
func (k *daemon) stop() {
	select {
	case <-k.done:
		return
	default:
	}
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(15 * time.Second):
		_ = k.cmd.Process.Kill()
		<-k.done
	}
}

// server is an `lvs-peer serve` the test can stop and start again.
type server struct {
	t        *testing.T
	ns       vmnet.NS
	args     []string
	stopPeer func()
}

// newServer starts a server named name listening on TCP at each of addrs.
func newServer(t *testing.T, ns vmnet.NS, name string, addrs ...string) *server {
	s := &server{t: t, ns: ns, args: []string{"--name", name}}
	for _, a := range addrs {
		s.args = append(s.args, "--listen", a)
	}
	s.start()
	return s
}

func (s *server) start() {
	s.t.Helper()
	s.stopPeer = vmnet.ServeArgs(s.t, s.ns, s.args...)
}

func (s *server) stop() {
	if s.stopPeer != nil {
		s.stopPeer()
		s.stopPeer = nil
	}
}

// table is `ipvsadm -Ln`, `-G` and `-Sn` (our ipvsadm) in ns.
func table(ns vmnet.NS) string {
	ln, err := ns.Try(ipvsadm, "-Ln")
	if err != nil {
		ln += "\n(ipvsadm -Ln: " + err.Error() + ")"
	}
	g, err := ns.Try(ipvsadm, "-G")
	if err != nil {
		g += "\n(ipvsadm -G: " + err.Error() + ")"
	}
	// -S shows what -L does not: the ESTABLISHED timeout (-V).
	sv, err := ns.Try(ipvsadm, "-Sn")
	if err != nil {
		sv += "\n(ipvsadm -Sn: " + err.Error() + ")"
	}
	return "== ipvsadm -Ln\n" + ln + "== ipvsadm -G\n" + g + "== ipvsadm -Sn\n" + sv
}

// waitFor polls ok every 100 ms until it holds or limit passes; it returns how long that took.
func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}
