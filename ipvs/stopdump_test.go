// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"iter"
	"net"
	"sync"
	"testing"

	"github.com/mdlayher/netlink"
)

// dumpSocket answers any request with a dump of n datagrams of one
// message each, counting the datagrams read.
type dumpSocket struct {
	mu     sync.Mutex
	n      int
	seq    uint32
	read   int
	closed bool
}

func (s *dumpSocket) Close() error                            { s.mu.Lock(); s.closed = true; s.mu.Unlock(); return nil }
func (s *dumpSocket) Send(m netlink.Message) error            { s.seq = m.Header.Sequence; return nil }
func (s *dumpSocket) SendMessages(ms []netlink.Message) error { return s.Send(ms[len(ms)-1]) }
func (s *dumpSocket) Receive() ([]netlink.Message, error)     { return receiveAll(s.ReceiveIter()) }

func (s *dumpSocket) ReceiveIter() iter.Seq2[netlink.Message, error] {
	return func(yield func(netlink.Message, error) bool) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			yield(netlink.Message{}, net.ErrClosed)
			return
		}
		s.read++
		last := s.read >= s.n
		s.mu.Unlock()
		h := netlink.Header{Type: 0x23, Flags: netlink.Multi, Sequence: s.seq}
		if last {
			h.Type = netlink.Done
			yield(netlink.Message{Header: h, Data: make([]byte, 4)}, nil)
			return
		}
		yield(netlink.Message{Header: h, Data: []byte{cmdGetConn, 1, 0, 0}}, nil)
	}
}

// A consumer that stops early ends the exchange at once: the rest of the
// dump is not read (netlink.Conn alone would drain it).
func TestExchangeFuncStopsReading(t *testing.T) {
	s := &dumpSocket{n: 1000}
	nc := netlink.NewConn(s, 1)
	got := 0
	err := exchangeFunc(nc, 0x23, netlink.Dump, genlHeader(cmdGetConn, nil), func(genlMsg) bool {
		got++
		return got < 3
	})
	if err != errStopped || got != 3 {
		t.Fatalf("exchangeFunc: %v after %d messages, want errStopped after 3", err, got)
	}
	if s.read > 4 {
		t.Errorf("%d of 1000 datagrams read after the consumer stopped at the third", s.read)
	}
}
