// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package main

import (
	"flag"
	"os"
	"testing"
)

// diffParallel is how many corpus sequences TestDifferential plays at once
// unless -test.parallel says otherwise (its default is GOMAXPROCS, the
// VM's two CPUs): a sequence runs one ipvsadm at a time, and with only two
// the CPUs idle while processes start, wait and end.
const diffParallel = "4"

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		if err := flag.Set("test.parallel", diffParallel); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
