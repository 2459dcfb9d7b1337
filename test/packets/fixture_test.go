// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package packets

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestFixturesParse: every fixture in testdata/packets parses on the host, so a typo fails in
// `make unit` rather than in the VM.
func TestFixturesParse(t *testing.T) {
	files, err := filepath.Glob("../../testdata/packets/*.pkt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures (%v)", err)
	}
	for _, f := range files {
		steps, err := parseFixture(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		expects := 0
		for _, s := range steps {
			if s.verb == "expect" {
				expects++
			}
		}
		if expects == 0 {
			t.Errorf("%s: no expect step; a fixture that expects nothing cannot fail", filepath.Base(f))
		}
	}
}

func TestParseStepErrors(t *testing.T) {
	for text, want := range map[string]string{
		"bogus client":                       "unknown step",
		"send client":                        "want send NODE",
		"expect rs1 sideways tcp4 a:1 > b:2": "want expect NODE in|out",
		"expect rs1 in tcp4 192.0.2.1:1 > 192.0.2.2:2 ttl=1": "tos missing",
		"quiet rs1 in soon":                            "invalid duration",
		"send router tcp4 192.0.2.1:1 > 192.0.2.2:2":   "not client, director or rs1",
		"send director tcp4 192.0.2.1:1 > 192.0.2.2:2": "captured on client and rs1",
		"sleep": "want sleep DURATION",
		"send client tcp4 192.0.2.1:1 > 192.0.2.2:2 color=red": "no field",
	} {
		_, err := parseSteps("x.pkt", strings.NewReader("# comment\n\n"+text+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "x.pkt:3") {
			t.Errorf("%q: %v, want an error at x.pkt:3 with %q", text, err, want)
		}
	}
	steps, err := parseSteps("ok.pkt", strings.NewReader("run director ipvsadm -C # flush\nsleep 10ms\n"))
	if err != nil || len(steps) != 2 || steps[0].arg != "ipvsadm -C" || steps[1].dur.Milliseconds() != 10 {
		t.Errorf("good steps: %+v %v", steps, err)
	}
}
