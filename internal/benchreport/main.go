// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Command benchreport turns the output of `make bench` (the rig's log, with the benchmarks'
// BENCHDATA records, internal/benchdata) into a report a person reads: report.md, with every
// number, its ratio and the targets per kernel, and chart.svg, the ratios against
// their targets.
//
//	go run ./internal/benchreport -o out/bench out/bench/log
package main

import (
	"flag"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fullnat/fullnat/internal/benchdata"
)

func main() {
	out := flag.String("o", "out/bench", "directory for report.md and chart.svg")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: benchreport [-o DIR] LOG")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *out); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(log, dir string) error {
	f, err := os.Open(log)
	if err != nil {
		return err
	}
	defer f.Close()
	recs, err := benchdata.Parse(f)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return fmt.Errorf("%s has no BENCHDATA record: did the benchmarks run?", log)
	}
	r := build(recs)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var md, svg strings.Builder
	r.markdown(&md, log)
	r.chart(&svg)
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "chart.svg"), []byte(svg.String()), 0o644); err != nil {
		return err
	}
	fmt.Printf("benchreport: %s and %s (%d records, kernels %s)\n", filepath.Join(dir, "report.md"),
		filepath.Join(dir, "chart.svg"), len(recs), strings.Join(r.kernels, ", "))
	return nil
}

// check is one of the targets on one kernel.
type check struct {
	what         string  // "FULLNAT/NAT bulk, get"
	ratio, limit float64 // measured ratio and its target
	atMost       bool    // the ratio must be at most limit (else at least)
	missing      bool    // a number it needs was not measured
}

func (c check) met() bool {
	if c.missing {
		return false
	}
	if c.atMost {
		return c.ratio <= c.limit
	}
	return c.ratio >= c.limit
}

func (c check) target() string {
	if c.atMost {
		return fmt.Sprintf("<= %.2f", c.limit)
	}
	return fmt.Sprintf(">= %.2f", c.limit)
}

// report is the records by kernel, suite and name.
type report struct {
	kernels []string
	by      map[string]map[string]map[string]map[string]float64 // kernel, suite, name -> values
}

func build(recs []benchdata.Record) *report {
	r := &report{by: map[string]map[string]map[string]map[string]float64{}}
	for _, rec := range recs {
		if r.by[rec.Kernel] == nil {
			r.by[rec.Kernel] = map[string]map[string]map[string]float64{}
			r.kernels = append(r.kernels, rec.Kernel)
		}
		if r.by[rec.Kernel][rec.Suite] == nil {
			r.by[rec.Kernel][rec.Suite] = map[string]map[string]float64{}
		}
		r.by[rec.Kernel][rec.Suite][rec.Name] = rec.Values // a later run of the same setup wins
	}
	slices.Sort(r.kernels)
	return r
}

// value is one number, and whether it was measured.
func (r *report) value(kernel, suite, name, key string) (float64, bool) {
	v, ok := r.by[kernel][suite][name][key]
	return v, ok
}

// ratio is a/b of two measured numbers.
func (r *report) ratio(kernel, suite, a, b, key string) (float64, bool) {
	x, ok1 := r.value(kernel, suite, a, key)
	y, ok2 := r.value(kernel, suite, b, key)
	if !ok1 || !ok2 || y == 0 {
		return 0, false
	}
	return x / y, true
}

// checks are the targets, measured on kernel.
func (r *report) checks(kernel string) []check {
	var cs []check
	add := func(what string, ratio float64, ok bool, limit float64, atMost bool) {
		cs = append(cs, check{what: what, ratio: ratio, limit: limit, atMost: atMost, missing: !ok})
	}
	for _, m := range []struct{ key, what string }{{"get_mbps", "bulk, get"}, {"put_mbps", "bulk, put"}, {"cps", "connections/s"}} {
		x, ok := r.ratio(kernel, "dataplane", "ours-FULLNAT", "stock-NAT", m.key)
		add("FULLNAT/NAT "+m.what, x, ok, 0.95, false)
	}
	for _, m := range []struct{ key, what string }{{"get_mbps", "bulk, get"}, {"put_mbps", "bulk, put"}, {"cps", "connections/s"}, {"pps", "small packets/s"}} {
		x, ok := r.ratio(kernel, "dataplane", "ours-NAT", "stock-NAT", m.key)
		add("our NAT/stock NAT "+m.what, x, ok, 0.98, false)
	}
	x, ok := r.ratio(kernel, "memory", "ours-FULLNAT", "stock-NAT", "bytes_per_conn")
	add("FULLNAT memory per connection / stock NAT's", x, ok, 1.2, true)
	x, ok = r.ratio(kernel, "ipvsadm", "ours-nat", "c-nat", "list_s")
	add("ipvsadm -Ln 2000x5, ours/C", x, ok, 0.25, true)
	fl, ok1 := r.value(kernel, "ipvsadm", "ours-fullnat", "restore_s")
	fn, ok2 := r.value(kernel, "ipvsadm", "ours-fullnat", "lines")
	nl, ok3 := r.value(kernel, "ipvsadm", "ours-nat", "restore_s")
	nn, ok4 := r.value(kernel, "ipvsadm", "ours-nat", "lines")
	ok = ok1 && ok2 && ok3 && ok4 && fn > 0 && nn > 0 && nl > 0
	x = 0
	if ok {
		x = (fl / fn) / (nl / nn)
	}
	add("ipvsadm -R per line, FULLNAT table/NAT table", x, ok, 1.1, true)
	return cs
}

// setups are the suite's names in the order the tables show them.
func (r *report) setups(kernel, suite string, order []string) []string {
	var names []string
	for _, n := range order {
		if _, ok := r.by[kernel][suite][n]; ok {
			names = append(names, n)
		}
	}
	var rest []string
	for n := range r.by[kernel][suite] {
		if !slices.Contains(order, n) {
			rest = append(rest, n)
		}
	}
	slices.Sort(rest)
	return append(names, rest...)
}

var dataplaneOrder = []string{"stock-NAT", "ours-NAT", "ours-FULLNAT", "ours-FULLNAT+PP", "ours-FULLNAT+SYNPROXY", "ours-FULLNAT+SYNPROXY+WS"}

func (r *report) markdown(w io.Writer, log string) {
	fmt.Fprintf(w, "# Benchmark report\n\n")
	fmt.Fprintf(w, "Made by `make bench` on %s from `%s`: each kernel's numbers come from VMs of one run under QEMU (TCG on the rig), ", time.Now().UTC().Format("2006-01-02 15:04 UTC"), log)
	fmt.Fprintf(w, "the stock module and ours measured in the same VM, Debian's C ipvsadm 1.31 beside ours. Ratios are ours over the stock one; the chart is `chart.svg`.\n\n")
	for _, k := range r.kernels {
		fmt.Fprintf(w, "## Linux %s\n\n### Targets\n\n| target | goal | measured | met |\n|---|---|---|---|\n", k)
		for _, c := range r.checks(k) {
			switch {
			case c.missing:
				fmt.Fprintf(w, "| %s | not measured | | no |\n", c.what)
			default:
				met := "no"
				if c.met() {
					met = "yes"
				}
				fmt.Fprintf(w, "| %s | %s | %.3f | %s |\n", c.what, c.target(), c.ratio, met)
			}
		}
		if names := r.setups(k, "dataplane", dataplaneOrder); len(names) > 0 {
			fmt.Fprintf(w, "\n### Data plane (best of 3 rounds; ratio to stock NAT)\n\n| setup | connections/s | bulk get MB/s | bulk put MB/s | small packets/s | CPU µs per small packet |\n|---|---|---|---|---|---|\n")
			for _, n := range names {
				fmt.Fprintf(w, "| %s", n)
				for _, key := range []string{"cps", "get_mbps", "put_mbps", "pps", "pkt_cpu_us"} {
					v, _ := r.value(k, "dataplane", n, key)
					x, ok := r.ratio(k, "dataplane", n, "stock-NAT", key)
					if v == 0 || !ok {
						fmt.Fprintf(w, " | %s", num(v))
						continue
					}
					fmt.Fprintf(w, " | %s (%.2f)", num(v), x)
				}
				fmt.Fprintln(w, " |")
			}
			fmt.Fprintf(w, "\nCPU µs per small packet: the VM's busy CPU time (client, director and real servers) per packet of the small-packet runs, the least of the rounds; lower is better. Time the VM waits for the host lowers packets/s but not this; a slow spell of the host, which slows the emulated CPUs, raises both.\n")
			if slices.Contains(names, "ours-FULLNAT+SYNPROXY+WS") {
				fmt.Fprintf(w, "\n`+WS`: the director's `synproxy_wscale` set to 7. With its default, 0 (as in Alibaba's LVS), the SYN-ACK offers no window scaling, so a SYNPROXY connection has at most 64 KB in flight.\n")
			}
		}
		if names := r.setups(k, "memory", []string{"stock-NAT", "ours-NAT", "ours-FULLNAT", "ours-FULLNAT+SYNPROXY"}); len(names) > 0 {
			fmt.Fprintf(w, "\n### Memory per connection (slab growth at a million connections)\n\n| setup | bytes | ratio to stock NAT |\n|---|---|---|\n")
			for _, n := range names {
				v, _ := r.value(k, "memory", n, "bytes_per_conn")
				x, _ := r.ratio(k, "memory", n, "stock-NAT", "bytes_per_conn")
				fmt.Fprintf(w, "| %s | %.0f | %.2f |\n", n, v, x)
			}
		}
		if names := r.setups(k, "ipvsadm", []string{"c-nat", "ours-nat", "ours-fullnat"}); len(names) > 0 {
			fmt.Fprintf(w, "\n### Control plane (best of 3 rounds, -Ln of 15 listings; C is Debian's ipvsadm 1.31)\n\n| run | lines | -R s | -Ln s | -Sn s |\n|---|---|---|---|---|\n")
			for _, n := range names {
				v := r.by[k]["ipvsadm"][n]
				fmt.Fprintf(w, "| %s | %.0f | %.3f | %.3f | %.3f |\n", n, v["lines"], v["restore_s"], v["list_s"], v["save_s"])
			}
		}
		if names := r.setups(k, "profile", []string{"c-ln", "ours-ln"}); len(names) > 0 {
			fmt.Fprintf(w, "\n### Where -Ln's time goes (perf in the VM; %% of each program's samples, with what a part calls)\n\n| part |")
			for _, n := range names {
				fmt.Fprintf(w, " %s |", n)
			}
			fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---|", len(names)))
			for _, p := range profileParts {
				fmt.Fprintf(w, "| %s |", p.what)
				for _, n := range names {
					if v, ok := r.value(k, "profile", n, p.key); ok {
						fmt.Fprintf(w, " %.1f |", v)
					} else {
						fmt.Fprintf(w, " - |")
					}
				}
				fmt.Fprintln(w)
			}
		}
		fmt.Fprintln(w)
	}
}

// profileParts name the parts of TestVMIpvsadmProfile's records (suite
// profile), in its order.
var profileParts = []struct{ key, what string }{
	{"kernel_pct", "in the kernel (all)"},
	{"dump_pct", "the kernel builds the dumps"},
	{"stats_pct", "of which the counters"},
	{"copy_pct", "the kernel copies them to the program"},
	{"fault_pct", "the kernel faults in and zeroes fresh memory"},
	{"socket_pct", "sockets opened and closed"},
	{"decode_pct", "the library reads and decodes the table"},
	{"print_pct", "ipvsadm prints"},
	{"sort_pct", "ipvsadm sorts"},
	{"malloc_pct", "Go allocates"},
	{"runtime_threads_pct", "Go's own threads (sysmon, GC)"},
}

// num prints a measured number with the precision it deserves.
func num(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

// chart draws, per kernel, each target's measured ratio as a bar, with the target as a mark.
func (r *report) chart(w io.Writer) {
	const left, barW, rowH, top = 330, 360, 22, 40
	scale := func(x float64) float64 { return min(x, 2) / 2 * barW }
	rows := 0
	for _, k := range r.kernels {
		rows += len(r.checks(k)) + 2
	}
	height := top + rows*rowH + 20
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", left+barW+90, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="10" y="20" font-size="15" font-weight="bold">Ratios against the targets (bar: measured, mark: target; green: met, red: not)</text>`+"\n")
	y := top
	for _, k := range r.kernels {
		fmt.Fprintf(w, `<text x="10" y="%d" font-weight="bold">Linux %s</text>`+"\n", y+14, html.EscapeString(k))
		y += rowH
		for _, c := range r.checks(k) {
			fmt.Fprintf(w, `<text x="10" y="%d">%s (%s)</text>`+"\n", y+14, html.EscapeString(c.what), html.EscapeString(c.target()))
			if c.missing {
				fmt.Fprintf(w, `<text x="%d" y="%d" fill="gray">not measured</text>`+"\n", left, y+14)
			} else {
				color := "#c0392b"
				if c.met() {
					color = "#27ae60"
				}
				fmt.Fprintf(w, `<rect x="%d" y="%d" width="%.1f" height="14" fill="%s"/>`+"\n", left, y+3, scale(c.ratio), color)
				fmt.Fprintf(w, `<text x="%.1f" y="%d">%.2f</text>`+"\n", float64(left)+scale(c.ratio)+4, y+14, c.ratio)
			}
			tx := float64(left) + scale(c.limit)
			fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black" stroke-width="2"/>`+"\n", tx, y, tx, y+rowH)
			y += rowH
		}
		y += rowH
	}
	fmt.Fprintln(w, "</svg>")
}
