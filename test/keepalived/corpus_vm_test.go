//go:build vmtest

package keepalived

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const corpus = "../../testdata/keepalived"

// TestCorpusBad: every configuration in testdata/keepalived/bad is refused by `keepalived -t` of
// each build (non-zero exit) with the line in its .err file, which names the problem and, for
// what the parser sees, the file and line.
func TestCorpusBad(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join(corpus, "bad"))
	if err != nil {
		t.Fatal(err)
	}
	confs, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	if len(confs) < 10 {
		t.Fatalf("want the bad corpus in %s, found %d files", dir, len(confs))
	}
	forEachBuild(t, func(t *testing.T, k build) {
		for _, conf := range confs {
			name := filepath.Base(conf)
			want, err := os.ReadFile(strings.TrimSuffix(conf, ".conf") + ".err")
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			cmd := exec.Command(k.bin, "-t", "-f", name)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Errorf("%s: keepalived -t accepted it:\n%s", name, out)
				continue
			}
			line := strings.TrimSpace(string(want))
			found := false
			for _, l := range strings.Split(string(out), "\n") {
				found = found || l == line
			}
			if !found {
				t.Errorf("%s: keepalived -t (%v) did not say\n  %s\nit said:\n%s", name, err, line, out)
			}
		}
	})
}

// tableSize is the connection table's size in `ipvsadm -Ln`'s first line: the kernel's, not what
// keepalived built (7.x tables start at 256 entries and grow, 6.x ones have 4096).
var tableSize = regexp.MustCompile(`\(size=\d+\)`)

// TestCorpusGood: every configuration in testdata/keepalived/good passes `keepalived -t`, and each
// build builds exactly the table pinned in its .table file (`ipvsadm -Ln`, `-G` and `-Sn`: FullNat
// real servers with their weights, synproxy, the ESTABLISHED timeout, the local addresses of every
// service, virtual server group members included). Debian's keepalived refuses the files that use
// the new words (run anyway, it makes NAT services without local addresses or SYNPROXY:
// TestHealthCheckFullNAT shows that); the file without them (stock.conf) gives the same table with
// Debian's keepalived and ours (checked once, with the first build).
func TestCorpusGood(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join(corpus, "good"))
	if err != nil {
		t.Fatal(err)
	}
	confs, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	if len(confs) < 3 {
		t.Fatalf("want the good corpus in %s, found %d files", dir, len(confs))
	}
	forEachBuild(t, func(t *testing.T, k build) {
		tp := director(t, 2)
		d := tp.Director
		for _, conf := range confs {
			name := filepath.Base(conf)
			stockWords := name == "stock.conf"
			wantFile, err := os.ReadFile(strings.TrimSuffix(conf, ".conf") + ".table")
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			want := tableSize.ReplaceAllString(string(wantFile), "(size=N)")
			if out, err := d.Command(k.bin, "-t", "-f", conf).CombinedOutput(); err != nil {
				t.Errorf("%s: keepalived -t: %v\n%s", name, err, out)
			}

			// Debian's keepalived: once, with the first build.
			bins := []string{k.bin}
			if k.first() {
				out, err := d.Command(stockKeepalived, "-t", "-f", conf).CombinedOutput()
				if stockWords && err != nil {
					t.Errorf("%s: Debian's keepalived -t: %v\n%s", name, err, out)
				}
				if !stockWords && err == nil {
					t.Errorf("%s: Debian's keepalived -t accepts it: the file does not need our patches", name)
				}
				if stockWords {
					bins = append(bins, stockKeepalived)
				}
			}
			for _, bin := range bins {
				kd := startKeepalived(t, d, bin, conf)
				var got string
				deadline := time.Now().Add(20 * time.Second)
				for {
					got = tableSize.ReplaceAllString(table(d), "(size=N)")
					if got == want || time.Now().After(deadline) {
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				kd.stop()
				if _, err := d.Try(ipvsadm, "-C"); err != nil {
					t.Fatalf("ipvsadm -C: %v", err)
				}
				switch {
				case bin == k.bin && got != want:
					t.Errorf("%s: keepalived %s built\n%s\nwant (%s.table)\n%s\nlog:\n%s", name, k.version, got,
						strings.TrimSuffix(name, ".conf"), want, kd.logs.String())
				case bin == stockKeepalived && got != want:
					t.Errorf("%s: Debian's keepalived built\n%s\nwant the same as ours\n%s", name, got, want)
				}
			}
		}
	})
}
