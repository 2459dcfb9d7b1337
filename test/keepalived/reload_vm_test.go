//go:build vmtest

package keepalived

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/flood"
	"github.com/fullnat/fullnat/internal/pktfix"
	"github.com/fullnat/fullnat/internal/vmnet"
	"golang.org/x/sys/unix"
)

// TestReloadLocalAddresses: with each build, a reload (SIGHUP) that removes local address .101, adds .103, keeps
// .102, changes a real server's weight and the ESTABLISHED timeout applies exactly that, one by one:
// the service is not recreated (it keeps synproxy and its connections), the log names the added
// and the removed local address and nothing else, long transfers in flight across the reload
// complete with their content verified (lvs-peer checks every byte), among them those through the
// removed local address (the module keeps it for the connections that use it: they drain), and
// new connections use only .102 and .103; a SYN flood sent across the reload is answered by
// SYNPROXY (none of its SYNs reaches a real server). Debian's keepalived has no local addresses to reload.
func TestReloadLocalAddresses(t *testing.T) {
	forEachBuild(t, testReloadLocalAddresses)
}

func testReloadLocalAddresses(t *testing.T, b build) {
	tp := director(t, 2)
	d := tp.Director
	for i := range tp.Servers {
		vmnet.Serve(t, tp.Servers[i], fmt.Sprintf("rs%d", i+1), 80, tp.ServerAddrs[i])
	}
	addr := func(i int) string { return netip.AddrPortFrom(tp.ServerAddrs[i], 80).String() }
	vip := netip.AddrPortFrom(tp.VIP, 80).String()
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	write := func(laddrs string, w1, est int) {
		t.Helper()
		cfg := fmt.Sprintf(`global_defs {
    router_id reload
}

local_address_group laddr_g1 {
    %s
}

virtual_server %s 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind FNAT
    protocol TCP
    syn_proxy
    est_timeout %d
    laddr_group_name laddr_g1

    real_server %s 80 {
        weight %d
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server %s 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`, laddrs, tp.VIP, est, tp.ServerAddrs[0], w1, tp.ServerAddrs[1])
		if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	state := func() (svc string, ds map[string]dest, g, s string) {
		svc, ds = service(d)
		g, _ = d.Try(ipvsadm, "-G")
		s, _ = d.Try(ipvsadm, "-Sn")
		return
	}
	has := func(g string, las ...string) bool {
		for _, la := range las {
			if !strings.Contains(g, " "+la+" ") {
				return false
			}
		}
		return true
	}

	write("198.51.100.101-102", 1, 100)
	k := startKeepalived(t, d, b.bin, conf)
	waitFor(t, 20*time.Second, "the FULLNAT service before the reload", func() bool {
		svc, ds, g, s := state()
		return strings.HasSuffix(svc, " synproxy") && ds[addr(0)] == (dest{"FullNat", "1"}) &&
			ds[addr(1)] == (dest{"FullNat", "1"}) && has(g, "198.51.100.101", "198.51.100.102") &&
			!has(g, "198.51.100.103") && strings.Contains(s, " -V 100\n")
	})

	// Long transfers, through both local addresses, in flight across the reload.
	var long vmnet.Summary
	var longErr error
	var wg sync.WaitGroup
	wg.Add(1)
	tLong := time.Now()
	go func() {
		defer wg.Done()
		long, _, longErr = vmnet.TryDial(tp.Client, "--addr", vip, "--op", "get", "--size", "25165824",
			"--count", "4", "--parallel", "4", "--timeout", "120s")
	}()
	time.Sleep(time.Second)

	// A SYN flood across the reload: SYNPROXY holds throughout, so no flood SYN reaches a real
	// server. The captures count the SYNs the real servers get from a local address (the
	// director's FULLNAT connections; keepalived's own checks come from its other address).
	stopCount := make(chan struct{})
	var cwg sync.WaitGroup
	var rsSyns atomic.Int64
	for _, rs := range tp.Servers {
		c := vmnet.OpenCapture(t, rs, "eth0")
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for {
				select {
				case <-stopCount:
					return
				default:
				}
				_, _ = c.Next(false, 200*time.Millisecond, func(fr vmnet.Frame) bool {
					p, err := pktfix.Decode(fr.Data, fr.Partial)
					if err == nil && p.Proto == unix.IPPROTO_TCP && p.Flags&(flood.SYN|flood.ACK) == flood.SYN &&
						laddrNet.Contains(p.Src.Addr()) {
						rsSyns.Add(1)
					}
					return false
				})
			}
		}()
	}
	syn0 := vmnet.ExtStats(t, d)["synproxy_syn_cnt"]
	var fl flood.Result
	var flErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		flErr = vmnet.InNetns(string(tp.Client), func() (err error) {
			fl, err = flood.Run(flood.Config{Target: netip.AddrPortFrom(tp.VIP, 80), Count: 20000, Flags: flood.SYN, Limit: 60 * time.Second})
			return err
		})
	}()

	write("198.51.100.102-103", 3, 200)
	tHUP := time.Now()
	if err := k.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 20*time.Second, "the reload to apply", func() bool {
		svc, ds, g, s := state()
		return strings.HasSuffix(svc, " synproxy") && ds[addr(0)] == (dest{"FullNat", "3"}) &&
			ds[addr(1)] == (dest{"FullNat", "1"}) && has(g, "198.51.100.102", "198.51.100.103") &&
			!has(g, "198.51.100.101") && strings.Contains(s, " -V 200\n")
	})
	// Connections through the removed local address are still there (and complete below).
	drain := 0
	for _, line := range strings.Split(d.Run(t, "/bin/cat", "/proc/net/ip_vs_conn_fnat"), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 10 && f[5] == "C6336465" && f[9] == "ESTABLISHED" { // 198.51.100.101
			drain++
		}
	}
	wg.Wait()
	tDone := time.Now()
	during := rsSyns.Load()
	syn1 := vmnet.ExtStats(t, d)["synproxy_syn_cnt"]
	if flErr != nil || fl.Sent < 10000 {
		t.Errorf("the SYN flood across the reload: %d SYNs sent: %v", fl.Sent, flErr)
	}
	if got := syn1 - syn0; got < uint64(fl.Sent)*9/10 {
		t.Errorf("synproxy_syn_cnt +%d for a flood of %d SYNs across the reload: SYNPROXY did not answer them", got, fl.Sent)
	}
	if during > 10 {
		t.Errorf("the real servers got %d SYNs from the local addresses during a flood of %d SYNs across the reload, want none of the flood's", during, fl.Sent)
	}
	if longErr != nil || long.OK != 4 || long.Failed != 0 {
		t.Errorf("long transfers across the reload: %+v, %v", long, longErr)
	}
	if !tDone.After(tHUP.Add(took)) {
		t.Errorf("the long transfers ended before the reload was applied: they prove nothing (make them longer)")
	}
	if drain == 0 {
		t.Errorf("right after the reload no transfer used the removed local address 198.51.100.101: nothing drained")
	}
	logs := k.logs.String()
	for _, want := range []string{
		"Removing local address 198.51.100.101 from virtual server [203.0.113.10]:tcp:80",
		"Adding local address 198.51.100.103 to virtual server [203.0.113.10]:tcp:80",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("keepalived did not log %q", want)
		}
	}
	if strings.Contains(logs, "local address 198.51.100.102") {
		t.Errorf("keepalived touched the unchanged local address 198.51.100.102")
	}

	s := vmnet.Dial(t, tp.Client, "--addr", vip, "--count", "20", "--parallel", "2")
	// The captures see genuine connections: these 20 reached the real servers.
	time.Sleep(300 * time.Millisecond)
	close(stopCount)
	cwg.Wait()
	if got := rsSyns.Load() - during; got < 20 {
		t.Errorf("the real servers' captures saw %d SYNs from the local addresses for 20 new connections", got)
	}
	used := map[string]int{}
	for _, peers := range s.Seen {
		for p, n := range peers {
			used[p] += n
		}
	}
	if s.OK != 20 || used["198.51.100.101"] != 0 || used["198.51.100.102"] == 0 || used["198.51.100.103"] == 0 {
		t.Errorf("after the reload, want 20 connections through .102 and .103 only, got %+v (peers %v)", s, used)
	}
	t.Logf("reload applied in %v; %d transfers through the removed local address drained; 4 x 24 MiB transfers took %v, %v after the SIGHUP",
		took, drain, tDone.Sub(tLong), tDone.Sub(tHUP))
	t.Logf("SYN flood across the reload: %d SYNs in %v, synproxy_syn_cnt +%d, SYNs from local addresses at the real servers: %d (then %d for 20 connections)",
		fl.Sent, fl.Elapsed.Round(time.Millisecond), syn1-syn0, during, rsSyns.Load()-during)
}

// laddrNet holds the local addresses the keepalived tests configure (198.51.100.101-103).
var laddrNet = netip.MustParsePrefix("198.51.100.96/28")
