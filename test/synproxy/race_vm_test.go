// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package synproxy

import (
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fullnat/fullnat/internal/pktfix"
	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
)

// pinnedSender sends raw IP packets from one namespace on an OS thread pinned to one CPU, so
// that the director handles them on that CPU (veth delivers on the sender's CPU).
type pinnedSender struct {
	pkts chan []byte
	errs chan error
}

// startSender starts a sender on cpu in ns. Each packet it gets is sent once the other senders
// sharing arrived have got theirs too (a spin barrier per round: arrived counts the senders'
// arrivals, round by round), so that the packets of a round leave at the same moment.
func startSender(t *testing.T, ns vmnet.NS, cpu int, dst netip.Addr, arrived *atomic.Int64, senders int64) *pinnedSender {
	t.Helper()
	s := &pinnedSender{pkts: make(chan []byte), errs: make(chan error, 1)}
	ready := make(chan error, 1)
	go func() {
		// InNetns's thread stays in ns, pinned, and dies with the goroutine
		_ = vmnet.InNetns(string(ns), func() error {
			if err := vmnet.PinThread(cpu); err != nil {
				ready <- err
				return nil
			}
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
			if err != nil {
				ready <- fmt.Errorf("raw socket: %w", err)
				return nil
			}
			defer unix.Close(fd)
			ready <- nil
			to := &unix.SockaddrInet4{Addr: dst.As4()}
			var round int64
			for pkt := range s.pkts {
				round++
				arrived.Add(1)
				for arrived.Load() < round*senders {
				}
				if err := unix.Sendto(fd, pkt, 0, to); err != nil {
					s.errs <- fmt.Errorf("CPU %d: sendto: %w", cpu, err)
					return nil
				}
				s.errs <- nil
			}
			return nil
		})
	}()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(s.pkts) })
	return s
}

// TestSynProxyHandshakeRace: the ACK that completes a client's handshake with the director and
// the client's first data leave together and reach the director on two CPUs at once, neither
// finding a connection. Exactly one connection is opened per handshake (the packet that comes
// second joins it: a second one would send the real server a second SYN from another local
// port), the data reaches the real server, whose answer reaches the client, synproxy_ok_ack
// counts each handshake once, and the service's counters count both packets.
func TestSynProxyHandshakeRace(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Fatalf("the race needs 2 CPUs, the VM has %d", runtime.NumCPU())
	}
	f := newFixture(t)
	d, cl := f.tp.Director, f.tp.Client
	svc := f.service(t, f.tp.VIP, ipvs.FullNAT, true)
	// the client's kernel knows nothing of these connections: no RST for the SYN-ACKs
	cl.Run(t, "/usr/sbin/iptables", "-A", "OUTPUT", "-p", "tcp", "--tcp-flags", "RST", "RST", "-j", "DROP")
	onClient := vmnet.OpenCapture(t, cl, "eth0")
	var arrived atomic.Int64
	acks := startSender(t, cl, 0, f.tp.VIP, &arrived, 2)
	datas := startSender(t, cl, 1, f.tp.VIP, &arrived, 2)

	// About 1 in 100 rounds raced into two connections before the fix (6.12, 2 vCPUs); the
	// sanitizer kernel runs fewer, for lockdep's sake rather than the race's.
	const base = 30000
	rounds := floodCount(1000)
	before := spStats(t, d)
	client := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(f.tp.ClientAddr, port) }
	vip := netip.AddrPortFrom(f.tp.VIP, 80)
	// the real server's answers to the data, noted while waiting for anything else
	answered := map[uint16]bool{}
	note := func(fr vmnet.Frame) (tcpSeg, bool) {
		s, ok := parseTCP(fr.Data)
		if ok && s.src == vip && s.payload > 0 && int(s.dst.Port()) >= base && int(s.dst.Port()) < base+rounds {
			answered[s.dst.Port()] = true
		}
		return s, ok
	}
	for i := range rounds {
		port := uint16(base + i)
		cisn := uint32(0x1000000 * (i + 1))
		syn := pktfix.Packet{Proto: unix.IPPROTO_TCP, Src: client(port), Dst: vip, TTL: 64, DF: true,
			Flags: 0x02, Seq: cisn, Win: 64240, Opts: []pktfix.Option{{Kind: pktfix.OptMSS, Data: []byte{0x05, 0xb4}}}}
		b, err := syn.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := vmnet.SendRaw(cl, b, f.tp.VIP); err != nil {
			t.Fatal(err)
		}
		fr, err := onClient.Next(false, 3*time.Second, func(fr vmnet.Frame) bool {
			s, ok := note(fr)
			return ok && s.dst == client(port) && s.flags == 0x12
		})
		if err != nil {
			t.Fatalf("handshake %d: no SYN-ACK: %v", i, err)
		}
		synack, _ := parseTCP(fr.Data)
		ack := pktfix.Packet{Proto: unix.IPPROTO_TCP, Src: client(port), Dst: vip, TTL: 64, DF: true,
			Flags: 0x10, Seq: cisn + 1, Ack: synack.seq + 1, Win: 64240}
		data := ack
		data.Flags = 0x18
		data.Data = []byte("hello\n")
		for _, p := range []struct {
			s   *pinnedSender
			pkt pktfix.Packet
		}{{acks, ack}, {datas, data}} {
			b, err := p.pkt.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			p.s.pkts <- b
		}
		for _, s := range []*pinnedSender{acks, datas} {
			if err := <-s.errs; err != nil {
				t.Fatal(err)
			}
		}
	}

	// every handshake's data is answered: the real server got it on one connection
	for len(answered) < rounds {
		if _, err := onClient.Next(false, 5*time.Second, func(fr vmnet.Frame) bool {
			_, ok := note(fr)
			return ok
		}); err != nil {
			t.Errorf("%d of %d handshakes got the real server's answer: %v", len(answered), rounds, err)
			break
		}
	}
	after := spStats(t, d)
	perPort := map[int]int{}
	for conn, err := range ipvs.ParseConnections(strings.NewReader(d.Run(t, "/bin/cat", ipvs.ConnPath))) {
		if err != nil {
			t.Fatal(err)
		}
		if p := int(conn.Client.Port()); conn.Virtual == vip && p >= base && p < base+rounds {
			perPort[p]++
		}
	}
	var twice []string
	for p, n := range perPort {
		if n != 1 {
			twice = append(twice, fmt.Sprintf("%d (%d)", p, n))
		}
	}
	// The client sent each handshake's ACK and data and nothing more (its SYN met no
	// connection): the service counts both whether SYNPROXY held them or not. The counters
	// reach netlink through the estimator, every 2 s.
	var in uint64
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		got, err := f.c.Service(t.Context(), svc)
		if err != nil {
			t.Fatal(err)
		}
		if in = got.Stats64.PacketsIn; in >= uint64(2*rounds) || time.Now().After(end) {
			break
		}
	}
	if in != uint64(2*rounds) {
		t.Errorf("the service counts %d packets in, want %d (2 per handshake)", in, 2*rounds)
	}
	okAck := after["synproxy_ok_ack"] - before["synproxy_ok_ack"]
	t.Logf("%d handshakes, ACK and data on two CPUs: %d connections for %d client ports, synproxy_ok_ack +%d",
		rounds, sum(perPort), len(perPort), okAck)
	if len(twice) > 0 {
		t.Errorf("client ports with more than one connection: %s", strings.Join(twice, ", "))
	}
	if len(perPort) != rounds {
		t.Errorf("%d of %d handshakes have a connection", len(perPort), rounds)
	}
	if okAck != uint64(rounds) {
		t.Errorf("synproxy_ok_ack +%d over %d handshakes", okAck, rounds)
	}
}

func sum(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
