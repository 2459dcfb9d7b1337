// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package frr

import (
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
)

// healthLoop is the announcement switch of README's "Running a cluster": vip0 is up while
// lvsctl health passes, down while it fails.
const healthLoop = "while :; do if " + vmnet.Bin + "/lvsctl health >/dev/null 2>&1; " +
	"then " + vmnet.IP + " link set vip0 up; else " + vmnet.IP + " link set vip0 down; fi; sleep 0.3; done"

// TestHealthWithdraws: a director whose services lose their last real server of weight above 0
// stops announcing the VIPs (the health loop takes vip0 down, FRR withdraws the routes) and
// announces them again when a real server comes back; so does one whose table is emptied.
func TestHealthWithdraws(t *testing.T) {
	c := newCluster(t, 2)
	c.waitDirectors(t, 60*time.Second, "d1", "d2")
	d1 := c.directors[0]
	const svc, rs = "203.0.113.10:8080", "198.51.100.99:8080"
	d1.Run(t, "/sbin/modprobe", "-a", "ip_vs", "ip_vs_rr")
	d1.Run(t, vmnet.Bin+"/ipvsadm", "-A", "-t", svc, "-s", "rr")
	d1.Run(t, vmnet.Bin+"/ipvsadm", "-a", "-t", svc, "-r", rs, "-m", "-w", "1")
	t.Cleanup(func() { _, _ = d1.Try(vmnet.Bin+"/ipvsadm", "-C") })
	loop := d1.Command("/bin/sh", "-c", healthLoop)
	if err := loop.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = loop.Process.Kill(); _ = loop.Wait() })
	// healthy: both directors stay
	time.Sleep(time.Second)
	c.waitDirectors(t, 10*time.Second, "d1", "d2")

	for _, step := range []struct {
		what string
		cmd  []string
		want []string
	}{
		{"its only real server quiesced (weight 0)", []string{"-e", "-t", svc, "-r", rs, "-m", "-w", "0"}, []string{"d2"}},
		{"the real server back at weight 1", []string{"-e", "-t", svc, "-r", rs, "-m", "-w", "1"}, []string{"d1", "d2"}},
		{"its table emptied", []string{"-C"}, []string{"d2"}},
	} {
		d1.Run(t, append([]string{vmnet.Bin + "/ipvsadm"}, step.cmd...)...)
		took4, took6 := c.waitDirectors(t, 30*time.Second, step.want...)
		t.Logf("d1 %s: the router's routes go through %v after %v (IPv4), %v (IPv6)", step.what, step.want,
			took4.Round(10*time.Millisecond), took6.Round(10*time.Millisecond))
	}
}
