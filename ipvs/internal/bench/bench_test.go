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
}
