// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"context"
	"errors"
	"iter"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// stallKernel is a fake IPVS whose service dump can stall half-way: the
// first datagram (half the services) arrives, the rest never does. Each
// socket dialled on it is a stallSocket, whose blocked read ends only when
// the socket is closed, as a real one's does.
type stallKernel struct {
	t     testing.TB
	svcs  []Service
	stall atomic.Bool
	dials atomic.Int32
}

func (k *stallKernel) dial() (*netlink.Conn, error) {
	k.dials.Add(1)
	return netlink.NewConn(&stallSocket{k: k, closed: make(chan struct{})}, 1), nil
}

type stallSocket struct {
	k         *stallKernel
	mu        sync.Mutex
	queue     [][]netlink.Message
	blockNext bool
	closeOnce sync.Once
	closed    chan struct{}
}

func (s *stallSocket) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

func (s *stallSocket) Send(m netlink.Message) error { return s.SendMessages([]netlink.Message{m}) }

func (s *stallSocket) SendMessages(ms []netlink.Message) error {
	select {
	case <-s.closed:
		return net.ErrClosed
	default:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range ms {
		if m.Header.Type == unix.GENL_ID_CTRL {
			s.queue = append(s.queue, familyReply(s.k.t, m))
			continue
		}
		switch m.Data[0] {
		case cmdGetService:
			var msgs []netlink.Message
			for _, svc := range s.k.svcs {
				b, err := encodeServiceRequest(svc, true, 0)
				if err != nil {
					s.k.t.Errorf("encode %v: %v", svc, err)
				}
				msgs = append(msgs, netlink.Message{
					Header: netlink.Header{Type: testFamilyID, Flags: netlink.Multi, Sequence: m.Header.Sequence},
					Data:   genlHeader(cmdNewService, b),
				})
			}
			half := len(msgs) / 2
			s.queue = append(s.queue, msgs[:half])
			if s.k.stall.Load() {
				s.blockNext = true // the rest never comes
				continue
			}
			done := netlink.Message{Header: netlink.Header{Type: netlink.Done, Flags: netlink.Multi, Sequence: m.Header.Sequence}, Data: make([]byte, 4)}
			s.queue = append(s.queue, append(msgs[half:], done))
		default:
			// any change: acknowledged, or stalled
			if s.k.stall.Load() {
				s.blockNext = true
				continue
			}
			s.queue = append(s.queue, []netlink.Message{ackMsg(m, 0)})
		}
	}
	return nil
}

func (s *stallSocket) Receive() ([]netlink.Message, error) { return receiveAll(s.ReceiveIter()) }

func (s *stallSocket) ReceiveIter() iter.Seq2[netlink.Message, error] {
	return func(yield func(netlink.Message, error) bool) {
		s.mu.Lock()
		if len(s.queue) == 0 {
			block := s.blockNext
			s.mu.Unlock()
			if !block {
				s.k.t.Errorf("receive with nothing queued")
			}
			<-s.closed
			yield(netlink.Message{}, net.ErrClosed)
			return
		}
		dg := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		for _, m := range dg {
			if !yield(m, nil) {
				return
			}
		}
	}
}

func stallClient(t *testing.T, n int) (*Client, *stallKernel) {
	t.Helper()
	k := &stallKernel{t: t}
	for i := range n {
		k.svcs = append(k.svcs, Service{Family: INET, Protocol: TCP,
			Address: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), Port: 80, Scheduler: "rr"})
	}
	nc, _ := k.dial()
	c, err := newClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	c.redial = k.dial
	t.Cleanup(func() { _ = c.Close() })
	return c, k
}

// checkListing asserts that c lists exactly k's services.
func checkListing(t *testing.T, c *Client, k *stallKernel) {
	t.Helper()
	got, err := c.Services(t.Context())
	if err != nil {
		t.Fatalf("listing after the interrupted call: %v", err)
	}
	if len(got) != len(k.svcs) {
		t.Fatalf("listing after the interrupted call: %d services, want %d", len(got), len(k.svcs))
	}
	for i := range got {
		if got[i].Address != k.svcs[i].Address || got[i].Port != 80 || got[i].Scheduler != "rr" {
			t.Fatalf("service %d = %v, want %v", i, got[i], k.svcs[i])
		}
	}
}

func TestCancelStalledDump(t *testing.T) {
	c, k := stallClient(t, 10)
	checkListing(t, c, k)

	k.stall.Store(true)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Services(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled dump: err = %v, want context.Canceled", err)
	}
	var ie *Error
	if !errors.As(err, &ie) || ie.Op != "list services" {
		t.Errorf("cancelled dump: err = %v, want an *Error naming the operation", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled dump returned after %v", d)
	}

	// the half-read dump is not seen by the next call: a new socket
	k.stall.Store(false)
	checkListing(t, c, k)
	if n := k.dials.Load(); n != 2 {
		t.Errorf("%d sockets dialled, want 2 (one reopened after the cancellation)", n)
	}
	checkListing(t, c, k) // and it stays in use
	if n := k.dials.Load(); n != 2 {
		t.Errorf("%d sockets dialled, want 2", n)
	}
}

func TestDeadlineStalledChange(t *testing.T) {
	c, k := stallClient(t, 4)
	k.stall.Store(true)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := c.CreateService(ctx, k.svcs[0])
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled change: err = %v, want context.DeadlineExceeded", err)
	}
	k.stall.Store(false)
	if err := c.DeleteService(t.Context(), k.svcs[0]); err != nil {
		t.Fatalf("change after the timed-out one: %v", err)
	}
	checkListing(t, c, k)
}

// TestDeadlineStalledDaemonStop: a stop whose answers never come (not
// even the fence's) ends with the context, and the client goes on.
func TestDeadlineStalledDaemonStop(t *testing.T) {
	c, k := stallClient(t, 4)
	k.stall.Store(true)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	d := Daemon{State: DaemonMaster, Interface: "sync0"}
	if err := c.StopDaemon(ctx, d); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled daemon stop: err = %v, want context.DeadlineExceeded", err)
	}
	k.stall.Store(false)
	if err := c.StopDaemon(t.Context(), d); err != nil {
		t.Fatalf("daemon stop after the timed-out one: %v", err)
	}
	checkListing(t, c, k)
}

func TestCancelWaitingForClient(t *testing.T) {
	c, k := stallClient(t, 4)
	k.stall.Store(true)
	ctx1, cancel1 := context.WithCancel(t.Context())
	first := make(chan error)
	go func() {
		_, err := c.Services(ctx1)
		first <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the first call take the client
	ctx2, cancel2 := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel2()
	if _, err := c.Info(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("call waiting behind a stalled one: err = %v, want context.DeadlineExceeded", err)
	}
	cancel1()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("stalled call: err = %v, want context.Canceled", err)
	}
	k.stall.Store(false)
	checkListing(t, c, k)
}

func TestCancelApply(t *testing.T) {
	c, k := stallClient(t, 4)
	c.featKnown = true
	var b Batch
	for i := range window + 10 {
		b.CreateService(Service{Family: INET, Protocol: UDP, Address: netip.AddrFrom4([4]byte{198, 19, 0, byte(i)}), Port: 53, Scheduler: "rr"})
	}
	k.stall.Store(true)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := c.Apply(ctx, &b)
	var be *BatchError
	if !errors.As(err, &be) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled batch: err = %v, want a *BatchError matching context.DeadlineExceeded", err)
	}
	if len(be.Failed) != len(b.Ops) {
		t.Errorf("stalled batch: %d failures, want all %d", len(be.Failed), len(b.Ops))
	}
	if last := be.Failed[len(be.Failed)-1]; !errors.Is(last, ErrNotAttempted) {
		t.Errorf("operation after the stalled window: %v, want ErrNotAttempted", last)
	}
	k.stall.Store(false)
	if err := c.Apply(t.Context(), &b); err != nil {
		t.Fatalf("batch after the timed-out one: %v", err)
	}
	checkListing(t, c, k)
}

func TestCancelledBeforeSending(t *testing.T) {
	c, k := stallClient(t, 4)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Flush with a cancelled context: %v, want context.Canceled", err)
	}
	if n := k.dials.Load(); n != 1 {
		t.Errorf("%d sockets dialled, want 1 (nothing sent)", n)
	}
	checkListing(t, c, k)
}
