// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package benchdata carries the benchmarks' numbers from the VM to the report: each benchmark
// prints, beside its sentences for people, one record line per measured setup,
//
//	BENCHDATA kernel=6.12 suite=dataplane name=ours-FULLNAT cps=640 get=24.5 ...
//
// and `make bench` reads them back from the rig's output (cmd/benchreport).
package benchdata

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Prefix starts every record line.
const Prefix = "BENCHDATA "

// Record is one measured setup of one suite on one kernel.
type Record struct {
	Kernel, Suite, Name string
	// Values are the numbers, by key (a unit in the key's name: get_mbps, list_s).
	Values map[string]float64
}

// Print writes r as a record line to stdout; Kernel defaults to the rig's $RIG_KERNEL.
func Print(r Record) {
	fmt.Println(Format(r))
}

// Format is r's record line, keys sorted. A kernel, suite or name must not contain spaces or
// '='.
func Format(r Record) string {
	if r.Kernel == "" {
		r.Kernel = os.Getenv("RIG_KERNEL")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%skernel=%s suite=%s name=%s", Prefix, r.Kernel, r.Suite, r.Name)
	keys := make([]string, 0, len(r.Values))
	for k := range r.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, strconv.FormatFloat(r.Values[k], 'g', 6, 64))
	}
	return b.String()
}

// Parse reads the record lines of r (anywhere in a line: the rig may prefix the VM's output),
// skipping every other line. A malformed record is an error naming its line.
func Parse(r io.Reader) ([]Record, error) {
	var out []Record
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; s.Scan(); n++ {
		_, rest, ok := strings.Cut(s.Text(), Prefix)
		if !ok {
			continue
		}
		rec := Record{Values: map[string]float64{}}
		for _, f := range strings.Fields(rest) {
			k, v, ok := strings.Cut(f, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("benchdata: line %d: field %q is not key=value", n, f)
			}
			switch k {
			case "kernel":
				rec.Kernel = v
			case "suite":
				rec.Suite = v
			case "name":
				rec.Name = v
			default:
				x, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return nil, fmt.Errorf("benchdata: line %d: %s: %w", n, k, err)
				}
				rec.Values[k] = x
			}
		}
		if rec.Kernel == "" || rec.Suite == "" || rec.Name == "" {
			return nil, fmt.Errorf("benchdata: line %d: a record needs kernel, suite and name", n)
		}
		out = append(out, rec)
	}
	return out, s.Err()
}
