// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"strings"
	"testing"
)

func TestWorkload(t *testing.T) {
	w := New(2000, 5)
	if w.Requests() != 12000 {
		t.Errorf("Requests() = %d, want 12000", w.Requests())
	}
	if b := w.Batch(); b.Len() != 12000 {
		t.Errorf("Batch().Len() = %d", b.Len())
	}
	r := w.Restore()
	if n := strings.Count(r, "\n"); n != 12000 {
		t.Errorf("restore file has %d lines", n)
	}
	lines := strings.SplitN(r, "\n", 3)
	if lines[0] != "-A -t 198.18.0.0:80 -s wlc" || lines[1] != "-a -t 198.18.0.0:80 -r 198.19.0.0:8000 -m -w 1" {
		t.Errorf("restore starts %q", lines[:2])
	}
	seen := map[string]bool{}
	for _, s := range w.Services {
		if seen[s.String()] {
			t.Fatalf("duplicate service %v", s)
		}
		seen[s.String()] = true
	}
	f := w.FullNATRestore()
	if n := strings.Count(f, "\n"); n != 2000*(1+5+len(LocalAddrs)) {
		t.Errorf("FULLNAT restore file has %d lines", n)
	}
	lines = strings.SplitN(f, "\n", 10)
	if lines[0] != "-A -t 198.18.0.0:80 -s wlc -j enable -V 600" || lines[1] != "-a -t 198.18.0.0:80 -r 198.19.0.0:8000 -b -w 1" ||
		lines[6] != "-P -t 198.18.0.0:80 -z 198.18.255.1" || lines[8] != "-A -t 198.18.0.1:80 -s wlc -j enable -V 600" {
		t.Errorf("FULLNAT restore starts %q", lines[:9])
	}
}
