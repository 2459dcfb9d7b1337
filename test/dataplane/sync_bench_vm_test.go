// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package dataplane

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
)

// syncRig is the standard topology with a FULLNAT service and a second director "drb" with the
// same service, linked to the first by a sync link (s0).
type syncRig struct {
	tp  *vmnet.Topology
	b   vmnet.NS
	adm string
	vip string
	// bTable is drb's FULLNAT connection table, read through a process that lives in drb
	bTable string
}

func newSyncRig(t *testing.T) *syncRig {
	t.Helper()
	tp := vmnet.New(t, vmnet.Options{Servers: 2})
	for i, rs := range tp.Servers {
		vmnet.ServeArgs(t, rs, "--name", fmt.Sprintf("rs%d", i+1), "--listen", netip.AddrPortFrom(tp.ServerAddrs[i], 80).String())
	}
	r := &syncRig{tp: tp, b: vmnet.Add(t, "drb"), adm: vmnet.Bin + "/ipvsadm", vip: netip.AddrPortFrom(tp.VIP, 80).String()}
	d := tp.Director
	vmnet.Veth(t, d, "s0", r.b, "s0")
	d.Addr(t, "s0", "10.254.0.1/24")
	r.b.Addr(t, "s0", "10.254.0.2/24")
	r.b.Run(t, vmnet.IP, "link", "add", "br0", "type", "dummy")
	r.b.Run(t, vmnet.IP, "link", "set", "br0", "up")
	for ns, la := range map[vmnet.NS]string{d: "198.51.100.201", r.b: "198.51.100.202"} {
		ns.Run(t, vmnet.IP, "addr", "add", la+"/24", "dev", "br0")
		ns.Run(t, r.adm, "-A", "-t", r.vip, "-s", "rr")
		ns.Run(t, r.adm, "-P", "-t", r.vip, "-z", la)
		for _, a := range tp.ServerAddrs {
			ns.Run(t, r.adm, "-a", "-t", r.vip, "-r", netip.AddrPortFrom(a, 80).String(), "-b")
		}
		t.Cleanup(func() { ns.Run(t, r.adm, "-C") })
	}
	pid := strings.TrimSpace(r.b.Run(t, "/bin/sh", "-c", "sleep 3600 >/dev/null 2>&1 & echo $!"))
	t.Cleanup(func() { _ = exec.Command("/bin/kill", pid).Run() })
	r.bTable = "/proc/" + pid + "/net/ip_vs_conn_fnat"
	return r
}

// syncOn starts or stops the daemons: master and backup on both directors, as in a cluster.
func (r *syncRig) syncOn(t *testing.T, on bool) {
	t.Helper()
	for _, ns := range []vmnet.NS{r.tp.Director, r.b} {
		for _, st := range []string{"master", "backup"} {
			if on {
				ns.Run(t, r.adm, "--start-daemon", st, "--mcast-interface", "s0", "--syncid", "7")
			} else {
				ns.Run(t, r.adm, "--stop-daemon", st)
			}
		}
	}
}

// lag opens a connection from the client that stays established and returns how long after
// its request (its third packet, which makes the master sync it at the default
// sync_threshold) the backup listed it. The sync message goes over UDP multicast and may be
// lost; the master sends the connection again every sync_period (50) packets, so while the
// backup does not list it the probe reads more of the stream, which makes those packets, and
// the lag includes that recovery.
func (r *syncRig) lag(t *testing.T) time.Duration {
	t.Helper()
	var port string
	var start time.Time
	var c net.Conn
	err := vmnet.InNetns(string(r.tp.Client), func() error {
		var err error
		c, err = net.DialTimeout("tcp", r.vip, 10*time.Second)
		if err != nil {
			return err
		}
		t.Cleanup(func() { _ = c.Close() })
		start = time.Now()
		if _, err := io.WriteString(c, "get 1000000000 3\n"); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 64<<10)); err != nil {
			return err
		}
		port = fmt.Sprintf("%04X", netip.MustParseAddrPort(c.LocalAddr().String()).Port())
		return nil
	})
	if err != nil {
		t.Fatalf("lag probe: %v", err)
	}
	more := time.Now().Add(2 * time.Second)
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		out, err := os.ReadFile(r.bTable)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 9 && f[2] == port && f[9] == "ESTABLISHED" {
				return time.Since(start)
			}
		}
		if time.Now().After(more) {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, make([]byte, 256<<10)); err != nil {
				t.Fatalf("lag probe, reading more: %v", err)
			}
			more = time.Now().Add(2 * time.Second)
		}
	}
	t.Fatalf("the backup never listed the probe connection from port %s", port)
	return 0
}

// TestSyncBenchmark: what connection sync costs a FULLNAT director, connections per second
// with the sync daemons on against off (two rounds, best of each), and the sync lag, the time
// from a connection's first packet on the master to its presence on the backup, idle and while
// the connection load runs (fullnat_sync_flush_ms at its default).
func TestSyncBenchmark(t *testing.T) {
	load(t, false)
	defer unload(t)
	var offCPS, onCPS float64
	var idle, busy []time.Duration
	t.Run("rig", func(t *testing.T) {
		r := newSyncRig(t)
		vmnet.Dial(t, r.tp.Client, "--addr", r.vip, "--count", "50", "--parallel", "4") // warm up
		rate := func() float64 {
			h := vmnet.Dial(t, r.tp.Client, "--addr", r.vip, "--count", "2000", "--parallel", "8")
			return float64(h.OK) / (float64(h.ElapsedMS) / 1000)
		}
		for round := 0; round < 2; round++ {
			off := rate()
			r.syncOn(t, true)
			on := rate()
			for i := 0; i < 3; i++ {
				idle = append(idle, r.lag(t))
			}
			// probes while the load runs
			done := make(chan error)
			go func() {
				_, out, err := vmnet.TryDial(r.tp.Client, "--addr", r.vip, "--count", "3000", "--parallel", "8")
				if err != nil {
					err = fmt.Errorf("%w: %s", err, out)
				}
				done <- err
			}()
			time.Sleep(300 * time.Millisecond)
			for i := 0; i < 3; i++ {
				busy = append(busy, r.lag(t))
			}
			if err := <-done; err != nil {
				t.Fatalf("load during the lag probes: %v", err)
			}
			r.syncOn(t, false)
			fmt.Printf("BENCH sync round %d: %7.0f conn/s with sync off, %7.0f with it on\n", round, off, on)
			offCPS, onCPS = max(offCPS, off), max(onCPS, on)
		}
	})
	if t.Failed() {
		return
	}
	slices.Sort(idle)
	slices.Sort(busy)
	ms := func(d []time.Duration) string {
		return fmt.Sprintf("median %4.0f ms, max %4.0f ms", float64(d[len(d)/2].Microseconds())/1000, float64(d[len(d)-1].Microseconds())/1000)
	}
	fmt.Printf("BENCH kernel=%s sync (FULLNAT, master and backup on both directors), best of 2 rounds of 2000 connections\n", os.Getenv("RIG_KERNEL"))
	fmt.Printf("BENCH sync off %7.0f conn/s, on %7.0f conn/s (%.2fx)\n", offCPS, onCPS, onCPS/offCPS)
	fmt.Printf("BENCH sync lag, first packet to the backup's table: idle %s; under load %s (%d probes each)\n", ms(idle), ms(busy), len(idle))
}
