// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Command golden writes the IPVS golden wire fixtures that TestVMGolden
// (ipvs/vm_test.go) prints in the rig's VM. It reads a VM test log on
// stdin and writes every "IPVS-GOLDEN <kernel> <file> <base64>" line to
// <dir>/<kernel>/<file>.
//
//	rig/vmtest.sh --modules stock --run TestVMGolden ./ipvs > log
//	go run ./ipvs/internal/golden -dir testdata/ipvs < log
package main

import (
	"bufio"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	dir := flag.String("dir", "testdata/ipvs", "fixture directory")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "golden:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<24)
	n := 0
	for sc.Scan() {
		i := strings.Index(sc.Text(), "IPVS-GOLDEN ")
		if i < 0 {
			continue
		}
		f := strings.Fields(sc.Text()[i:])
		if len(f) != 4 || strings.ContainsAny(f[1]+f[2], "/\\") || strings.HasPrefix(f[2], ".") {
			return fmt.Errorf("malformed line %q", sc.Text())
		}
		b, err := base64.StdEncoding.DecodeString(f[3])
		if err != nil {
			return fmt.Errorf("%s/%s: %w", f[1], f[2], err)
		}
		if err := os.MkdirAll(filepath.Join(dir, f[1]), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f[1], f[2]), b, 0o644); err != nil {
			return err
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("no IPVS-GOLDEN lines on stdin")
	}
	fmt.Printf("golden: wrote %d fixtures under %s\n", n, dir)
	return nil
}
