// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package dataplane

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/perfreport"
	"github.com/fullnat/fullnat/internal/vmnet"
)

// profileParts are the parts of the data path TestDataPlaneProfile reports, with what each
// calls: the director's (IPVS's hooks, its transmitters, the route lookups) and the rest of
// the path, for scale.
var profileParts = []struct {
	what string
	syms []string
}{
	{"IPVS, packets towards the real servers (ip_vs_in_hook)", []string{"ip_vs_in_hook"}},
	{"IPVS, replies (ip_vs_out_hook)", []string{"ip_vs_out_hook"}},
	{"IPVS, looking connections up (ip_vs_conn_in_get, ip_vs_conn_out_get)", []string{"ip_vs_conn_in_get", "ip_vs_conn_out_get"}},
	{"IPVS, NAT's transmitter (ip_vs_nat_xmit)", []string{"ip_vs_nat_xmit"}},
	{"IPVS, UDP's address and port rewriting (udp_dnat_handler, udp_snat_handler)", []string{"udp_dnat_handler", "udp_snat_handler"}},
	{"FULLNAT's route to a client or real server (ip_vs_fnat_get_out_rt)", []string{"ip_vs_fnat_get_out_rt"}},
	{"route lookups for output (ip_route_output_key_hash)", []string{"ip_route_output_key_hash"}},
	{"route lookups for input (ip_route_input_noref)", []string{"ip_route_input_noref"}},
	{"forwarding (ip_forward)", []string{"ip_forward"}},
	{"netfilter hooks (nf_hook_slow)", []string{"nf_hook_slow"}},
	{"TCP receive (tcp_v4_rcv)", []string{"tcp_v4_rcv"}},
	{"TCP send (tcp_sendmsg)", []string{"tcp_sendmsg"}},
	{"UDP receive and send (udp_rcv, udp_sendmsg)", []string{"udp_rcv", "udp_sendmsg"}},
	{"copies to and from user space (_copy_to_iter, _copy_from_iter)", []string{"_copy_to_iter", "_copy_from_iter"}},
}

// TestDataPlaneProfile profiles bulk transfers from the real servers to the client (the
// replies carry the data; get-raw, what TestDataPlaneBenchmark times) and the small UDP
// packets' round trips (pps) through Debian's NAT, our NAT and our FULLNAT, with perf recording
// the whole VM: the client, the director and the real servers share its kernel, so each share
// is of the whole path, and the director's parts are where the setups differ. It prints the
// parts (profileParts) and the costliest functions.
// (Verified bytes, lvs-peer's get, cost half the VM's CPU in lvs-peer itself: stop 30.)
func TestDataPlaneProfile(t *testing.T) {
	if _, err := os.Stat(perfreport.Bin); err != nil {
		t.Fatalf("%v: this package's vmtest.conf (perf=1) has rig/vm.sh put perf in the VM", err)
	}
	size := scaled(64, 16) << 20
	for _, s := range []setup{{"stock-NAT", true, "-m", "", false, ""}, {"ours-NAT", false, "-m", "", false, ""}, {"ours-FULLNAT", false, "-b", "", false, ""}} {
		load(t, s.stock)
		t.Run(s.name, func(t *testing.T) {
			tp, vip := serve(t, s)
			vmnet.Dial(t, tp.Client, "--addr", vip, "--count", "20", "--parallel", "4") // warm up
			for _, op := range []string{"get-raw", "pps"} {
				data := t.TempDir() + "/perf-" + op + ".data"
				rec := exec.Command(perfreport.Bin, "record", "-a", "-g", "-q", "-N", "-e", "cpu-clock", "-F", "1000", "-o", data)
				var out strings.Builder
				rec.Stdout, rec.Stderr = &out, &out
				if err := rec.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Second) // perf opens its events on every CPU
				var rate string
				if op == "pps" {
					pps, cpu := smallPackets(t, tp, vip)
					rate = fmt.Sprintf("small UDP packets at %.0f packets/s, %.1f us of CPU each", pps, cpu)
				} else {
					g := vmnet.Dial(t, tp.Client, "--addr", vip, "--op", op, "--size", fmt.Sprint(size), "--timeout", "180s")
					rate = fmt.Sprintf("%d MB at %.1f MB/s", size>>20, float64(size)/1e6/(float64(g.ElapsedMS)/1000))
				}
				if err := rec.Process.Signal(os.Interrupt); err != nil {
					t.Fatal(err)
				}
				// perf writes its data and ends by the signal it was stopped with
				var ee *exec.ExitError
				if err := rec.Wait(); err != nil && (!errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT) {
					t.Fatalf("perf record: %v\n%s", err, out.String())
				}
				prof, err := perfreport.Read(data, "")
				if err != nil {
					t.Fatal(err)
				}
				fmt.Printf("BENCH perf dataplane %s %s %s, the whole VM: %s\n", s.name, op, rate, prof.ByBinary())
				for _, p := range profileParts {
					fmt.Printf("BENCH perf dataplane %s %s %5.1f%%  %s\n", s.name, op, prof.Sum(p.syms...), p.what)
				}
				n := 0
				for _, l := range prof.Lines {
					if strings.Contains(l.Text, "[k]") && n < 40 {
						fmt.Printf("BENCH perf dataplane %s %s with callees: %s\n", s.name, op, l.Text)
						n++
					}
				}
			}
		})
		unload(t)
	}
}
