// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleLog = `rig: 6.12 starting
BENCHDATA kernel=6.12 suite=dataplane name=stock-NAT cps=600 get_mbps=100 put_mbps=100 pps=10000 pkt_cpu_us=60
BENCHDATA kernel=6.12 suite=dataplane name=ours-NAT cps=600 get_mbps=99 put_mbps=97 pps=10000
BENCHDATA kernel=6.12 suite=dataplane name=ours-FULLNAT cps=580 get_mbps=96 put_mbps=90 pps=9000 pkt_cpu_us=66
BENCHDATA kernel=6.12 suite=memory name=stock-NAT bytes_per_conn=320 conns=1e+06
BENCHDATA kernel=6.12 suite=memory name=ours-FULLNAT bytes_per_conn=384 conns=1e+06
BENCHDATA kernel=6.12 suite=ipvsadm name=c-nat lines=12000 list_s=1 restore_s=3 save_s=1
BENCHDATA kernel=6.12 suite=ipvsadm name=ours-nat lines=12000 list_s=0.5 restore_s=1.2 save_s=0.5
BENCHDATA kernel=6.12 suite=ipvsadm name=ours-fullnat lines=16000 list_s=0.6 restore_s=1.28 save_s=0.6
BENCHDATA kernel=6.12 suite=profile name=c-ln kernel_pct=54.5 dump_pct=38.4 socket_pct=11.0
BENCHDATA kernel=6.12 suite=profile name=ours-ln kernel_pct=49.7 dump_pct=22.7 print_pct=23.5
BENCHDATA kernel=6.1 suite=memory name=stock-NAT bytes_per_conn=320 conns=1e+06
`

func TestReport(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	if err := os.WriteFile(log, []byte(sampleLog), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(log, dir); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"## Linux 6.1\n", "## Linux 6.12\n",
		"| FULLNAT/NAT bulk, get | >= 0.95 | 0.960 | yes |",
		"| FULLNAT/NAT bulk, put | >= 0.95 | 0.900 | no |",
		"| our NAT/stock NAT bulk, put | >= 0.98 | 0.970 | no |",
		"| FULLNAT memory per connection / stock NAT's | <= 1.20 | 1.200 | yes |",
		"| ipvsadm -Ln 2000x5, ours/C | <= 0.25 | 0.500 | no |",
		"| ipvsadm -R per line, FULLNAT table/NAT table | <= 1.10 | 0.800 | yes |",
		"| ours-FULLNAT | 580 (0.97) | 96.0 (0.96) | 90.0 (0.90) | 9000 (0.90) | 66.0 (1.10) |\n",
		// a setup that did not measure the CPU time per packet
		"| ours-NAT | 600 (1.00) | 99.0 (0.99) | 97.0 (0.97) | 10000 (1.00) | - |\n",
		// 6.1 measured its memory only
		"| FULLNAT/NAT connections/s | not measured | | no |",
		// the profile of -Ln, a part measured by one program only
		"| part | c-ln | ours-ln |",
		"| the kernel builds the dumps | 38.4 | 22.7 |",
		"| ipvsadm prints | - | 23.5 |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	svg, err := os.ReadFile(filepath.Join(dir, "chart.svg"))
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(strings.NewReader(string(svg)))
	for {
		if _, err := d.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("chart.svg is not well-formed: %v", err)
			}
			break
		}
	}
	if n := strings.Count(string(svg), "#27ae60"); n != 7 {
		t.Errorf("chart.svg has %d green bars, want 7 (the targets met)", n)
	}
}

func TestNoRecords(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	if err := os.WriteFile(log, []byte("rig: nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(log, dir); err == nil || !strings.Contains(err.Error(), "no BENCHDATA") {
		t.Fatalf("run = %v, want an error saying there is no record", err)
	}
}
