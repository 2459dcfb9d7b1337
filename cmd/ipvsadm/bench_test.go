// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fullnat/fullnat/ipvs/ipvstest"
)

func benchRules() string {
	var b strings.Builder
	for i := 0; i < 2000; i++ {
		vip := fmt.Sprintf("198.18.%d.%d:80", i/250, 1+i%250)
		fmt.Fprintf(&b, "-A -t %s -s wrr\n", vip)
		for j := 0; j < 5; j++ {
			fmt.Fprintf(&b, "-a -t %s -r 198.19.%d.%d:8080 -m -w %d\n", vip, j, 1+i%250, 1+j)
		}
	}
	return b.String()
}

// BenchmarkRestoreParse measures -R's own work (parsing and checking
// 12,000 lines) against a backend that accepts everything.
func BenchmarkRestoreParse(b *testing.B) {
	rules := benchRules()
	for i := 0; i < b.N; i++ {
		r := &fakeRig{k: newFakeKernel()}
		if _, stderr, code := r.run([]string{"-R"}, rules); code != 0 {
			b.Fatalf("restore: %d %s", code, stderr)
		}
	}
}

// BenchmarkList measures -Ln's own work (formatting 2,000 services and
// 10,000 real servers) against a backend that holds them in memory.
func BenchmarkList(b *testing.B) {
	r := &fakeRig{k: newFakeKernel()}
	if _, stderr, code := r.run([]string{"-R"}, benchRules()); code != 0 {
		b.Fatalf("restore: %d %s", code, stderr)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out, stderr, code := r.run([]string{"-Ln"}, ""); code != 0 || len(out) < 12000*40 {
			b.Fatalf("list: %d %s (%d bytes)", code, stderr, len(out))
		}
	}
}

// BenchmarkListKernel measures -Ln through the library backend (kernel.go:
// the table dump, its decoding, the conversion and the formatting) on
// ipvstest holding 2,000 services and 10,000 real servers. ipvstest's own
// work (building the replies) is part of the time: profile with
// -cpuprofile and leave out package ipvstest to see ours.
func BenchmarkListKernel(b *testing.B) {
	k := ipvstest.New(ipvstest.Options{})
	e := env{
		open: func() (backend, error) {
			c, err := k.Client()
			return &kernel{c: c}, err
		},
		res:      &resolver{hostsPath: filepath.Join(testdataDir, "hosts"), servicesPath: filepath.Join(testdataDir, "services")},
		connPath: filepath.Join(b.TempDir(), "ip_vs_conn"),
	}
	var o, eb bytes.Buffer
	if code := run([]string{"ipvsadm", "-R"}, strings.NewReader(benchRules()), &o, &eb, e); code != 0 {
		b.Fatalf("restore: %d %s", code, eb.String())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		o.Reset()
		if code := run([]string{"ipvsadm", "-Ln"}, strings.NewReader(""), &o, &eb, e); code != 0 || o.Len() < 12000*40 {
			b.Fatalf("list: %d %s (%d bytes)", code, eb.String(), o.Len())
		}
	}
}
