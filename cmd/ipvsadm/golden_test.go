// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts with the current output (not the pinned ones)")

// pinMark in a transcript's header comment pins it: its expected output was written and checked
// by hand (Alibaba's options do not exist in ipvsadm 1.31, so no reference binary can produce
// it), and -update must not regenerate it from the code it tests.
const pinMark = "# pinned:"

// pinned reports whether a transcript carries pinMark.
func pinned(data string) bool {
	for _, l := range strings.Split(data, "\n") {
		if !strings.HasPrefix(l, "#") {
			return false
		}
		if strings.HasPrefix(l, pinMark) {
			return true
		}
	}
	return false
}

const testdataDir = "../../testdata/ipvsadm"

// A transcript is a sequence of commands and their expected results:
//
//	# comment
//	% directive for the fake kernel (features, stats, counters, proc lines)
//	$ ipvsadm ARGS          a command (shell-like quoting)
//	< stdin line            input of the command above
//	> stdout line           expected output, byte for byte
//	! stderr line
//	? exit status           (absent = 0)
type step struct {
	isCmd     bool
	directive string
	args      []string
	stdin     []string
	stdout    []string
	stderr    []string
	exit      int
}

func splitShell(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	in := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote = c
			in = true
		case c == ' ' || c == '\t':
			if in {
				args = append(args, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if in {
		args = append(args, cur.String())
	}
	return args, nil
}

func parseTranscript(data string) ([]step, error) {
	var steps []step
	for n, line := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		tag, rest := line[0], ""
		if len(line) > 2 {
			rest = line[2:]
		}
		var cur *step
		if len(steps) > 0 {
			cur = &steps[len(steps)-1]
		}
		switch tag {
		case '%':
			steps = append(steps, step{directive: rest})
		case '$':
			args, err := splitShell(rest)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n+1, err)
			}
			if len(args) == 0 || args[0] != "ipvsadm" {
				return nil, fmt.Errorf("line %d: command must start with ipvsadm", n+1)
			}
			steps = append(steps, step{isCmd: true, args: args[1:]})
		case '<', '>', '!', '?':
			if cur == nil || !cur.isCmd {
				return nil, fmt.Errorf("line %d: result without a command", n+1)
			}
			switch tag {
			case '<':
				cur.stdin = append(cur.stdin, rest)
			case '>':
				cur.stdout = append(cur.stdout, rest)
			case '!':
				cur.stderr = append(cur.stderr, rest)
			case '?':
				v, err := strconv.Atoi(rest)
				if err != nil {
					return nil, fmt.Errorf("line %d: %w", n+1, err)
				}
				cur.exit = v
			}
		default:
			return nil, fmt.Errorf("line %d: unknown line %q", n+1, line)
		}
	}
	return steps, nil
}

func quoteArg(a string) string {
	if a == "" || strings.ContainsAny(a, " \t'\"") {
		return "'" + a + "'"
	}
	return a
}

func formatTranscript(comments []string, steps []step) string {
	var b strings.Builder
	for _, c := range comments {
		b.WriteString(c + "\n")
	}
	for _, s := range steps {
		if !s.isCmd {
			b.WriteString("% " + s.directive + "\n")
			continue
		}
		q := []string{"$ ipvsadm"}
		for _, a := range s.args {
			q = append(q, quoteArg(a))
		}
		b.WriteString(strings.Join(q, " ") + "\n")
		for _, l := range s.stdin {
			b.WriteString("< " + l + "\n")
		}
		for _, l := range s.stdout {
			b.WriteString("> " + l + "\n")
		}
		for _, l := range s.stderr {
			b.WriteString("! " + l + "\n")
		}
		if s.exit != 0 {
			fmt.Fprintf(&b, "? %d\n", s.exit)
		}
	}
	return b.String()
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// fakeRig runs commands against one fake kernel.
type fakeRig struct {
	k        *fakeKernel
	connPath string
	// noIPVS makes opening IPVS fail, as on a kernel without it.
	noIPVS bool
}

func newFakeRig(t *testing.T) *fakeRig {
	return &fakeRig{k: newFakeKernel(), connPath: filepath.Join(t.TempDir(), "ip_vs_conn")}
}

func (r *fakeRig) env() env {
	return env{
		open: func() (backend, error) {
			if r.noIPVS {
				return nil, fmt.Errorf("open: %w", os.ErrNotExist)
			}
			return r.k, nil
		},
		res: &resolver{hostsPath: filepath.Join(testdataDir, "hosts"),
			servicesPath: filepath.Join(testdataDir, "services")},
		connPath: r.connPath,
	}
}

func (r *fakeRig) run(args []string, stdin string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = run(append([]string{"ipvsadm"}, args...), strings.NewReader(stdin), &o, &e, r.env())
	return o.String(), e.String(), code
}

func parseSvcKey(r *fakeRig, kind, addr string) (service, error) {
	var ce entry
	var opts uint64
	var format uint
	stdout, stderr := new(bytes.Buffer), new(bytes.Buffer)
	var err error
	func() {
		defer func() {
			if x := recover(); x != nil {
				err = fmt.Errorf("bad service %s %s: %s", kind, addr, stderr)
			}
		}()
		tl := &tool{res: r.env().res, stderr: stderr}
		_ = stdout
		tl.parseOptions([]string{"ipvsadm", "-L", kind, addr}, &ce, &opts, &format)
	}()
	return ce.svc, err
}

func parseUints(fs []string) ([]uint64, error) {
	var v []uint64
	for _, f := range fs {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, err
		}
		v = append(v, n)
	}
	return v, nil
}

func statsOf(v []uint64) stats {
	for len(v) < 10 {
		v = append(v, 0)
	}
	return stats{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]}
}

// directive applies a "% ..." line to the fake kernel.
func (r *fakeRig) directive(d string) error {
	f := strings.Fields(d)
	if len(f) == 0 {
		return fmt.Errorf("empty directive")
	}
	switch f[0] {
	case "noipvs":
		r.noIPVS = true
		return nil
	case "features":
		v, err := strconv.ParseUint(f[1], 0, 32)
		r.k.inf.Features = uint32(v)
		return err
	case "proc":
		fh, err := os.OpenFile(r.connPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer fh.Close()
		_, err = fh.WriteString(strings.TrimPrefix(d, "proc ") + "\n")
		return err
	case "svcstats", "deststats", "conns", "laddrstats":
		key, err := parseSvcKey(r, f[1], f[2])
		if err != nil {
			return err
		}
		s := r.k.find(key)
		if s == nil {
			return fmt.Errorf("no service %s %s", f[1], f[2])
		}
		if f[0] == "svcstats" {
			v, err := parseUints(f[3:])
			s.s.Stats = statsOf(v)
			return err
		}
		for i := range s.dests {
			d := &s.dests[i]
			name := addrString(d.AF, d.Addr) + ":" + strconv.Itoa(int(d.Port))
			if d.AF == afInet6 {
				name = "[" + addrString(d.AF, d.Addr) + "]:" + strconv.Itoa(int(d.Port))
			}
			if f[0] == "laddrstats" || name != f[3] {
				continue
			}
			v, err := parseUints(f[4:])
			if err != nil {
				return err
			}
			if f[0] == "deststats" {
				d.Stats = statsOf(v)
			} else {
				d.Active, d.Inactive, d.Persist = uint32(v[0]), uint32(v[1]), uint32(v[2])
			}
			return nil
		}
		if f[0] == "laddrstats" {
			for i := range s.laddrs {
				if s.laddrs[i].Addr == netip.MustParseAddr(f[3]) {
					v, err := parseUints(f[4:])
					if err != nil {
						return err
					}
					s.laddrs[i].PortConflicts, s.laddrs[i].Conns = v[0], uint32(v[1])
					return nil
				}
			}
		}
		return fmt.Errorf("no destination %s", f[3])
	}
	return fmt.Errorf("unknown directive %q", f[0])
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdataDir, "golden", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			steps, err := parseTranscript(string(data))
			if err != nil {
				t.Fatal(err)
			}
			var comments []string
			for _, l := range strings.Split(string(data), "\n") {
				if strings.HasPrefix(l, "#") {
					comments = append(comments, l)
				} else {
					break
				}
			}
			rewrite := *update && !pinned(string(data))
			if *update && !rewrite {
				t.Logf("%s is pinned by hand: checked, not rewritten", filepath.Base(file))
			}
			r := newFakeRig(t)
			for i := range steps {
				s := &steps[i]
				if !s.isCmd {
					if err := r.directive(s.directive); err != nil {
						t.Fatalf("%% %s: %v", s.directive, err)
					}
					continue
				}
				stdin := ""
				if len(s.stdin) > 0 {
					stdin = strings.Join(s.stdin, "\n") + "\n"
				}
				stdout, stderr, code := r.run(s.args, stdin)
				if rewrite {
					s.stdout, s.stderr, s.exit = splitLines(stdout), splitLines(stderr), code
					continue
				}
				want := step{stdout: s.stdout, stderr: s.stderr, exit: s.exit}
				got := step{stdout: splitLines(stdout), stderr: splitLines(stderr), exit: code}
				if w, g := formatTranscript(nil, []step{{isCmd: true, stdout: want.stdout, stderr: want.stderr, exit: want.exit}}),
					formatTranscript(nil, []step{{isCmd: true, stdout: got.stdout, stderr: got.stderr, exit: got.exit}}); w != g {
					t.Errorf("$ ipvsadm %s\n--- want\n%s--- got\n%s", strings.Join(s.args, " "), w, g)
				}
			}
			if rewrite {
				if err := os.WriteFile(file, []byte(formatTranscript(comments, steps)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestExtensionPinned: the transcripts of the options only Alibaba's ipvsadm has are pinned by
// hand, so that -update cannot rewrite them from the code under test.
func TestExtensionPinned(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdataDir, "golden", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		steps, err := parseTranscript(string(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			if s.isCmd && usesExtension(s.args) && !pinned(string(data)) {
				t.Errorf("%s uses an extension option (ipvsadm %s) and is not pinned (%q in its header)",
					filepath.Base(file), strings.Join(s.args, " "), pinMark)
				break
			}
		}
	}
	if !usesExtension([]string{"-a", "-t", "192.0.2.1:80", "-r", "198.51.100.1", "-bw", "3"}) ||
		usesExtension([]string{"-A", "-t", "192.0.2.1:80", "-s", "sh", "-b", "sh-port"}) ||
		!usesExtension([]string{"-G"}) || !usesExtension([]string{"-A", "-t", "192.0.2.1:80", "--synproxy", "enable"}) ||
		!usesExtension([]string{"-E", "-t", "192.0.2.1:80", "--proxy-protocol=v2"}) {
		t.Errorf("usesExtension misreads a command")
	}
	if pinned("# a\n$ ipvsadm -L\n# pinned: no\n") || !pinned("# a\n# pinned: yes\n$ ipvsadm -L\n") {
		t.Errorf("pinned reads the header wrongly")
	}
}

// usesExtension reports whether an ipvsadm command line has an option only Alibaba's ipvsadm
// knows: -P, -Q, -G, -z, -j, -V (and their long names), or -b (--fullnat) with -a or -e, where
// 1.31's -b (--sched-flags) belongs to -A and -E; or one of ours (--proxy-protocol, --help-ext).
func usesExtension(args []string) bool {
	server := false
	for _, a := range args {
		switch a {
		case "-a", "-e", "--add-server", "--edit-server":
			server = true
		}
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--") {
			switch strings.SplitN(a[2:], "=", 2)[0] {
			case "fullnat", "synproxy", "add-laddr", "del-laddr", "get-laddr", "laddr", "vsestablish-timeout", "help-ext",
				"proxy-protocol":
				return true
			}
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		// A cluster of short options: the first one taking a value ends it, so look at
		// the letters up to one of those.
		for _, c := range a[1:] {
			if strings.ContainsRune("PQGzjV", c) || (c == 'b' && server) {
				return true
			}
			if strings.ContainsRune("tufsMrwxyp", c) {
				break
			}
		}
	}
	return false
}

// TestCorpusOnFake plays the differential corpus against the fake kernel. The comparison with
// Debian's ipvsadm runs in the VM (diff_vm_test.go); here every command must run without a crash
// and keep two rules ipvsadm 1.31 keeps (see the golden transcripts): it exits with 0, 1, 2 or
// 255, and it says why on stderr exactly when it fails, except -R, which goes on after a failed
// line and exits with the status of the last one.
func TestCorpusOnFake(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdataDir, "corpus", "*.txt"))
	if err != nil || len(files) < 100 {
		t.Fatalf("corpus has %d sequences (need >= 100): %v", len(files), err)
	}
	var failed, ok int
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		steps, err := parseTranscript(string(data))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		r := newFakeRig(t)
		for _, s := range steps {
			if !s.isCmd {
				t.Fatalf("%s: directive in a corpus sequence", file)
			}
			stdin := ""
			if len(s.stdin) > 0 {
				stdin = strings.Join(s.stdin, "\n") + "\n"
			}
			_, stderr, code := r.run(s.args, stdin)
			if err := exitRule(s.args, stderr, code); err != nil {
				t.Errorf("%s: ipvsadm %s: %v", filepath.Base(file), strings.Join(s.args, " "), err)
			}
			if code == 0 {
				ok++
			} else {
				failed++
			}
		}
	}
	t.Logf("corpus on the fake: %d commands succeeded, %d failed", ok, failed)
	// The corpus exercises both outcomes (a corpus that only failed would pass the rule).
	if ok < 100 || failed < 100 {
		t.Errorf("corpus on the fake: %d commands succeeded, %d failed; want >= 100 of each", ok, failed)
	}
}

// exitRule checks ipvsadm 1.31's exit codes and its stderr: an error message exactly when the
// command fails, -R excepted (see TestCorpusOnFake).
func exitRule(args []string, stderr string, code int) error {
	switch code {
	case 0, 1, 2, 255:
	default:
		return fmt.Errorf("exit %d: ipvsadm exits with 0, 1, 2 or 255", code)
	}
	restore := false
	for _, a := range args {
		if a == "-R" || a == "--restore" {
			restore = true
		}
	}
	switch {
	case code != 0 && stderr == "":
		return fmt.Errorf("exit %d without a message on stderr", code)
	case code == 0 && stderr != "" && !restore:
		return fmt.Errorf("exit 0 with %q on stderr", stderr)
	}
	return nil
}

// TestExitRuleOnGolden: the rule TestCorpusOnFake applies holds for every command of the golden
// transcripts, and it rejects what breaks it.
func TestExitRuleOnGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdataDir, "golden", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden transcripts: %v", err)
	}
	n := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		steps, err := parseTranscript(string(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			if !s.isCmd {
				continue
			}
			stderr := ""
			if len(s.stderr) > 0 {
				stderr = strings.Join(s.stderr, "\n") + "\n"
			}
			if err := exitRule(s.args, stderr, s.exit); err != nil {
				t.Errorf("%s: ipvsadm %s: %v", filepath.Base(file), strings.Join(s.args, " "), err)
			}
			n++
		}
	}
	if n < 100 {
		t.Errorf("only %d golden commands", n)
	}
	for _, c := range []struct {
		args   []string
		stderr string
		code   int
	}{{[]string{"-L"}, "", 3}, {[]string{"-A", "-t", "x"}, "", 2}, {[]string{"-Ln"}, "oops\n", 0}, {[]string{"-R"}, "", 255}} {
		if exitRule(c.args, c.stderr, c.code) == nil {
			t.Errorf("exitRule accepts ipvsadm %v with stderr %q and exit %d", c.args, c.stderr, c.code)
		}
	}
}

// onlyBackend hides the optional interfaces (batcher, tableLister) of a
// backend.
type onlyBackend struct{ backend }

// TestListingPathsAgree lists a table through the one-go table listing and
// through ipvsadm's request order, and requires the same output.
func TestListingPathsAgree(t *testing.T) {
	r := newFakeRig(t)
	for _, c := range []string{"-A -t 192.0.2.1:80 -s rr", "-a -t 192.0.2.1:80 -r 198.51.100.9 -m",
		"-a -t 192.0.2.1:80 -r 198.51.100.1 -m", "-A -f 3000000000", "-A -u [2001:db8::1]:53",
		"-a -u [2001:db8::1]:53 -r [2001:db8::3]:53 -m", "-A -t 192.0.2.0:80"} {
		if _, stderr, code := r.run(strings.Fields(c), ""); code != 0 {
			t.Fatalf("%s: %s", c, stderr)
		}
	}
	for _, args := range [][]string{{"-Ln"}, {"-S", "-n"}, {"-L"}, {"-Ln", "--nosort"}, {"-Ln", "--stats"}} {
		want, _, _ := r.run(args, "")
		var o, e bytes.Buffer
		env := r.env()
		env.open = func() (backend, error) { return onlyBackend{r.k}, nil }
		if code := run(append([]string{"ipvsadm"}, args...), strings.NewReader(""), &o, &e, env); code != 0 || o.String() != want {
			t.Errorf("ipvsadm %v: one-go listing and request order differ (%d)\n--- one go\n%s--- in order\n%s", args, code, want, o.String())
		}
	}
}
