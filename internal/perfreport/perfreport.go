// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package perfreport reads what Linux's perf reports about a recording, for
// the benchmarks that profile in the rig's VM (rig/vm.sh --perf puts perf
// there). Under TCG perf counts with a software clock, so its shares are
// relative costs, not cycles.
package perfreport

import (
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
)

// Bin is perf's path in the VM.
const Bin = "/usr/bin/perf"

// Profile is one recording's report: each function's share of the
// samples with what it calls (perf report --children), in percent.
type Profile struct {
	// Cum maps a function (kernel or program) to its share with callees.
	Cum map[string]float64
	// Lines are the report's lines, most expensive first.
	Lines []Line
	// Binaries sums the shares of the functions themselves (no callees)
	// by binary, the kernel's as "kernel".
	Binaries map[string]float64
}

// Line is one function's line of the report.
type Line struct {
	Cum  float64 // share with callees, percent
	Text string  // as perf prints it
}

// Read reports the recording in file data: of the samples of command
// comm when comm is not empty (shares relative to them), else of all.
func Read(data, comm string) (*Profile, error) {
	base := []string{"report", "-i", data, "--stdio", "-g", "none"}
	if comm != "" {
		base = append(base, "--percentage", "relative", "--comm", comm)
	}
	report := func(args ...string) (string, error) {
		out, err := exec.Command(Bin, append(append([]string{}, base...), args...)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("perf report %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	p := &Profile{Cum: map[string]float64{}, Binaries: map[string]float64{}}
	out, err := report("--children", "--sort", "sym")
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(out, "\n") {
		// "  12.50%     0.20%  [k] netlink_dump"
		f := strings.Fields(l)
		if len(f) < 4 || !strings.HasSuffix(f[0], "%") || strings.HasPrefix(f[3], "0x") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		p.Cum[strings.Join(f[3:], " ")] = v
		p.Lines = append(p.Lines, Line{v, strings.TrimSpace(l)})
	}
	if out, err = report("--no-children", "--sort", "dso,sym"); err != nil {
		return nil, err
	}
	for _, l := range strings.Split(out, "\n") {
		// "  12.50%  libc.so.6  [.] memcpy"
		f := strings.Fields(l)
		if len(f) < 3 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		name := f[1]
		if f[2] == "[k]" {
			name = "kernel"
		}
		p.Binaries[name] += v
	}
	return p, nil
}

// Sum is the share of the functions syms with their callees. A name
// ending in * stands for every function it begins; the functions must
// not call one another, or their shares count twice.
func (p *Profile) Sum(syms ...string) float64 {
	var v float64
	for _, sym := range syms {
		if pre, ok := strings.CutSuffix(sym, "*"); ok {
			for k, c := range p.Cum {
				if strings.HasPrefix(k, pre) {
					v += c
				}
			}
			continue
		}
		v += p.Cum[sym]
	}
	return v
}

// ByBinary lists the binaries' own shares of at least 0.5%, largest first
// ("kernel 41.0%, ipvsadm 58.9%").
func (p *Profile) ByBinary() string {
	names := make([]string, 0, len(p.Binaries))
	for n := range p.Binaries {
		if p.Binaries[n] >= 0.5 {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool { return p.Binaries[names[i]] > p.Binaries[names[j]] })
	b := make([]string, len(names))
	for i, n := range names {
		b[i] = fmt.Sprintf("%s %.1f%%", n, p.Binaries[n])
	}
	return strings.Join(b, ", ")
}

// Comm is the command name the kernel gives a process running the
// program at path (its first 15 bytes), as perf report --comm takes it.
func Comm(path string) string {
	b := path[strings.LastIndexByte(path, '/')+1:]
	return b[:min(len(b), 15)]
}
