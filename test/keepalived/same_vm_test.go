//go:build vmtest

package keepalived

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
)

// sameDir holds the configurations that use none of our words: NAME.conf, NAME.reload.conf and
// NAME.tables, the table each phase must leave (see TestSameAsDebian).
const sameDir = corpus + "/same"

// samePhases are the phases of TestSameAsDebian, in order, with what happens before each is
// checked. "up" is checked twice: at the start and after rs2 returns.
var samePhases = []struct{ name, what string }{
	{"up", "keepalived starts"},
	{"down", "rs2 stops answering"},
	{"up", "rs2 answers again"},
	{"reload", "a reload (SIGHUP) to NAME.reload.conf"},
	{"stopped", "keepalived stops (SIGTERM)"},
}

// TestSameAsDebian is the bar for configurations with none of our words: each file in
// testdata/keepalived/same gives the same IPVS state with Debian's keepalived and with our
// build, on Debian's ip_vs and on ours. State is `ipvsadm -Sn` (every service, flag, scheduler,
// persistence, forwarding method and weight, sorted) and the connection timeouts, pinned per
// phase in NAME.tables (a "== PHASE debian" section there is what Debian's keepalived leaves
// instead, where it has a bug that upstream and our series fixed): after the start; when rs2 stops answering its checks (removed, or
// weight 0 with inhibit_on_failure, sorry servers in); when it answers again; after a reload to
// NAME.reload.conf (services, VIPs and real servers added, removed and changed); after
// keepalived stops. Each phase must be reached within 20 s.
//
// A file without its .tables fails, and the log has what Debian's keepalived built, in the
// file's format, to review and pin.
func TestSameAsDebian(t *testing.T) {
	confs, _ := filepath.Glob(filepath.Join(sameDir, "*.conf"))
	var names []string
	for _, c := range confs {
		if !strings.HasSuffix(c, ".reload.conf") {
			names = append(names, strings.TrimSuffix(filepath.Base(c), ".conf"))
		}
	}
	if len(names) < 2 {
		t.Fatalf("want the configurations in %s, found %v", sameDir, names)
	}
	scheds := []string{"rr", "wrr", "wlc", "sh", "mh"}
	forEachBuild(t, func(t *testing.T, k build) {
		for _, module := range []string{"stock", "ours"} {
			t.Run(module, func(t *testing.T) {
				tp := director(t, 2)
				d := tp.Director
				if module == "stock" {
					stockIPVS(t, d, scheds...)
				} else {
					for _, s := range scheds {
						d.Run(t, "/sbin/modprobe", "ip_vs_"+s)
					}
				}
				// rs1 always answers; rs2's port 80 (both families) is what its checks
				// connect to, and it stops and starts.
				for _, port := range []uint16{80, 443, 8080} {
					vmnet.Serve(t, tp.Servers[0], "rs1", port, tp.ServerAddrs[0], tp.ServerAddrs6[0])
				}
				rs2 := newServer(t, tp.Servers[1], "rs2", tp.ServerAddrs[1].String()+":80",
					"["+tp.ServerAddrs6[1].String()+"]:80")
				for _, name := range names {
					t.Run(name, func(t *testing.T) {
						want, err := readTables(filepath.Join(sameDir, name+".tables"))
						if err != nil {
							got := sameRun(t, d, rs2, stockKeepalived, name, nil)
							t.Fatalf("%v\nDebian's keepalived built, to pin in %s.tables:\n%s", err, name, got)
						}
						for _, bin := range []string{stockKeepalived, k.bin} {
							if got := sameRun(t, d, rs2, bin, name, want); got != "" {
								t.Errorf("%s", got)
							}
						}
					})
				}
			})
		}
	})
}

// sameRun runs bin through the phases of name in d. With want, it waits for each phase's table
// and returns "" or what went wrong; without, it waits for each phase's table to settle and
// returns them all in the .tables format.
func sameRun(t *testing.T, d vmnet.NS, rs2 *server, bin, name string, want map[string]string) string {
	t.Helper()
	who := "our keepalived"
	if bin == stockKeepalived {
		who = "Debian's keepalived"
	}
	if rs2.stopPeer == nil {
		rs2.start() // an earlier run failed while it was down
	}
	// The kernel's defaults, which lvs_timeouts changes and nothing puts back.
	d.Run(t, ipvsadm, "-C")
	d.Run(t, ipvsadm, "--set", "900", "120", "300")
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	install := func(src string) {
		b, err := os.ReadFile(filepath.Join(sameDir, src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(conf, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	install(name + ".conf")
	kd := startKeepalived(t, d, bin, conf)
	defer kd.stop()

	var pinned strings.Builder
	for i, ph := range samePhases {
		switch {
		case ph.name == "down":
			rs2.stop()
		case ph.name == "up" && i > 0:
			rs2.start()
		case ph.name == "reload":
			install(name + ".reload.conf")
			if err := kd.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		case ph.name == "stopped":
			kd.stop()
		}
		got := ""
		if want == nil {
			got = settle(d)
			fmt.Fprintf(&pinned, "== %s\n%s", ph.name, got)
			continue
		}
		wantPh := want[ph.name]
		if w, ok := want[ph.name+" debian"]; ok && bin == stockKeepalived {
			wantPh = w
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			got = state(d)
			if got == wantPh || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if got != wantPh {
			return fmt.Sprintf("%s, %s: after %s, %s left\n%swant (%s.tables, == %s)\n%slog:\n%s",
				name, who, ph.what, who, got, name, ph.name, wantPh, kd.logs.String())
		}
	}
	return pinned.String()
}

// state is the IPVS state TestSameAsDebian compares: `ipvsadm -Sn` and the timeouts.
func state(d vmnet.NS) string {
	sv, err := d.Try(ipvsadm, "-Sn")
	if err != nil {
		sv += "(ipvsadm -Sn: " + err.Error() + ")\n"
	}
	to, err := d.Try(ipvsadm, "-Ln", "--timeout")
	if err != nil {
		to += "(ipvsadm -Ln --timeout: " + err.Error() + ")\n"
	}
	return sv + to
}

// settle waits until state has not changed for 5 s (at most 30 s) and returns it.
func settle(d vmnet.NS) string {
	last, since := state(d), time.Now()
	for start := time.Now(); time.Since(since) < 5*time.Second && time.Since(start) < 30*time.Second; {
		time.Sleep(200 * time.Millisecond)
		if s := state(d); s != last {
			last, since = s, time.Now()
		}
	}
	return last
}

// readTables reads a .tables file: "== PHASE" (or "== PHASE debian") lines, each followed by
// that phase's state; lines starting with # are comments.
func readTables(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tables := map[string]string{}
	phase := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "== "):
			phase = strings.TrimPrefix(l, "== ")
			tables[phase] = ""
		case strings.HasPrefix(l, "#"):
		case phase == "":
			return nil, fmt.Errorf("%s: %q before the first == PHASE line", path, l)
		default:
			tables[phase] += l + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, ph := range samePhases {
		if _, ok := tables[ph.name]; !ok {
			return nil, fmt.Errorf("%s: no == %s", path, ph.name)
		}
	}
	return tables, nil
}
