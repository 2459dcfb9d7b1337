// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package cluster

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fullnat/fullnat/internal/vmnet"
)

// Paced transfers: each sends chunk bytes every pace until the test says finish, so that it
// lasts through a failover and a failback whatever TCG's speed, and moves bytes in every phase.
const (
	chunk = 8 << 10
	pace  = 50 * time.Millisecond
	// finishWithin bounds a transfer's end once finish is closed; a connection that a
	// failover lost stalls and ends in this deadline's error.
	finishWithin = 40 * time.Second
)

// transfer is one long TCP connection through the VIP: "down" (the real server sends) or
// "up" (the client sends). Both ends run in this process; the receiving end hashes what it
// reads, the sending end what it writes.
type transfer struct {
	id   int
	down bool
	v6   bool
	// client is the client's address and port (the connection's key on the directors).
	client netip.AddrPort
	// established is when the client's connect returned.
	established time.Time
	// moved counts the bytes the receiving end has read so far.
	moved atomic.Int64

	mu         sync.Mutex
	sent, recv int64
	sentSum    []byte
	recvSum    []byte
	errs       []string
	done       chan struct{}
	conn       *net.TCPConn // the client's end
}

// tcpInfo describes the client end's TCP state, for failure messages.
func (x *transfer) tcpInfo() string {
	rc, err := x.conn.SyscallConn()
	if err != nil {
		return err.Error()
	}
	var ti *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) { ti, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		return err.Error()
	}
	if gerr != nil {
		return gerr.Error()
	}
	return fmt.Sprintf("state %d ca_state %d retransmits %d backoff %d rto %dus unacked %d lost %d retrans %d total_retrans %d snd_cwnd %d rtt %dus last_data_recv %dms last_ack_recv %dms",
		ti.State, ti.Ca_state, ti.Retransmits, ti.Backoff, ti.Rto, ti.Unacked, ti.Lost, ti.Retrans, ti.Total_retrans, ti.Snd_cwnd, ti.Rtt, ti.Last_data_recv, ti.Last_ack_recv)
}

func (x *transfer) name() string {
	dir, fam := "up", "v4"
	if x.down {
		dir = "down"
	}
	if x.v6 {
		fam = "v6"
	}
	return fmt.Sprintf("%s%d-%s", dir, x.id, fam)
}

func (x *transfer) fail(format string, args ...any) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.errs = append(x.errs, fmt.Sprintf(format, args...))
}

// finished reports whether the transfer has ended (intact or not).
func (x *transfer) finished() bool {
	select {
	case <-x.done:
		return true
	default:
		return false
	}
}

// intact reports what is wrong with an ended transfer, or "" when both ends agree on every byte.
func (x *transfer) intact() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case len(x.errs) > 0:
		return strings.Join(x.errs, "; ")
	case x.sentSum == nil || x.recvSum == nil:
		return "an end did not finish"
	case x.sent != x.recv:
		return fmt.Sprintf("sent %d bytes, received %d", x.sent, x.recv)
	case string(x.sentSum) != string(x.recvSum):
		return fmt.Sprintf("%d bytes, sha256 sent %x received %x", x.sent, x.sentSum, x.recvSum)
	}
	return ""
}

// traffic is the set of transfers and the real servers' listeners.
type traffic struct {
	t      *testing.T
	finish chan struct{}
	mu     sync.Mutex
	xs     map[int]*transfer
	nextID int
	wg     sync.WaitGroup
}

func newTraffic(t *testing.T) *traffic {
	tr := &traffic{t: t, finish: make(chan struct{}), xs: map[int]*transfer{}}
	t.Cleanup(func() {
		select {
		case <-tr.finish:
		default:
			close(tr.finish)
		}
	})
	return tr
}

// serve listens on port 80 of each address in the real server's namespace and answers
// transfers.
func (tr *traffic) serve(ns vmnet.NS, addrs ...netip.Addr) {
	tr.t.Helper()
	for _, addr := range addrs {
		var ln net.Listener
		err := vmnet.InNetns(string(ns), func() error {
			var err error
			ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 80).String())
			return err
		})
		if err != nil {
			tr.t.Fatalf("listening in %s: %v", ns, err)
		}
		tr.t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go tr.serveConn(c)
			}
		}()
	}
}

// serveConn: the request line is "down ID" or "up ID".
func (tr *traffic) serveConn(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	var dir string
	var id int
	if _, err := fmt.Sscanf(line, "%s %d", &dir, &id); err != nil {
		return
	}
	tr.mu.Lock()
	x := tr.xs[id]
	tr.mu.Unlock()
	if x == nil {
		return
	}
	if x.down {
		n, sum, err := tr.send(c, x)
		x.mu.Lock()
		x.sent, x.sentSum = n, sum
		x.mu.Unlock()
		if err != nil {
			x.fail("server send: %v", err)
		}
		return
	}
	n, sum, err := receive(r, x)
	x.mu.Lock()
	x.recv, x.recvSum = n, sum
	x.mu.Unlock()
	if err != nil {
		x.fail("server receive: %v", err)
		return
	}
	// The client waits for this line: the upload is over once the server has read it all.
	if _, err := fmt.Fprintf(c, "%d %x\n", n, sum); err != nil {
		x.fail("server answer: %v", err)
	}
}

// send writes the paced stream until finish, then half-closes.
func (tr *traffic) send(c net.Conn, x *transfer) (int64, []byte, error) {
	h := sha256.New()
	rnd := rand.New(rand.NewPCG(uint64(x.id), 0x5eed))
	buf := make([]byte, chunk)
	var n int64
	tick := time.NewTicker(pace)
	defer tick.Stop()
	for {
		select {
		case <-tr.finish:
			_ = c.SetDeadline(time.Now().Add(finishWithin))
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				if err := cw.CloseWrite(); err != nil {
					return n, h.Sum(nil), fmt.Errorf("half-close after %d bytes: %w", n, err)
				}
			}
			return n, h.Sum(nil), nil
		case <-tick.C:
		}
		for i := range buf {
			buf[i] = byte(rnd.Uint32())
		}
		m, err := c.Write(buf)
		h.Write(buf[:m])
		n += int64(m)
		if err != nil {
			return n, h.Sum(nil), fmt.Errorf("write after %d bytes: %w", n, err)
		}
	}
}

// receive reads to EOF, counting into x.moved.
func receive(r io.Reader, x *transfer) (int64, []byte, error) {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		m, err := r.Read(buf)
		h.Write(buf[:m])
		n += int64(m)
		x.moved.Add(int64(m))
		if errors.Is(err, io.EOF) {
			return n, h.Sum(nil), nil
		}
		if err != nil {
			return n, h.Sum(nil), fmt.Errorf("read after %d bytes: %w", n, err)
		}
	}
}

// start opens a transfer from the client namespace to vip:80.
func (tr *traffic) start(client vmnet.NS, vip netip.Addr, down bool) *transfer {
	tr.t.Helper()
	tr.mu.Lock()
	tr.nextID++
	x := &transfer{id: tr.nextID, down: down, v6: vip.Is6(), done: make(chan struct{})}
	tr.xs[x.id] = x
	tr.mu.Unlock()
	var c net.Conn
	err := vmnet.InNetns(string(client), func() error {
		var err error
		c, err = net.DialTimeout("tcp", netip.AddrPortFrom(vip, 80).String(), 10*time.Second)
		return err
	})
	if err != nil {
		tr.t.Fatalf("%s: connecting to %s: %v", x.name(), vip, err)
	}
	x.established = time.Now()
	x.conn = c.(*net.TCPConn)
	x.client = c.LocalAddr().(*net.TCPAddr).AddrPort()
	x.client = netip.AddrPortFrom(x.client.Addr().Unmap(), x.client.Port())
	dir := "up"
	if down {
		dir = "down"
	}
	if _, err := fmt.Fprintf(c, "%s %d\n", dir, x.id); err != nil {
		tr.t.Fatalf("%s: request: %v", x.name(), err)
	}
	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		defer close(x.done)
		defer c.Close()
		go func() {
			<-tr.finish
			_ = c.SetDeadline(time.Now().Add(finishWithin))
		}()
		if down {
			n, sum, err := receive(c, x)
			x.mu.Lock()
			x.recv, x.recvSum = n, sum
			x.mu.Unlock()
			if err != nil {
				x.fail("client receive: %v", err)
			}
			return
		}
		n, sum, err := tr.send(c, x)
		x.mu.Lock()
		x.sent, x.sentSum = n, sum
		x.mu.Unlock()
		if err != nil {
			x.fail("client send: %v", err)
			return
		}
		// The server's "<bytes> <sha256>" once it has read everything.
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			x.fail("client waiting for the server's count: %v", err)
			return
		}
		if want := fmt.Sprintf("%d %x", n, sum); strings.TrimSpace(line) != want {
			x.fail("server counted %q, client sent %q", strings.TrimSpace(line), want)
		}
	}()
	return x
}

// all returns the transfers in the order they started.
func (tr *traffic) all() []*transfer {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	xs := make([]*transfer, 0, len(tr.xs))
	for id := 1; id <= tr.nextID; id++ {
		xs = append(xs, tr.xs[id])
	}
	return xs
}

// end closes finish and waits for every transfer to end; it returns the names of the lost ones
// with what went wrong.
func (tr *traffic) end() (lost []string, bytes int64) {
	close(tr.finish)
	tr.wg.Wait()
	for _, x := range tr.all() {
		// The server end of a download may record its count a moment after the client's EOF.
		deadline := time.Now().Add(5 * time.Second)
		for x.intact() == "an end did not finish" && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if why := x.intact(); why != "" {
			lost = append(lost, fmt.Sprintf("%s (client %s): %s", x.name(), x.client, why))
		}
		bytes += x.moved.Load()
	}
	return lost, bytes
}

// progress waits until every transfer of xs has moved at least by bytes past from[i] (their
// moved counts at some earlier moment), and fails naming those that did not within timeout.
func progress(t *testing.T, what string, xs []*transfer, from []int64, by int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var slow []string
		for i, x := range xs {
			if got := x.moved.Load() - from[i]; got < by {
				slow = append(slow, fmt.Sprintf("%s %d bytes", x.name(), got))
			}
		}
		if len(slow) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, x := range xs {
				t.Logf("%s client %s: %s", x.name(), x.client, x.tcpInfo())
			}
			t.Fatalf("%s: within %v these transfers moved less than %d bytes: %s", what, timeout, by, strings.Join(slow, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// snapshot returns every transfer's moved count now.
func snapshot(xs []*transfer) []int64 {
	s := make([]int64, len(xs))
	for i, x := range xs {
		s[i] = x.moved.Load()
	}
	return s
}
