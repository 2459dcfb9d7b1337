//go:build vmtest

package keepalived

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const corpus = "../../testdata/keepalived"

// TestCorpusBad: every configuration in testdata/keepalived/bad is refused by `keepalived -t`
// (non-zero exit) with the line in its .err file, which names the problem and, for what the
// parser sees, the file and line.
func TestCorpusBad(t *testing.T) {
	if _, err := os.Stat(ourKeepalived); err != nil {
		t.Fatalf("our keepalived is not in the VM (make keepalived): %v", err)
	}
	dir, err := filepath.Abs(filepath.Join(corpus, "bad"))
	if err != nil {
		t.Fatal(err)
	}
	confs, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	if len(confs) < 10 {
		t.Fatalf("want the bad corpus in %s, found %d files", dir, len(confs))
	}
	for _, conf := range confs {
		name := filepath.Base(conf)
		want, err := os.ReadFile(strings.TrimSuffix(conf, ".conf") + ".err")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cmd := exec.Command(ourKeepalived, "-t", "-f", name)
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
}

// TestCorpusGood: every configuration in testdata/keepalived/good passes `keepalived -t`, and
// keepalived builds exactly the table pinned in its .table file (`ipvsadm -Ln`, `-G` and `-Sn`:
// FullNat real servers with their weights, synproxy, the ESTABLISHED timeout, the local addresses
// of every service, virtual server group members included). Debian's keepalived refuses the
// files that use the new words (run anyway, it makes NAT services without local addresses or
// SYNPROXY: TestHealthCheckFullNAT shows that); the file without them (stock.conf) gives the
// same table with Debian's keepalived and ours.
func TestCorpusGood(t *testing.T) {
	tp := director(t, 2)
	d := tp.Director
	dir, err := filepath.Abs(filepath.Join(corpus, "good"))
	if err != nil {
		t.Fatal(err)
	}
	confs, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	if len(confs) < 3 {
		t.Fatalf("want the good corpus in %s, found %d files", dir, len(confs))
	}
	for _, conf := range confs {
		name := filepath.Base(conf)
		stockWords := name == "stock.conf"
		want, err := os.ReadFile(strings.TrimSuffix(conf, ".conf") + ".table")
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if out, err := d.Command(ourKeepalived, "-t", "-f", conf).CombinedOutput(); err != nil {
			t.Errorf("%s: keepalived -t: %v\n%s", name, err, out)
		}
		out, err := d.Command(stockKeepalived, "-t", "-f", conf).CombinedOutput()
		if stockWords && err != nil {
			t.Errorf("%s: Debian's keepalived -t: %v\n%s", name, err, out)
		}
		if !stockWords && err == nil {
			t.Errorf("%s: Debian's keepalived -t accepts it: the file does not need our patches", name)
		}

		bins := []string{ourKeepalived}
		if stockWords {
			bins = append(bins, stockKeepalived)
		}
		for _, bin := range bins {
			k := startKeepalived(t, d, bin, conf)
			var got string
			deadline := time.Now().Add(20 * time.Second)
			for {
				got = table(d)
				if got == string(want) || time.Now().After(deadline) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			k.stop()
			if _, err := d.Try(ipvsadm, "-C"); err != nil {
				t.Fatalf("ipvsadm -C: %v", err)
			}
			switch {
			case bin == ourKeepalived && got != string(want):
				t.Errorf("%s: keepalived built\n%s\nwant (%s.table)\n%s\nlog:\n%s", name, got,
					strings.TrimSuffix(name, ".conf"), want, k.logs.String())
			case bin == stockKeepalived && got != string(want):
				t.Errorf("%s: Debian's keepalived built\n%s\nwant the same as ours\n%s", name, got, want)
			}
		}
	}
}
