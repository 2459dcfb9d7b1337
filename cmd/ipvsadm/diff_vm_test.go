// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	refIpvsadm = "/usr/sbin/ipvsadm"
	ourIpvsadm = "/opt/fullnat/bin/ipvsadm"
)

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// runBin runs one ipvsadm binary with argv[0] "ipvsadm", so that both
// print the same program name.
func runBin(t *testing.T, bin string, args []string, stdin string) result {
	t.Helper()
	return runBinAs(t, nil, bin, args, stdin)
}

// runBinAs is runBin with the given credentials (nil: the test's own).
func runBinAs(t *testing.T, cred *syscall.Credential, bin string, args []string, stdin string) result {
	t.Helper()
	cmd := &exec.Cmd{Path: bin, Args: append([]string{"ipvsadm"}, args...)}
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s %v: %v", bin, args, err)
		}
		code = ee.ExitCode()
	}
	return result{o.String(), e.String(), code}
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// resetIPVS brings IPVS to the clean state every sequence starts from.
func resetIPVS(t *testing.T) {
	t.Helper()
	mustRun(t, refIpvsadm, "-C")
	mustRun(t, refIpvsadm, "--set", "900", "120", "300")
	for _, st := range []string{"master", "backup"} {
		_ = exec.Command(refIpvsadm, "--stop-daemon", st).Run()
	}
}

// snapshot is the IPVS state as Debian's ipvsadm lists it.
func snapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{{"-Ln"}, {"-S", "-n"}, {"-Ln", "--stats"}, {"-L", "--timeout"}, {"-L", "--daemon"}} {
		r := runBin(t, refIpvsadm, args, "")
		if kernelOrder(args) {
			r.stdout = sortedLines(r.stdout)
		}
		fmt.Fprintf(&b, "## ipvsadm %s\n%s", strings.Join(args, " "), r)
	}
	return b.String()
}

// kernelOrder reports whether what ipvsadm prints with args depends on the order in which the
// kernel dumps services, and that order is not repeatable. --nosort and --save print the dump
// order; -L sorts it with libipvs's comparator, whose address difference overflows (it is not
// transitive: 192.0.2.1 against 0.0.48.57 and 127.0.0.1), so the result depends on the input
// order too, in 1.31 and in ours alike. Until 6.12 the order of a dump was fixed; from 7.x the
// service table of a namespace is made again after a flush with a new hash key and resized by a
// work item, so two runs of the same sequence dump in different orders. Then the lines are
// compared as a sorted multiset (the 6.x lines compare them in order).
func kernelOrder(args []string) bool {
	if strings.HasPrefix(os.Getenv("RIG_KERNEL"), "6.") {
		return false
	}
	for _, a := range args {
		switch {
		case a == "--nosort" || a == "--save" || a == "--list":
			return true
		case len(a) > 1 && a[0] == '-' && a[1] != '-' && strings.ContainsAny(a, "LlS"):
			return true
		}
	}
	return false
}

// sortedLines is s with its lines sorted.
func sortedLines(s string) string {
	lines := strings.SplitAfter(s, "\n")
	sort.Strings(lines)
	return strings.Join(lines, "")
}

func loadIPVS(t *testing.T) {
	t.Helper()
	for _, m := range []string{"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_sh", "ip_vs_mh", "ip_vs_pe_sip"} {
		mustRun(t, "/sbin/modprobe", m)
	}
}

func corpusFiles(t *testing.T) []string {
	files, err := filepath.Glob(filepath.Join(testdataDir, "corpus", "*.txt"))
	if err != nil || len(files) < 100 {
		t.Fatalf("corpus has %d sequences (need >= 100): %v", len(files), err)
	}
	return files
}

// TestDifferential runs every corpus sequence with Debian's ipvsadm 1.31
// and with ours from the same clean state, and requires the same stdout,
// stderr, exit status and resulting IPVS state.
func TestDifferential(t *testing.T) {
	loadIPVS(t)
	for _, file := range corpusFiles(t) {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			steps, err := parseTranscript(string(data))
			if err != nil {
				t.Fatal(err)
			}
			play := func(bin string) ([]result, string) {
				resetIPVS(t)
				var rs []result
				for _, s := range steps {
					if !s.isCmd {
						t.Fatalf("directive %q in a corpus sequence", s.directive)
					}
					stdin := ""
					if len(s.stdin) > 0 {
						stdin = strings.Join(s.stdin, "\n") + "\n"
					}
					rs = append(rs, runBin(t, bin, s.args, stdin))
				}
				return rs, snapshot(t)
			}
			want, wantState := play(refIpvsadm)
			got, gotState := play(ourIpvsadm)
			for i, s := range steps {
				if kernelOrder(s.args) {
					want[i].stdout, got[i].stdout = sortedLines(want[i].stdout), sortedLines(got[i].stdout)
				}
				if want[i] != got[i] {
					t.Errorf("$ ipvsadm %s\n=== 1.31:\n%s=== ours:\n%s", strings.Join(s.args, " "), want[i], got[i])
				}
			}
			if wantState != gotState {
				t.Errorf("state after the sequence differs\n=== 1.31:\n%s=== ours:\n%s", wantState, gotState)
			}
		})
	}
	resetIPVS(t)
}

// TestDifferentialUnprivileged runs commands as an unprivileged user
// (nobody) with both binaries against a configured table: same output,
// errors and exit codes, and the table is left as it was.
func TestDifferentialUnprivileged(t *testing.T) {
	loadIPVS(t)
	resetIPVS(t)
	defer resetIPVS(t)
	mustRun(t, refIpvsadm, "-A", "-t", "192.0.2.1:80", "-s", "wrr")
	mustRun(t, refIpvsadm, "-a", "-t", "192.0.2.1:80", "-r", "198.51.100.1:8080", "-m", "-w", "3")
	before := snapshot(t)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	cmds := []struct {
		args  []string
		stdin string
	}{
		{[]string{"-Ln"}, ""},
		{[]string{"-L"}, ""},
		{[]string{"-Ln", "--stats"}, ""},
		{[]string{"-Lnc"}, ""},
		{[]string{"-S", "-n"}, ""},
		{[]string{"-L", "--timeout"}, ""},
		{[]string{"-L", "--daemon"}, ""},
		{[]string{"-A", "-t", "192.0.2.2:80"}, ""},
		{[]string{"-E", "-t", "192.0.2.1:80", "-s", "rr"}, ""},
		{[]string{"-D", "-t", "192.0.2.1:80"}, ""},
		{[]string{"-a", "-t", "192.0.2.1:80", "-r", "198.51.100.2:8080", "-m"}, ""},
		{[]string{"-d", "-t", "192.0.2.1:80", "-r", "198.51.100.1:8080"}, ""},
		{[]string{"-C"}, ""},
		{[]string{"-Z"}, ""},
		{[]string{"--set", "1", "2", "3"}, ""},
		{[]string{"--start-daemon", "master"}, ""},
		{[]string{"-R"}, "-A -t 192.0.2.3:80\n"},
		{[]string{"-A", "-t", "bad:address"}, ""},
		{[]string{"-v"}, ""},
	}
	for _, c := range cmds {
		want := runBinAs(t, nobody, refIpvsadm, c.args, c.stdin)
		got := runBinAs(t, nobody, ourIpvsadm, c.args, c.stdin)
		if want != got {
			t.Errorf("as nobody: $ ipvsadm %s\n=== 1.31:\n%s=== ours:\n%s", strings.Join(c.args, " "), want, got)
		}
	}
	if after := snapshot(t); after != before {
		t.Errorf("unprivileged commands changed the table\n=== before:\n%s=== after:\n%s", before, after)
	}
}

// TestKernelRoundTrip saves a varied table with our -S, restores it with
// our -R after -C and requires the same state (listed by 1.31's ipvsadm,
// and by ours for the extension's settings on our module).
func TestKernelRoundTrip(t *testing.T) {
	loadIPVS(t)
	resetIPVS(t)
	ext := os.Getenv("RIG_MODULES") == "ours"
	if ext {
		for _, la := range roundTripLaddrs {
			if out, err := exec.Command("/usr/sbin/ip", "addr", "add", la+"/32", "dev", "lo").CombinedOutput(); err != nil {
				t.Fatalf("local address %s: %v\n%s", la, err, out)
			}
			t.Cleanup(func() { _ = exec.Command("/usr/sbin/ip", "addr", "del", la+"/32", "dev", "lo").Run() })
		}
	}
	for _, save := range [][]string{{"-S", "-n"}, {"-S"}} {
		resetIPVS(t)
		table := strings.Join(randomTable(newRand(), ext), "\n") + "\n"
		if r := runBin(t, ourIpvsadm, []string{"-R"}, table); r.code != 0 && !strings.Contains(r.stderr, "already exists") {
			t.Fatalf("building the table: %s", r)
		}
		before := snapshot(t)
		saved := runBin(t, ourIpvsadm, save, "")
		ourBefore := runBin(t, ourIpvsadm, []string{"-S", "-n"}, "")
		if saved.code != 0 || saved.stderr != "" || strings.Count(saved.stdout, "\n") < 40 {
			t.Fatalf("save: %s", saved)
		}
		mustRun(t, refIpvsadm, "-C")
		if r := runBin(t, ourIpvsadm, []string{"-R"}, saved.stdout); r.code != 0 || r.stderr != "" {
			t.Fatalf("restore: %s", r)
		}
		if after := snapshot(t); after != before {
			t.Errorf("%v | -R: state differs\n=== before:\n%s=== after:\n%s", save, before, after)
		}
		if ourAfter := runBin(t, ourIpvsadm, []string{"-S", "-n"}, ""); ourAfter != ourBefore {
			t.Errorf("%v | -R: our -S -n differs\n=== before:\n%s=== after:\n%s", save, ourBefore, ourAfter)
		}
	}
	resetIPVS(t)
}

// TestBenchmarkRestoreList times -R of 2,000 services x 5 destinations
// and -Ln of the result, Debian's ipvsadm against ours, and requires the
// same listing from both.
func TestBenchmarkRestoreList(t *testing.T) {
	loadIPVS(t)
	var b strings.Builder
	for i := 0; i < 2000; i++ {
		vip := fmt.Sprintf("198.18.%d.%d:80", i/250, 1+i%250)
		fmt.Fprintf(&b, "-A -t %s -s wrr\n", vip)
		for j := 0; j < 5; j++ {
			fmt.Fprintf(&b, "-a -t %s -r 198.19.%d.%d:8080 -m -w %d\n", vip, j, 1+i%250, 1+j)
		}
	}
	rules := b.String()
	timeRun := func(bin string, args []string, stdin string) (result, time.Duration) {
		start := time.Now()
		r := runBin(t, bin, args, stdin)
		return r, time.Since(start)
	}
	// Best of three rounds each, alternating, against the host's noise.
	var lists [2]result
	var tr, tl [2]time.Duration
	for round := 0; round < 3; round++ {
		for i, bin := range []string{refIpvsadm, ourIpvsadm} {
			resetIPVS(t)
			r, d := timeRun(bin, []string{"-R"}, rules)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("%s -R: %s", bin, r)
			}
			if round == 0 || d < tr[i] {
				tr[i] = d
			}
			l, d := timeRun(bin, []string{"-Ln"}, "")
			if n := strings.Count(l.stdout, "\n"); n != 3+2000*6 {
				t.Fatalf("%s -Ln printed %d lines", bin, n)
			}
			if round == 0 || d < tl[i] {
				tl[i] = d
			}
			lists[i] = l
		}
	}
	if lists[0] != lists[1] {
		t.Errorf("-Ln of the benchmark table differs between 1.31 and ours")
	}
	t.Logf("BENCH (best of 3) kernel=%s modules=%s restore 12000 rules: 1.31 %v, ours %v (%.1fx); -Ln: 1.31 %v, ours %v (%.1fx)",
		os.Getenv("RIG_KERNEL"), os.Getenv("RIG_MODULES"),
		tr[0].Round(time.Millisecond), tr[1].Round(time.Millisecond), float64(tr[0])/float64(tr[1]),
		tl[0].Round(time.Millisecond), tl[1].Round(time.Millisecond), float64(tl[0])/float64(tl[1]))
	resetIPVS(t)
}

// TestDifferentialSeesDifferences checks the harness itself: an option
// only ours knows must give different results from the two binaries.
func TestDifferentialSeesDifferences(t *testing.T) {
	loadIPVS(t)
	args := []string{"-L", "--line-numbers"}
	ref, ours := runBin(t, refIpvsadm, args, ""), runBin(t, ourIpvsadm, args, "")
	if ref == ours {
		t.Fatalf("1.31 and ours agree on an extension option: %s", ref)
	}
	if ref.stderr != "--line-numbers: unknown option\n" || ref.code != 255 {
		t.Errorf("1.31: %s", ref)
	}
}

// TestConnectionListing compares -c and the counters with live
// connections: a local client talks to a virtual service on 127.0.0.1.
// Timers tick between the runs, so ours must match 1.31's output from
// just before or just after it.
func TestConnectionListing(t *testing.T) {
	loadIPVS(t)
	resetIPVS(t)
	defer resetIPVS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c) }()
		}
	}()
	mustRun(t, refIpvsadm, "-A", "-t", "127.0.0.1:8080", "-s", "rr")
	mustRun(t, refIpvsadm, "-a", "-t", "127.0.0.1:8080", "-r", "127.0.0.1:8080", "-m")
	var conns []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.DialTimeout("tcp", "127.0.0.1:8080", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if r := runBin(t, refIpvsadm, []string{"-Lcn"}, ""); strings.Count(r.stdout, "\n") < 3 {
		t.Fatalf("no connection entries to compare:\n%s", r)
	}
	for _, args := range [][]string{{"-Lcn"}, {"-Lc"}, {"-L", "-c", "-n", "--persistent-conn"},
		{"-Ln", "--stats"}, {"-Ln", "--stats", "--exact"}, {"-Ln", "--rate"}, {"-L", "--stats"},
		{"-Ln", "--persistent-conn"}, {"-Ln", "--thresholds"}, {"-Ln"}} {
		before := runBin(t, refIpvsadm, args, "")
		ours := runBin(t, ourIpvsadm, args, "")
		after := runBin(t, refIpvsadm, args, "")
		if ours != before && ours != after {
			t.Errorf("ipvsadm %s\n=== 1.31:\n%s=== ours:\n%s", strings.Join(args, " "), before, ours)
		}
	}
	_ = conns
}
