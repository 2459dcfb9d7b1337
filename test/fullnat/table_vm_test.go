// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package fullnat

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
	"golang.org/x/sys/unix"
)

// unloadIPVS removes ip_vs and its schedulers, waiting for namespaces that earlier tests
// deleted to let go of them.
func unloadIPVS(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mods, err := exec.Command("/bin/sh", "-c", "awk '$1 ~ /^(ip_vs|xt_ipvs)/ {print $1}' /proc/modules").Output()
		if err != nil {
			t.Fatal(err)
		}
		if len(strings.TrimSpace(string(mods))) == 0 {
			return
		}
		for _, m := range append([]string{"xt_ipvs"}, append(strings.Fields(string(mods)), "ip_vs")...) {
			_ = exec.Command("/sbin/rmmod", m).Run()
		}
		if time.Now().After(deadline) {
			t.Fatalf("ip_vs still loaded after 20 s: %s", mods)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestFullNATReplyTableFollowsConnTab: the FULLNAT reply table has as many buckets as the
// connection table (module parameter conn_tab_bits), at least 2^14, so one knob sizes both for
// a million connections; FULLNAT works with a table larger than the default.
func TestFullNATReplyTableFollowsConnTab(t *testing.T) {
	for _, c := range []struct{ bits, size int }{{12, 1 << 14}, {18, 1 << 18}} {
		t.Run(fmt.Sprintf("conn_tab_bits=%d", c.bits), func(t *testing.T) {
			unloadIPVS(t)
			t.Cleanup(func() { unloadIPVS(t) })
			if out, err := exec.Command("/sbin/modprobe", "ip_vs", fmt.Sprintf("conn_tab_bits=%d", c.bits)).CombinedOutput(); err != nil {
				t.Fatalf("modprobe ip_vs conn_tab_bits=%d: %v\n%s", c.bits, err, out)
			}
			log, err := exec.Command("/bin/dmesg").Output()
			if err != nil {
				t.Fatal(err)
			}
			// What this load printed: the log from its connection table line on (the
			// log is never cleared: the rig reads all of it for kernel reports).
			this := string(log)
			if i := strings.LastIndex(this, "Connection hash table configured"); i >= 0 {
				this = this[i:]
			}
			conn := fmt.Sprintf("Connection hash table configured (size=%d,", 1<<c.bits)
			reply := fmt.Sprintf("FULLNAT reply table configured (size=%d,", c.size)
			if !strings.HasPrefix(this, conn) || !strings.Contains(this, reply) {
				t.Fatalf("kernel log after loading ip_vs with conn_tab_bits=%d lacks %q or %q:\n%s", c.bits, conn, reply, this)
			}

			f := newFixture(t, 2)
			sd := f.sides()[0]
			f.fullnatService(t, unix.IPPROTO_TCP, sd.vip, sd.rss, sd.laddrs)
			s := vmnet.Dial(t, f.tp.Client, "--addr", netip.AddrPortFrom(sd.vip, 80).String(), "--count", "200", "--parallel", "8")
			if s.OK != 200 {
				t.Errorf("%d of 200 FULLNAT connections, %+v", s.OK, s.Errors)
			}
			onlyFrom(t, "TCP", s, sd.laddrs)
		})
	}
}
