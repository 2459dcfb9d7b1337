// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package vmnet

import (
	"strconv"
	"strings"
	"testing"
)

// ExtStats reads our module's /proc/net/ip_vs_ext_stats in ns (a header line, then
// "name: value per CPU" lines) and sums each counter over the CPUs. It fails the test on a
// value that is not a number, and when the file has no counter at all.
func ExtStats(t testing.TB, ns NS) map[string]uint64 {
	t.Helper()
	const file = "/proc/net/ip_vs_ext_stats"
	m := map[string]uint64{}
	for _, line := range strings.Split(ns.Run(t, "/bin/cat", file), "\n")[1:] {
		name, vals, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var sum uint64
		for _, v := range strings.Fields(vals) {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("%s in %s: bad value %q in %q", file, ns, v, line)
			}
			sum += n
		}
		m[strings.TrimSpace(name)] = sum
	}
	if len(m) == 0 {
		t.Fatalf("%s in %s has no counters", file, ns)
	}
	return m
}
