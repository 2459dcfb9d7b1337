// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package synproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/pktfix"
	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
)

// TestSynProxySynRetry: the director's SYN to the real server is lost (the server's port on
// the director's bridge is down for two seconds); the director sends it again and the client's
// connection succeeds.
func TestSynProxySynRetry(t *testing.T) {
	f := newFixture(t)
	d := f.tp.Director
	s := ipvs.Service{Protocol: ipvs.Protocol(6), Address: f.tp.VIP, Port: 80, Scheduler: "rr", Flags: ipvs.FlagSynProxy}
	if err := f.c.CreateService(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.c.DeleteService(context.Background(), s) })
	if err := f.c.CreateDestination(t.Context(), s, ipvs.Destination{Address: f.tp.ServerAddrs[0], Port: 80, ForwardMethod: ipvs.FullNAT, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	if err := f.c.CreateLocalAddress(t.Context(), s, ipvs.LocalAddress{Address: f.laddrs[0]}); err != nil {
		t.Fatal(err)
	}
	// warm the neighbour caches
	vmnet.Dial(t, f.tp.Client, "--addr", netip.AddrPortFrom(f.tp.VIP, 80).String())
	before := spStats(t, d)
	d.Run(t, vmnet.IP, "link", "set", "r1", "down")
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(2 * time.Second)
		_, _ = d.Try(vmnet.IP, "link", "set", "r1", "up")
	}()
	start := time.Now()
	sum, out, err := vmnet.TryDial(f.tp.Client, "--addr", netip.AddrPortFrom(f.tp.VIP, 80).String(), "--timeout", "30s")
	el := time.Since(start)
	<-done
	if sum.OK != 1 {
		t.Errorf("dial with the first SYN lost: %+v (%v)\n%s", sum, err, out)
	}
	after := spStats(t, d)
	resent := after["synproxy_rs_error"] - before["synproxy_rs_error"]
	t.Logf("connected after %v; synproxy_rs_error +%d", el.Round(time.Millisecond), resent)
	// The link was down for 2 s: an answer before that came from no retry.
	if el < 2*time.Second {
		t.Errorf("connected after %v, before the real server's port came back: the first SYN was not lost", el)
	}
	if retry := uint64(3); resent < 1 || resent > retry {
		t.Errorf("synproxy_rs_error +%d: want between 1 and synproxy_syn_retry (%d) SYNs sent again", resent, retry)
	}
}

// TestSynProxySynRetryExact: a real server that never answers gets the director's SYN exactly
// 1 + synproxy_syn_retry times (here 2, not the default 3), and synproxy_rs_error counts the
// retries. With a client that sends nothing after its handshake (server-first protocols) only
// the director's timer sends them again, every 3 s; with a client that sends data, each of its
// retransmissions may send the SYN again, but not within 1 s of the last one.
//
// The real server is a ghost: the director has a permanent neighbour entry for 198.51.100.99
// pointing at rs1's interface, where a capture counts the SYNs; rs1's stack does not own the
// address and drops them without an answer.
func TestSynProxySynRetryExact(t *testing.T) {
	f := newFixture(t)
	d := f.tp.Director
	const retries = 2
	d.Sysctl(t, "net.ipv4.vs.synproxy_syn_retry", strconv.Itoa(retries))
	t.Cleanup(func() { _, _ = d.Try("/bin/sh", "-c", "echo 3 > /proc/sys/net/ipv4/vs/synproxy_syn_retry") })
	ghost := netip.MustParseAddr("198.51.100.99")
	var mac string
	if err := vmnet.InNetns(string(f.tp.Servers[0]), func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err == nil {
			mac = ifi.HardwareAddr.String()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	d.Run(t, vmnet.IP, "neigh", "replace", ghost.String(), "lladdr", mac, "dev", "br0", "nud", "permanent")
	cap1 := vmnet.OpenCapture(t, f.tp.Servers[0], "eth0")

	for i, fwd := range []ipvs.ForwardMethod{ipvs.FullNAT, ipvs.Masquerade} {
		for _, clientSends := range []bool{false, true} {
			port := uint16(90 + 2*i)
			if clientSends {
				port++
			}
			name := fmt.Sprintf("%v/client-silent", fwd)
			if clientSends {
				name = fmt.Sprintf("%v/client-sends", fwd)
			}
			t.Run(name, func(t *testing.T) {
				s := ipvs.Service{Protocol: ipvs.Protocol(6), Address: f.tp.VIP, Port: port, Scheduler: "rr", Flags: ipvs.FlagSynProxy}
				if err := f.c.CreateService(t.Context(), s); err != nil {
					t.Fatal(err)
				}
				defer func() { _ = f.c.DeleteService(t.Context(), s) }()
				if err := f.c.CreateDestination(t.Context(), s, ipvs.Destination{Address: ghost, Port: 80, ForwardMethod: fwd, Weight: 1}); err != nil {
					t.Fatal(err)
				}
				if fwd == ipvs.FullNAT {
					if err := f.c.CreateLocalAddress(t.Context(), s, ipvs.LocalAddress{Address: f.laddrs[0]}); err != nil {
						t.Fatal(err)
					}
				}
				before := spStats(t, d)
				// The client connects (the director answers the handshake) and holds the
				// connection for the whole observation; it sends a line or nothing.
				const watch = 1 + 3*retries + 6 // s: every SYN the timer can send, and then some
				cerr := make(chan error, 1)
				go func() {
					cerr <- vmnet.InNetns(string(f.tp.Client), func() error {
						c, err := net.DialTimeout("tcp", netip.AddrPortFrom(f.tp.VIP, port).String(), 5*time.Second)
						if err != nil {
							return err
						}
						defer c.Close()
						if clientSends {
							if _, err := io.WriteString(c, "hello\n"); err != nil {
								return err
							}
						}
						_ = c.SetReadDeadline(time.Now().Add(watch * time.Second))
						_, _ = c.Read(make([]byte, 1)) // nothing comes
						return nil
					})
				}()
				var syns []time.Time
				deadline := time.Now().Add(watch * time.Second)
				for {
					left := time.Until(deadline)
					if left <= 0 {
						break
					}
					fr, err := cap1.Next(false, left, func(fr vmnet.Frame) bool {
						p, err := pktfix.Decode(fr.Data, fr.Partial)
						return err == nil && p.Proto == 6 && p.Dst.Addr() == ghost && p.Flags&0x12 == 0x02
					})
					if err != nil {
						break
					}
					syns = append(syns, fr.At)
				}
				if err := <-cerr; err != nil {
					t.Fatalf("client: %v", err)
				}
				after := spStats(t, d)
				var gaps []string
				for j := 1; j < len(syns); j++ {
					gaps = append(gaps, syns[j].Sub(syns[j-1]).Round(10*time.Millisecond).String())
				}
				resent := after["synproxy_rs_error"] - before["synproxy_rs_error"]
				t.Logf("the real server got %d SYNs, %s apart; synproxy_rs_error +%d", len(syns), strings.Join(gaps, ", "), resent)
				if len(syns) != 1+retries {
					t.Errorf("the real server got %d SYNs, want 1 + synproxy_syn_retry = %d", len(syns), 1+retries)
				}
				if resent != retries {
					t.Errorf("synproxy_rs_error +%d, want %d (one per SYN sent again)", resent, retries)
				}
				for j := 1; j < len(syns); j++ {
					gap := syns[j].Sub(syns[j-1])
					// The timer's period is 3 s (TCG's timers run a little late); a client's
					// retransmission may trigger a retry 1 s after the last SYN at the earliest.
					lo, hi := 2700*time.Millisecond, 4500*time.Millisecond
					if clientSends {
						lo = 950 * time.Millisecond
					}
					if gap < lo || gap > hi {
						t.Errorf("SYN %d came %v after SYN %d, want %v to %v", j+1, gap.Round(time.Millisecond), j, lo, hi)
					}
				}
			})
		}
	}
}
