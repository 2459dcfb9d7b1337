//go:build vmtest

package keepalived

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
)

// dest is one real server line of `ipvsadm -Ln`.
type dest struct {
	fwd    string
	weight string
}

// service reads the service line flags and the real servers of the one TCP service in ns.
func service(ns vmnet.NS) (svcLine string, dests map[string]dest) {
	out, _ := ns.Try(ipvsadm, "-Ln")
	dests = map[string]dest{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[0] == "TCP":
			svcLine = strings.Join(f, " ")
		case len(f) >= 6 && f[0] == "->" && f[1] != "RemoteAddress:Port":
			dests[f[1]] = dest{fwd: f[2], weight: f[3]}
		}
	}
	return svcLine, dests
}

// batch is one `lvs-peer dial` run of the prober.
type batch struct {
	start, end time.Time
	s          vmnet.Summary
	err        error
}

// startProber makes batches of count new connections to addr from ns, one batch after the
// other, until the function it returns is called; that function returns every batch.
func startProber(ns vmnet.NS, addr string, count int, timeout time.Duration) (stop func() []batch) {
	var batches []batch
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			default:
			}
			b := batch{start: time.Now()}
			b.s, _, b.err = vmnet.TryDial(ns, "--addr", addr, "--count", strconv.Itoa(count), "--parallel", "2", "--timeout", timeout.String())
			b.end = time.Now()
			batches = append(batches, b)
		}
	}()
	return func() []batch {
		close(done)
		<-finished
		return batches
	}
}

// TestHealthCheckFullNAT: each build of keepalived manages a FULLNAT service with SYNPROXY and
// its three kinds of checks (rs1 TCP_CHECK, rs2 HTTP_GET, rs3 MISC_CHECK) while a client keeps
// connecting through it. rs1 stays up; when rs2 and rs3 stop answering, keepalived
// removes rs2 and sets rs3 (inhibit_on_failure) to weight 0 within the check interval; when they
// answer again, both are back as FullNat with their configured weights. The service keeps its
// synproxy flag and its local addresses throughout, and no connection fails except in the
// window between the failure and keepalived noticing it (those were scheduled to a dead server).
//
// With Debian's keepalived this fails at the first check: lb_kind FNAT becomes NAT (Masq), no
// local address is pushed and no synproxy flag is set; the test first runs Debian's keepalived
// on the same file and checks exactly that (with the first build only).
func TestHealthCheckFullNAT(t *testing.T) {
	forEachBuild(t, testHealthCheckFullNAT)
}

func testHealthCheckFullNAT(t *testing.T, k build) {
	tp := director(t, 3)
	d := tp.Director
	addr := func(i int) string { return netip.AddrPortFrom(tp.ServerAddrs[i], 80).String() }
	vmnet.Serve(t, tp.Servers[0], "rs1", 80, tp.ServerAddrs[0])
	rs2 := newServer(t, tp.Servers[1], "rs2", addr(1))
	rs3 := newServer(t, tp.Servers[2], "rs3", addr(2))

	// Each real server has another of keepalived's checkers: rs1 TCP_CHECK, rs2 HTTP_GET (lvs-peer
	// answers HTTP), rs3 MISC_CHECK (a script that connects to it).
	tcpCheck := `        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }`
	httpCheck := `        HTTP_GET {
            url {
                path /health
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }`
	miscCheck := fmt.Sprintf(`        MISC_CHECK {
            misc_path "/opt/fullnat/bin/lvs-peer dial --addr %s --timeout 1s"
            misc_timeout 3
        }`, addr(2))
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	cfg := fmt.Sprintf(`global_defs {
    router_id fullnat
}

local_address_group laddr_g1 {
    198.51.100.101-102
}

virtual_server %s 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind FNAT
    protocol TCP
    syn_proxy
    laddr_group_name laddr_g1

    real_server %s 80 {
        weight 3
%s
    }
    real_server %s 80 {
        weight 2
%s
    }
    real_server %s 80 {
        weight 4
        inhibit_on_failure
%s
    }
}
`, tp.VIP, tp.ServerAddrs[0], tcpCheck, tp.ServerAddrs[1], httpCheck, tp.ServerAddrs[2], miscCheck)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	vip := netip.AddrPortFrom(tp.VIP, 80).String()
	full := map[string]dest{addr(0): {"FullNat", "3"}, addr(1): {"FullNat", "2"}, addr(2): {"FullNat", "4"}}
	same := func(got, want map[string]dest) bool {
		if len(got) != len(want) {
			return false
		}
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}
	synproxy := func(svc string) bool { return strings.HasSuffix(svc, " synproxy") }
	laddrs := func() bool {
		g, _ := d.Try(ipvsadm, "-G")
		return strings.Contains(g, "198.51.100.101") && strings.Contains(g, "198.51.100.102")
	}

	// What this test catches: Debian's keepalived runs the same file as NAT, without local
	// addresses or SYNPROXY (checked once, with the first build).
	if k.first() {
		stock := startKeepalived(t, d, stockKeepalived, conf)
		waitFor(t, 20*time.Second, "Debian's keepalived to install the service", func() bool {
			_, ds := service(d)
			return len(ds) == 3
		})
		if svc, ds := service(d); synproxy(svc) || laddrs() || same(ds, full) {
			t.Errorf("Debian's keepalived built the FULLNAT service too: this test proves nothing\n%s", table(d))
		}
		stock.stop()
		d.Run(t, ipvsadm, "-C")
	}

	startKeepalived(t, d, k.bin, conf)
	waitFor(t, 20*time.Second, "keepalived to install the FULLNAT service", func() bool {
		svc, ds := service(d)
		return synproxy(svc) && same(ds, full) && laddrs()
	})

	// The prober: new connections all the time, each batch on record.
	stopProber := startProber(tp.Client, vip, 6, 5*time.Second)
	time.Sleep(2 * time.Second)

	// The check interval's worst case: delay_loop + (retry + 1) * connect_timeout +
	// retry * delay_before_retry = 4 s; 3 s more for polling and TCG.
	const interval = 7 * time.Second

	tKill := time.Now()
	rs2.stop()
	rs3.stop()
	down := map[string]dest{addr(0): {"FullNat", "3"}, addr(2): {"FullNat", "0"}}
	took := waitFor(t, 3*interval, "keepalived to remove rs2 and set rs3 to weight 0", func() bool {
		_, ds := service(d)
		return same(ds, down)
	})
	tGone := time.Now()
	if took > interval {
		t.Errorf("rs2/rs3 failure noticed after %v, want within %v", took, interval)
	}
	if svc, _ := service(d); !synproxy(svc) || !laddrs() {
		t.Errorf("after the failure the service lost synproxy or its local addresses:\n%s", table(d))
	}
	time.Sleep(2 * time.Second)

	tUp := time.Now()
	rs2.start()
	rs3.start()
	took = waitFor(t, 3*interval, "keepalived to re-add rs2 and rs3 as FULLNAT with their weights", func() bool {
		_, ds := service(d)
		return same(ds, full)
	})
	tBack := time.Now()
	if took > interval {
		t.Errorf("rs2/rs3 return noticed after %v, want within %v", took, interval)
	}
	if svc, _ := service(d); !synproxy(svc) || !laddrs() {
		t.Errorf("after the return the service lost synproxy or its local addresses:\n%s", table(d))
	}
	time.Sleep(2 * time.Second)
	batches := stopProber()

	// Connections: none fails outside [tKill, tGone]; between tGone and tUp they all go to rs1.
	var failedInWindow, okTotal, onlyRS1 int
	for _, b := range batches {
		okTotal += b.s.OK
		inWindow := b.end.After(tKill) && b.start.Before(tGone)
		if b.err != nil || b.s.Failed != 0 {
			if inWindow {
				failedInWindow += b.s.Failed
				continue
			}
			t.Errorf("batch %s..%s outside the failure window: %d failed, err %v, errors %v",
				b.start.Format("15:04:05.000"), b.end.Format("15:04:05.000"), b.s.Failed, b.err, b.s.Errors)
		}
		if b.start.After(tGone) && b.end.Before(tUp) {
			onlyRS1++
			if b.s.Servers["rs1"] != b.s.OK {
				t.Errorf("between the failure and the return, connections reached %v, want rs1 only", b.s.Servers)
			}
		}
	}
	if okTotal < 30 || onlyRS1 == 0 {
		t.Errorf("the prober made %d connections, %d batches while rs1 was alone: too few to tell", okTotal, onlyRS1)
	}
	t.Logf("%d batches, %d connections ok, %d failed in the %v failure window; failure noticed in %v, return in %v",
		len(batches), okTotal, failedInWindow, tGone.Sub(tKill), tGone.Sub(tKill), tBack.Sub(tUp))

	// And all three take new connections again, through the local addresses.
	s := vmnet.Dial(t, tp.Client, "--addr", vip, "--count", "27", "--parallel", "3")
	if s.OK != 27 || s.Servers["rs1"] == 0 || s.Servers["rs2"] == 0 || s.Servers["rs3"] == 0 {
		t.Errorf("after the return, want 27 connections over rs1, rs2 and rs3, got %+v", s)
	}
	for server, peers := range s.Seen {
		for p := range peers {
			if p != "198.51.100.101" && p != "198.51.100.102" {
				t.Errorf("%s saw peer %s, want a local address (FULLNAT)", server, p)
			}
		}
	}
}
