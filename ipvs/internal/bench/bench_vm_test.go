//go:build vmtest

// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/benchdata"
	"github.com/fullnat/fullnat/internal/perfreport"
	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
)

const cipvsadm = "/usr/sbin/ipvsadm"

// Targets of issue 3: apply at least 4x and dump at least 2x faster than
// Debian's C ipvsadm 1.31 (-R and -Ln) in the same VM run. The benchmark
// reports against them; it does not fail on a time (a loaded machine is
// not a regression).
const (
	applyBar = 4.0
	dumpBar  = 2.0
)

func timeIt(t *testing.T, what string, fn func() error) time.Duration {
	t.Helper()
	start := time.Now()
	if err := fn(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return time.Since(start)
}

// result is one measured run.
type result struct {
	apply, dump time.Duration
}

// runC applies and dumps the workload with Debian's ipvsadm in a fresh
// namespace, then flushes and removes the namespace.
func runC(t *testing.T, w Workload, name, restore string) result {
	ns := vmnet.Add(t, name)
	defer func() { _ = exec.Command(vmnet.IP, "netns", "del", name).Run() }()
	sh := func(script string) func() error {
		return func() error {
			out, err := ns.Command("/bin/sh", "-c", script).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s: %v\n%s", script, err, out)
			}
			return nil
		}
	}
	var r result
	r.apply = timeIt(t, "ipvsadm -R", sh(cipvsadm+" -R < "+restore))
	r.dump = timeIt(t, "ipvsadm -Ln", sh(cipvsadm+" -Ln > /dev/null"))
	c, err := ipvs.NewInNamespace("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if s, d, err := Dump(t.Context(), c); err != nil || s != len(w.Services) || d != w.Requests()-len(w.Services) {
		t.Fatalf("after ipvsadm -R: %d services, %d destinations, %v", s, d, err)
	}
	if err := c.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	return r
}

// runGo applies and dumps the workload with the library in a fresh
// namespace (client set-up included), then flushes and removes it.
func runGo(t *testing.T, w Workload, name string) result {
	ns := vmnet.Add(t, name)
	defer func() { _ = exec.Command(vmnet.IP, "netns", "del", name).Run() }()
	path := "/run/netns/" + name
	var r result
	r.apply = timeIt(t, "Apply", func() error {
		c, err := ipvs.NewInNamespace(path)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Apply(t.Context(), w.Batch())
	})
	var ns2, nd int
	r.dump = timeIt(t, "Dump", func() error {
		c, err := ipvs.NewInNamespace(path)
		if err != nil {
			return err
		}
		defer c.Close()
		ns2, nd, err = Dump(t.Context(), c)
		return err
	})
	if ns2 != len(w.Services) || nd != w.Requests()-len(w.Services) {
		t.Fatalf("library dump saw %d services, %d destinations", ns2, nd)
	}
	// the reference tool reads what the library applied
	out, err := ns.Command(cipvsadm, "-Sn").Output()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), "\n"); n != w.Requests() {
		t.Fatalf("ipvsadm -Sn after Apply: %d lines, want %d", n, w.Requests())
	}
	c, err := ipvs.NewInNamespace(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestVMBenchmark times 2,000 services x 5 destinations applied and dumped
// by Debian's ipvsadm (-R, -Ln) and by the library (Apply, Services +
// Destinations), each run in a fresh namespace (a flushed namespace keeps
// its destinations in the kernel's trash for minutes, which slows the next
// adds there), alternating who goes first over several rounds, and
// compares the best time of each. It prints the times and the ratios.
func TestVMBenchmark(t *testing.T) {
	if out, err := exec.Command("modprobe", "-a", "ip_vs", "ip_vs_wlc").CombinedOutput(); err != nil {
		t.Fatalf("modprobe: %v\n%s", err, out)
	}
	w := New(2000, 5)
	restore := t.TempDir() + "/rules"
	if err := os.WriteFile(restore, []byte(w.Restore()), 0o644); err != nil {
		t.Fatal(err)
	}
	const rounds = 3
	var cs, gs []result
	// A deleted namespace's IPVS state (the destinations flushed into
	// the kernel's trash) is freed asynchronously; let it settle so it
	// does not compete with the next run.
	settle := func() { time.Sleep(3 * time.Second) }
	for r := range rounds {
		settle()
		if r%2 == 0 {
			cs = append(cs, runC(t, w, fmt.Sprintf("c%d", r), restore))
			settle()
			gs = append(gs, runGo(t, w, fmt.Sprintf("go%d", r)))
		} else {
			gs = append(gs, runGo(t, w, fmt.Sprintf("go%d", r)))
			settle()
			cs = append(cs, runC(t, w, fmt.Sprintf("c%d", r), restore))
		}
		fmt.Printf("BENCH round %d: ipvsadm -R %.3fs -Ln %.3fs | ipvs Apply %.3fs dump %.3fs\n", r,
			cs[r].apply.Seconds(), cs[r].dump.Seconds(), gs[r].apply.Seconds(), gs[r].dump.Seconds())
	}
	best := func(rs []result) result {
		b := rs[0]
		for _, r := range rs[1:] {
			b.apply = min(b.apply, r.apply)
			b.dump = min(b.dump, r.dump)
		}
		return b
	}
	bc, bg := best(cs), best(gs)
	ra, rd := bc.apply.Seconds()/bg.apply.Seconds(), bc.dump.Seconds()/bg.dump.Seconds()
	fmt.Printf("BENCH kernel=%s modules=%s workload=2000x5 (%d requests), best of %d\n", os.Getenv("RIG_KERNEL"), os.Getenv("RIG_MODULES"), w.Requests(), rounds)
	verdict := func(ratio, target float64) string {
		if ratio >= target {
			return "meets"
		}
		return "BELOW"
	}
	fmt.Printf("BENCH apply: ipvsadm -R %.3fs  ipvs.Apply %.3fs  ratio %.1fx (%s the %.0fx target)\n",
		bc.apply.Seconds(), bg.apply.Seconds(), ra, verdict(ra, applyBar), applyBar)
	fmt.Printf("BENCH dump:  ipvsadm -Ln %.3fs  ipvs dump %.3fs  ratio %.1fx (%s the %.0fx target)\n",
		bc.dump.Seconds(), bg.dump.Seconds(), rd, verdict(rd, dumpBar), dumpBar)
}

const ouripvsadm = "/opt/fullnat/bin/ipvsadm"

// toolResult is one measured run of an ipvsadm binary.
type toolResult struct {
	restore, list, save time.Duration
	// listUser and listSys split -Ln's CPU time: the program's own work
	// (parsing, formatting) and the kernel's (building the dumps, which
	// netlink does in the reader's recvmsg, and the syscalls).
	listUser, listSys time.Duration
}

// listReps is how often runTool lists the table.
const listReps = 5

// runTool restores rules with bin in a fresh namespace (with the local
// addresses on lo), lists the table with -Ln (the best of listReps),
// checks that it holds lines rules, then removes the namespace.
func runTool(t *testing.T, bin, name, rules string, lines int) toolResult {
	ns := vmnet.Add(t, name)
	defer func() { _ = exec.Command(vmnet.IP, "netns", "del", name).Run() }()
	for _, la := range LocalAddrs {
		ns.Run(t, vmnet.IP, "addr", "add", la.String()+"/32", "dev", "lo")
	}
	var r toolResult
	r.restore = timeIt(t, bin+" -R", func() error {
		out, err := ns.Command("/bin/sh", "-c", bin+" -R < "+rules).CombinedOutput()
		if err != nil || len(out) != 0 {
			return fmt.Errorf("%v\n%s", err, out)
		}
		return nil
	})
	// A listing is short (a quarter of a second for ours) next to the
	// jitter of a TCG VM on a shared host: the best of listReps.
	for i := range listReps {
		var user, sys time.Duration
		d := timeIt(t, bin+" -Ln", func() error {
			cmd := ns.Command("/bin/sh", "-c", bin+" -Ln > /dev/null")
			if err := cmd.Run(); err != nil {
				return err
			}
			// the shell's usage includes the ipvsadm it waited for
			user, sys = cmd.ProcessState.UserTime(), cmd.ProcessState.SystemTime()
			return nil
		})
		if i == 0 || d < r.list {
			r.list, r.listUser, r.listSys = d, user, sys
		}
	}
	r.save = timeIt(t, bin+" -Sn", func() error {
		return ns.Command("/bin/sh", "-c", bin+" -Sn > /dev/null").Run()
	})
	out, err := ns.Command(ouripvsadm, "-Sn").Output()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), "\n"); n != lines {
		t.Fatalf("%s -R: ipvsadm -Sn has %d lines, want %d", bin, n, lines)
	}
	return r
}

// TestVMIpvsadm times our ipvsadm against Debian's C ipvsadm 1.31 on the
// 2,000 x 5 NAT table (-R and -Ln), and our -R of an Alibaba-style
// FULLNAT table (SYNPROXY services, FULLNAT real servers, local
// addresses; C's ipvsadm has none of these) per line against
// the NAT table's. Best of three rounds in fresh namespaces; prints the
// ratios (issue 14's targets: -Ln <= 0.25x C's time, FULLNAT restore per
// line <= 1.1x NAT's).
func TestVMIpvsadm(t *testing.T) {
	if os.Getenv("RIG_MODULES") != "ours" {
		t.Skip("the FULLNAT table needs our module")
	}
	if out, err := exec.Command("modprobe", "-a", "ip_vs", "ip_vs_wlc", "ip_vs_rr").CombinedOutput(); err != nil {
		t.Fatalf("modprobe: %v\n%s", err, out)
	}
	w := New(2000, 5)
	dir := t.TempDir()
	nat, fnat := dir+"/nat", dir+"/fullnat"
	if err := os.WriteFile(nat, []byte(w.Restore()), 0o644); err != nil {
		t.Fatal(err)
	}
	fr := w.FullNATRestore()
	if err := os.WriteFile(fnat, []byte(fr), 0o644); err != nil {
		t.Fatal(err)
	}
	natLines := strings.Count(w.Restore(), "\n")
	fLines := strings.Count(fr, "\n")
	settle := func() { time.Sleep(3 * time.Second) }
	var c, g, f []toolResult
	for r := range 3 {
		settle()
		if r%2 == 0 {
			c = append(c, runTool(t, cipvsadm, fmt.Sprintf("c%d", r), nat, natLines))
			settle()
			g = append(g, runTool(t, ouripvsadm, fmt.Sprintf("g%d", r), nat, natLines))
		} else {
			g = append(g, runTool(t, ouripvsadm, fmt.Sprintf("g%d", r), nat, natLines))
			settle()
			c = append(c, runTool(t, cipvsadm, fmt.Sprintf("c%d", r), nat, natLines))
		}
		settle()
		f = append(f, runTool(t, ouripvsadm, fmt.Sprintf("f%d", r), fnat, fLines))
		fmt.Printf("BENCH ipvsadm round %d: C -R %.3fs -Ln %.3fs -Sn %.3fs | ours -R %.3fs -Ln %.3fs -Sn %.3fs | ours FULLNAT -R %.3fs -Ln %.3fs -Sn %.3fs\n", r,
			c[r].restore.Seconds(), c[r].list.Seconds(), c[r].save.Seconds(), g[r].restore.Seconds(), g[r].list.Seconds(), g[r].save.Seconds(),
			f[r].restore.Seconds(), f[r].list.Seconds(), f[r].save.Seconds())
	}
	best := func(rs []toolResult) toolResult {
		b := rs[0]
		for _, r := range rs[1:] {
			b.restore = min(b.restore, r.restore)
			if r.list < b.list {
				b.list, b.listUser, b.listSys = r.list, r.listUser, r.listSys
			}
			b.save = min(b.save, r.save)
		}
		return b
	}
	bc, bg, bf := best(c), best(g), best(f)
	fmt.Printf("BENCH ipvsadm kernel=%s modules=%s NAT table 2000x5 (%d lines), FULLNAT table (%d lines), best of 3 rounds (-Ln: of %d listings in each)\n",
		os.Getenv("RIG_KERNEL"), os.Getenv("RIG_MODULES"), natLines, fLines, listReps)
	fmt.Printf("BENCH ipvsadm -R:  C %.3fs  ours %.3fs  ours/C %.2f\n", bc.restore.Seconds(), bg.restore.Seconds(), bg.restore.Seconds()/bc.restore.Seconds())
	fmt.Printf("BENCH ipvsadm -Ln: C %.3fs  ours %.3fs  ours/C %.2f (target <= 0.25)\n", bc.list.Seconds(), bg.list.Seconds(), bg.list.Seconds()/bc.list.Seconds())
	fmt.Printf("BENCH ipvsadm -Ln CPU (the best run): C user %.3fs sys %.3fs | ours user %.3fs sys %.3fs | ours FULLNAT user %.3fs sys %.3fs\n",
		bc.listUser.Seconds(), bc.listSys.Seconds(), bg.listUser.Seconds(), bg.listSys.Seconds(), bf.listUser.Seconds(), bf.listSys.Seconds())
	fmt.Printf("BENCH ipvsadm -Sn: C %.3fs  ours %.3fs  ours/C %.2f | ours FULLNAT table %.3fs (%d lines)\n", bc.save.Seconds(), bg.save.Seconds(),
		bg.save.Seconds()/bc.save.Seconds(), bf.save.Seconds(), fLines)
	// What every run pays whatever the table: the program's start, the
	// family lookup, GET_INFO and an empty listing.
	fixed := func(bin string) time.Duration {
		ns := vmnet.Add(t, "empty")
		defer func() { _ = exec.Command(vmnet.IP, "netns", "del", "empty").Run() }()
		best := time.Hour
		for range 5 {
			best = min(best, timeIt(t, bin+" -Ln (empty)", func() error {
				return ns.Command("/bin/sh", "-c", bin+" -Ln > /dev/null").Run()
			}))
		}
		return best
	}
	fc, fg := fixed(cipvsadm), fixed(ouripvsadm)
	fmt.Printf("BENCH ipvsadm -Ln of an empty table (start, family, GET_INFO, dump; best of 5): C %.3fs  ours %.3fs | 2000x5 less that: C %.3fs  ours %.3fs  ours/C %.2f\n",
		fc.Seconds(), fg.Seconds(), (bc.list - fc).Seconds(), (bg.list - fg).Seconds(), (bg.list-fg).Seconds()/(bc.list-fc).Seconds())
	perNAT := bg.restore.Seconds() / float64(natLines)
	perF := bf.restore.Seconds() / float64(fLines)
	fmt.Printf("BENCH ipvsadm -R per line: NAT %.1fus  FULLNAT %.1fus  FULLNAT/NAT %.2f (target <= 1.1)\n", perNAT*1e6, perF*1e6, perF/perNAT)
	for _, r := range []struct {
		name string
		t    toolResult
		n    int
	}{{"c-nat", bc, natLines}, {"ours-nat", bg, natLines}, {"ours-fullnat", bf, fLines}} {
		benchdata.Print(benchdata.Record{Suite: "ipvsadm", Name: r.name, Values: map[string]float64{
			"restore_s": r.t.restore.Seconds(), "list_s": r.t.list.Seconds(), "save_s": r.t.save.Seconds(), "lines": float64(r.n),
			"list_user_s": r.t.listUser.Seconds(), "list_sys_s": r.t.listSys.Seconds()}})
	}
}

// TestVMIpvsadmProfile profiles -Ln of the 2,000 x 5 NAT table, by C's
// ipvsadm and ours, with perf (a software clock under TCG: the shares
// are relative costs, not cycles). It prints where each program's time
// goes, the kernel's part (building the dumps) included, by binary and
// by function, so that the -Ln ratio can be read against its parts.
func TestVMIpvsadmProfile(t *testing.T) {
	if os.Getenv("RIG_MODULES") != "ours" {
		t.Skip("profiled on our module, as TestVMIpvsadm measures")
	}
	if _, err := os.Stat(perfreport.Bin); err != nil {
		t.Fatalf("%v: this package's vmtest.conf (perf=1) has rig/vm.sh put perf in the VM", err)
	}
	if out, err := exec.Command("modprobe", "-a", "ip_vs", "ip_vs_wlc", "ip_vs_rr").CombinedOutput(); err != nil {
		t.Fatalf("modprobe: %v\n%s", err, out)
	}
	w := New(2000, 5)
	dir := t.TempDir()
	nat := dir + "/nat"
	if err := os.WriteFile(nat, []byte(w.Restore()), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := vmnet.Add(t, "prof")
	defer func() { _ = exec.Command(vmnet.IP, "netns", "del", "prof").Run() }()
	if out, err := ns.Command("/bin/sh", "-c", ouripvsadm+" -R < "+nat).CombinedOutput(); err != nil {
		t.Fatalf("ipvsadm -R: %v\n%s", err, out)
	}
	for _, bin := range []string{cipvsadm, ouripvsadm} {
		data := dir + "/perf-" + strings.ReplaceAll(bin, "/", "_")
		// Three listings in one profile, for more samples.
		rec := ns.Command(perfreport.Bin, "record", "-q", "-N", "-g", "-e", "cpu-clock", "-F", "4000", "-o", data,
			"--", "/bin/sh", "-c", strings.Repeat(bin+" -Ln > /dev/null; ", 3))
		if out, err := rec.CombinedOutput(); err != nil {
			t.Fatalf("perf record %s: %v\n%s", bin, err, out)
		}
		prof, err := perfreport.Read(data, perfreport.Comm(bin))
		if err != nil {
			t.Fatal(err)
		}
		// Where the time goes: the kernel against the program and each of
		// its libraries; then by function with what it calls (Go and the
		// kernel keep frame pointers; C's libraries do not, so theirs stay
		// flat).
		fmt.Printf("BENCH perf %s -Ln by binary: %s\n", bin, prof.ByBinary())
		for _, l := range prof.Lines {
			if l.Cum >= 2 {
				fmt.Printf("BENCH perf %s -Ln with callees: %s\n", bin, l.Text)
			}
		}
		kernel := prof.Binaries["kernel"]
		vals := map[string]float64{"kernel_pct": kernel}
		var line []string
		for _, pt := range profileParts {
			if v := prof.Sum(pt.syms...); v > 0 {
				vals[pt.key] = v
				line = append(line, fmt.Sprintf("%s %.1f%%", pt.key, v))
			}
		}
		fmt.Printf("BENCH profile %s -Ln: kernel_pct %.1f%% | %s\n", bin, kernel, strings.Join(line, " | "))
		benchdata.Print(benchdata.Record{Suite: "profile", Name: map[string]string{cipvsadm: "c-ln", ouripvsadm: "ours-ln"}[bin], Values: vals})
	}
}

// profileParts are the parts of -Ln that TestVMIpvsadmProfile reports, as
// shares of the program's samples with what each part calls. A name
// ending in * sums the functions it begins (alternatives, never nested).
// internal/benchreport names them in the report.
var profileParts = []struct {
	key  string
	syms []string
}{
	{"dump_pct", []string{"netlink_dump"}},                                     // the kernel builds the dumps
	{"stats_pct", []string{"ip_vs_genl_fill_stats*"}},                          // of which the counters
	{"copy_pct", []string{"skb_copy_datagram_iter"}},                           // the kernel copies them out
	{"fault_pct", []string{"do_huge_pmd_anonymous_page", "do_anonymous_page"}}, // fresh memory faulted in, zeroed
	{"socket_pct", []string{"__sys_socket", "__x64_sys_close"}},                // sockets opened, closed
	{"decode_pct", []string{"github.com/fullnat/fullnat/ipvs.(*Client).tableOnce"}},
	{"print_pct", []string{"main.(*tool).printServiceEntry"}},
	{"sort_pct", []string{"main.msortRec*"}},
	{"malloc_pct", []string{"runtime.mallocgc"}},
	{"runtime_threads_pct", []string{"runtime.mstart1"}}, // sysmon, GC workers
}
