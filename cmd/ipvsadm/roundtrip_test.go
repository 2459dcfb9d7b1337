// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

func newRand() *rand.Rand { return rand.New(rand.NewSource(42)) }

// randomTable returns ipvsadm commands that build a varied table: with ext, Alibaba's
// extension's settings too, and with proxy the PROXY protocol on TCP and fwmark services (whose
// real servers are then all FULLNAT).
func randomTable(rng *rand.Rand, ext, proxy bool) []string {
	scheds := []string{"rr", "wrr", "lc", "wlc", "sh", "mh", "sed", "nq"}
	var cmds []string
	for i := 0; i < 40; i++ {
		var svc string
		switch rng.Intn(4) {
		case 0:
			svc = fmt.Sprintf("-t 192.0.2.%d:%d", 1+rng.Intn(250), 1+rng.Intn(65535))
		case 1:
			svc = fmt.Sprintf("-u [2001:db8::%x]:%d", 1+rng.Intn(0xffff), 1+rng.Intn(65535))
		case 2:
			svc = fmt.Sprintf("-f %d", 1+rng.Int31())
			if rng.Intn(2) == 0 {
				svc += " -6"
			}
		default:
			svc = fmt.Sprintf("--sctp-service 203.0.113.%d:%d", 1+rng.Intn(250), 1+rng.Intn(65535))
		}
		sched := scheds[rng.Intn(len(scheds))]
		add := "-A " + svc + " -s " + sched
		if rng.Intn(2) == 0 {
			add += fmt.Sprintf(" -p %d", 1+rng.Intn(1000))
			if strings.HasPrefix(svc, "-t") && rng.Intn(2) == 0 {
				add += " -M 255.255.255.0"
			}
		}
		if sched == "sh" && rng.Intn(2) == 0 {
			add += " -b sh-port"
		}
		if ext && strings.HasPrefix(svc, "-t") {
			if rng.Intn(2) == 0 {
				add += " -j enable"
			}
			if rng.Intn(2) == 0 {
				add += fmt.Sprintf(" -V %d", 1+rng.Intn(1000))
			}
		}
		if proxy && (strings.HasPrefix(svc, "-t") || strings.HasPrefix(svc, "-f")) && rng.Intn(2) == 0 {
			add += []string{" --proxy-protocol v1", " --proxy-protocol v2"}[rng.Intn(2)]
		}
		cmds = append(cmds, add)
		v6 := strings.HasPrefix(svc, "-u [") || strings.HasSuffix(svc, "-6")
		for j := rng.Intn(4); j > 0; j-- {
			var rs string
			if v6 {
				rs = fmt.Sprintf("[2001:db8:1::%x]:%d", 1+rng.Intn(0xffff), 1+rng.Intn(65535))
			} else {
				rs = fmt.Sprintf("198.51.100.%d:%d", 1+rng.Intn(250), 1+rng.Intn(65535))
			}
			fwd := []string{"-m", "-g", "-i"}[rng.Intn(3)]
			if ext && rng.Intn(3) == 0 {
				fwd = "-b"
			}
			// SYNPROXY takes NAT and FULLNAT real servers only, the PROXY protocol FULLNAT
			// ones only
			if strings.Contains(add, "-j enable") && fwd != "-b" {
				fwd = "-m"
			}
			if strings.Contains(add, "--proxy-protocol") {
				fwd = "-b"
			}
			cmds = append(cmds, fmt.Sprintf("-a %s -r %s %s -w %d", svc, rs, fwd, rng.Intn(100)))
		}
		if ext && !v6 && !strings.HasPrefix(svc, "-f") {
			for j := rng.Intn(3); j > 0; j-- {
				cmds = append(cmds, fmt.Sprintf("-P %s -z %s", svc, roundTripLaddrs[rng.Intn(len(roundTripLaddrs))]))
			}
		}
	}
	return cmds
}

// roundTripLaddrs are the local addresses randomTable gives FULLNAT services; the kernel takes
// only addresses the director has, so the VM test configures them.
var roundTripLaddrs = []string{"203.0.113.251", "203.0.113.252", "203.0.113.253", "203.0.113.254"}

func TestSaveRestoreRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name     string
		features uint32
		save     []string
	}{
		{"numeric", 0, []string{"-S", "-n"}},
		{"names", 0, []string{"-S"}},
		{"extension", 7, []string{"-S", "-n"}},
		{"proxy-protocol", 0x17, []string{"-S", "-n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := newRand()
			r := newFakeRig(t)
			r.k.inf.Features = tc.features
			// Build the table through -R (duplicates fail and are skipped).
			table := randomTable(rng, tc.features != 0, tc.features&featProxyProto != 0)
			_, _, _ = r.run([]string{"-R"}, strings.Join(table, "\n")+"\n")
			saved, stderr, code := r.run(tc.save, "")
			if code != 0 || stderr != "" {
				t.Fatalf("save: %d %q", code, stderr)
			}
			if strings.Count(saved, "\n") < 40 {
				t.Fatalf("table too small:\n%s", saved)
			}
			if pp := strings.Count(saved, " --proxy-protocol v"); (pp >= 5) != (tc.features&featProxyProto != 0) {
				t.Fatalf("%d services saved with the PROXY protocol:\n%s", pp, saved)
			}
			before, _, _ := r.run([]string{"-Ln"}, "")
			if _, _, code := r.run([]string{"-C"}, ""); code != 0 {
				t.Fatal("clear failed")
			}
			if empty, _, _ := r.run([]string{"-S", "-n"}, ""); empty != "" {
				t.Fatalf("not cleared: %q", empty)
			}
			batches := r.k.batches
			if _, stderr, code := r.run([]string{"-R"}, saved); code != 0 || stderr != "" {
				t.Fatalf("restore: %d %q", code, stderr)
			}
			// Every saved line, FULLNAT real servers, local addresses and SYNPROXY services
			// included, goes to the kernel in one batch when the module has the extension.
			if n := r.k.batches - batches; n != 1 {
				t.Errorf("restore sent %d batches, want all changes in one", n)
			}
			again, _, _ := r.run(tc.save, "")
			if again != saved {
				t.Errorf("save after restore differs:\n--- before\n%s--- after\n%s", saved, again)
			}
			after, _, _ := r.run([]string{"-Ln"}, "")
			if after != before {
				t.Errorf("-Ln after restore differs:\n--- before\n%s--- after\n%s", before, after)
			}
		})
	}
}

// TestRestoreBatchesExtendedEdits restores -E lines that set, clear or
// leave SYNPROXY, the ESTABLISHED timeout and the PROXY protocol, with
// failures among them, once in one batch and once line by line (a backend
// without a batcher), and requires the same table, messages and exit code:
// an -E that does not name -j, -V or --proxy-protocol keeps what the
// service has.
func TestRestoreBatchesExtendedEdits(t *testing.T) {
	rules := strings.Join([]string{
		"-A -t 192.0.2.1:80 -s rr -j enable -V 600",
		"-a -t 192.0.2.1:80 -r 198.51.100.1:80 -b",
		"-P -t 192.0.2.1:80 -z 203.0.113.1",
		"-A -t 192.0.2.2:80 -s wrr -V 300",
		"-A -t 192.0.2.3:80 -s wrr -j enable",
		"-E -t 192.0.2.1:80 -s wlc",
		"-E -t 192.0.2.2:80 -s rr -j enable",
		"-E -t 192.0.2.3:80 -s lc -V 900",
		"-E -t 192.0.2.9:80 -s rr",
		"-E -t 192.0.2.3:80 -s rr -j disable",
		"-A -t 192.0.2.4:80 -s rr -j enable -V 60",
		"-E -t 192.0.2.4:80 -s rr -p 30",
		"-E -t 192.0.2.4:80 -s rr -j disable -V 90",
		"-A -t 192.0.2.5:80 -s rr --proxy-protocol v2",
		"-a -t 192.0.2.5:80 -r 198.51.100.5:80 -b",
		"-E -t 192.0.2.5:80 -s wlc",
		"-A -t 192.0.2.6:80 -s rr --proxy-protocol v1 -V 30",
		"-E -t 192.0.2.6:80 -s rr --proxy-protocol disable",
		"-A -t 192.0.2.7:80 -s rr",
		"-a -t 192.0.2.7:80 -r 198.51.100.7:80 -g",
		"-E -t 192.0.2.7:80 -s lc --proxy-protocol v1",
		"-E -t 192.0.2.6:80 -s wlc",
	}, "\n") + "\n"
	type outcome struct {
		save, stderr string
		code         int
	}
	do := func(batch bool) (outcome, int) {
		r := newFakeRig(t)
		r.k.inf.Features = 0x17
		env := r.env()
		if !batch {
			env.open = func() (backend, error) { return onlyBackend{r.k}, nil }
		}
		var o, e bytes.Buffer
		code := run([]string{"ipvsadm", "-R", "--line-numbers"}, strings.NewReader(rules), &o, &e, env)
		save, _, _ := r.run([]string{"-S", "-n"}, "")
		return outcome{save, e.String(), code}, r.k.batches
	}
	batched, n := do(true)
	alone, _ := do(false)
	if n != 1 {
		t.Errorf("restore sent %d batches, want every line in one", n)
	}
	if batched != alone {
		t.Errorf("batched and line-by-line restores differ\n--- batched\n%+v\n--- line by line\n%+v", batched, alone)
	}
	for _, want := range []string{
		"-A -t 192.0.2.1:80 -s wlc -j enable -V 600\n",
		"-A -t 192.0.2.2:80 -s rr -j enable -V 300\n",
		"-A -t 192.0.2.3:80 -s rr -V 900\n",
		"-A -t 192.0.2.4:80 -s rr -V 90\n",
		"-A -t 192.0.2.5:80 -s wlc --proxy-protocol v2\n",
		"-A -t 192.0.2.6:80 -s wlc -V 30\n",
		"-A -t 192.0.2.7:80 -s rr\n",
	} {
		if !strings.Contains(batched.save, want) {
			t.Errorf("saved table lacks %q:\n%s", want, batched.save)
		}
	}
	if batched.stderr != "line 9: No such service\nline 21: "+proxyServiceText+"\n" || batched.code != 0 {
		t.Errorf("stderr %q, exit %d: want the failures of lines 9 and 21 reported and the last line's success", batched.stderr, batched.code)
	}
}
