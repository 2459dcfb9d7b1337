// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mdlayher/netlink"
)

// OpKind is the kind of change an Op makes.
type OpKind int

// Operation kinds.
const (
	OpCreateService OpKind = iota + 1
	OpUpdateService
	OpDeleteService
	OpCreateDestination
	OpUpdateDestination
	OpDeleteDestination
	OpCreateLocalAddress
	OpDeleteLocalAddress
	OpSetTimeouts
	OpStartDaemon
	OpStopDaemon
	OpZeroService
	OpZeroAll
	OpFlush
)

var opVerbs = map[OpKind]string{
	OpCreateService:      "create service",
	OpUpdateService:      "update service",
	OpDeleteService:      "delete service",
	OpCreateDestination:  "create destination",
	OpUpdateDestination:  "update destination",
	OpDeleteDestination:  "delete destination",
	OpCreateLocalAddress: "create local address",
	OpDeleteLocalAddress: "delete local address",
	OpSetTimeouts:        "set timeouts",
	OpStartDaemon:        "start daemon",
	OpStopDaemon:         "stop daemon",
	OpZeroService:        "zero service",
	OpZeroAll:            "zero all services",
	OpFlush:              "flush",
}

func (k OpKind) verb() string {
	if v, ok := opVerbs[k]; ok {
		return v
	}
	return fmt.Sprintf("operation %d", int(k))
}

// String returns the operation's name, e.g. "create service".
func (k OpKind) String() string { return k.verb() }

// Op is one change. Which fields matter depends on Kind: Service for
// service operations and as the parent of destination and local-address
// operations, Destination, LocalAddress, Timeouts or Daemon.
type Op struct {
	Kind         OpKind
	Service      Service
	Destination  Destination
	LocalAddress LocalAddress
	Timeouts     Timeouts
	Daemon       Daemon
}

// object describes the op's object for error messages.
func (o Op) object() string {
	switch o.Kind {
	case OpCreateService, OpUpdateService, OpDeleteService, OpZeroService:
		return o.Service.String()
	case OpCreateDestination, OpUpdateDestination, OpDeleteDestination:
		return o.Destination.String() + " of " + o.Service.String()
	case OpCreateLocalAddress, OpDeleteLocalAddress:
		return o.LocalAddress.Address.String() + " of " + o.Service.String()
	case OpStartDaemon, OpStopDaemon:
		return o.Daemon.State.String()
	}
	return ""
}

// Batch is an ordered list of changes for Client.Apply.
type Batch struct {
	// Ops are applied in order.
	Ops []Op
	// StopOnError stops sending after the first failed operation has been
	// seen. Requests are pipelined, so operations already in flight when
	// the failure is reported (at most one window, see Apply) are still
	// applied and reported; the rest are reported as not attempted
	// (ErrNotAttempted).
	StopOnError bool
}

// Add appends op.
func (b *Batch) Add(op Op) { b.Ops = append(b.Ops, op) }

// CreateService appends an OpCreateService.
func (b *Batch) CreateService(s Service) { b.Add(Op{Kind: OpCreateService, Service: s}) }

// UpdateService appends an OpUpdateService.
func (b *Batch) UpdateService(s Service) { b.Add(Op{Kind: OpUpdateService, Service: s}) }

// DeleteService appends an OpDeleteService.
func (b *Batch) DeleteService(s Service) { b.Add(Op{Kind: OpDeleteService, Service: s}) }

// CreateDestination appends an OpCreateDestination.
func (b *Batch) CreateDestination(s Service, d Destination) {
	b.Add(Op{Kind: OpCreateDestination, Service: s, Destination: d})
}

// UpdateDestination appends an OpUpdateDestination.
func (b *Batch) UpdateDestination(s Service, d Destination) {
	b.Add(Op{Kind: OpUpdateDestination, Service: s, Destination: d})
}

// DeleteDestination appends an OpDeleteDestination.
func (b *Batch) DeleteDestination(s Service, d Destination) {
	b.Add(Op{Kind: OpDeleteDestination, Service: s, Destination: d})
}

// CreateLocalAddress appends an OpCreateLocalAddress.
func (b *Batch) CreateLocalAddress(s Service, la LocalAddress) {
	b.Add(Op{Kind: OpCreateLocalAddress, Service: s, LocalAddress: la})
}

// DeleteLocalAddress appends an OpDeleteLocalAddress.
func (b *Batch) DeleteLocalAddress(s Service, la LocalAddress) {
	b.Add(Op{Kind: OpDeleteLocalAddress, Service: s, LocalAddress: la})
}

// Len returns the number of operations.
func (b *Batch) Len() int { return len(b.Ops) }

// ErrNotAttempted marks operations of a StopOnError batch that were not
// sent because an earlier one failed.
var ErrNotAttempted = errors.New("not attempted after an earlier failure")

// OpError is the failure of one operation of a batch.
type OpError struct {
	// Index is the position of the operation in Batch.Ops.
	Index int
	Op    Op
	// Err is an *Error naming the operation and its object.
	Err error
}

// Error implements error.
func (e *OpError) Error() string { return fmt.Sprintf("operation %d: %v", e.Index, e.Err) }

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// BatchError lists the failed operations of a batch, in order.
// errors.Is and errors.As look at every failure.
type BatchError struct {
	Failed []*OpError
}

// Error implements error.
func (e *BatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ipvs: %d operation(s) failed", len(e.Failed))
	for i, f := range e.Failed {
		if i == 3 {
			fmt.Fprintf(&b, "; ... and %d more", len(e.Failed)-3)
			break
		}
		b.WriteString("; ")
		b.WriteString(f.Error())
	}
	return b.String()
}

// Unwrap returns the individual failures.
func (e *BatchError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f
	}
	return errs
}

// request is an encoded operation.
type request struct {
	cmd  uint8
	data []byte
}

// prepare checks op against the cached features and encodes it (c.mu held).
func (c *Client) prepare(op Op) (request, error) {
	verb, obj := op.Kind.verb(), op.object()
	var need Features
	switch op.Kind {
	case OpCreateService, OpUpdateService:
		if op.Service.Flags&FlagSynProxy != 0 {
			need |= FeatureSynProxy
		}
		if op.Service.EstablishedTimeout != 0 {
			need |= FeatureEstTimeout
		}
	case OpCreateDestination, OpUpdateDestination:
		if op.Destination.ForwardMethod == FullNAT {
			need |= FeatureFullNAT
		}
	case OpCreateLocalAddress, OpDeleteLocalAddress:
		need |= FeatureFullNAT
	}
	var have Features
	if need != 0 || op.Kind == OpCreateService || op.Kind == OpUpdateService {
		var err error
		if have, err = c.featuresLocked(); err != nil {
			return request{}, err
		}
		for _, f := range []Features{FeatureFullNAT, FeatureSynProxy, FeatureEstTimeout} {
			if need&f != 0 && !have.Has(f) {
				return request{}, notSupported(verb, obj, f)
			}
		}
	}
	r, err := encodeOp(op, have)
	if err != nil {
		return request{}, &Error{Op: verb, Object: obj, Err: err}
	}
	return r, nil
}

// window is how many requests Apply keeps in flight. Each ack is its own
// skb in the socket's receive queue, so the window is kept well below what
// the default receive buffer holds.
const window = 128

// Apply sends the operations of b on the client's socket, pipelined: up
// to a window of requests goes out in one sendmsg, then their acks are
// collected. Every operation is checked against the module's features
// and encoded before anything is sent, so a batch that needs a missing
// feature fails with ErrNotSupported and changes nothing. The kernel
// applies each operation independently; failures are returned as a
// *BatchError listing each failed operation and why.
func (c *Client) Apply(b *Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	reqs := make([]netlink.Message, len(b.Ops))
	for i, op := range b.Ops {
		r, err := c.prepare(op)
		if err != nil {
			return &BatchError{Failed: []*OpError{{Index: i, Op: op, Err: err}}}
		}
		reqs[i] = netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(c.family), Flags: netlink.Request | netlink.Acknowledge},
			Data:   genlHeader(r.cmd, r.data),
		}
	}
	var failed []*OpError
	fail := func(i int, err error) {
		failed = append(failed, &OpError{Index: i, Op: b.Ops[i], Err: wrapErr(b.Ops[i].Kind.verb(), b.Ops[i].object(), err)})
	}
	for start := 0; start < len(reqs); start += window {
		end := min(start+window, len(reqs))
		if b.StopOnError && len(failed) > 0 {
			for i := start; i < len(reqs); i++ {
				fail(i, ErrNotAttempted)
			}
			break
		}
		sent, err := c.nc.SendMessages(reqs[start:end])
		if err != nil {
			for i := start; i < len(reqs); i++ {
				fail(i, err)
			}
			break
		}
		seqIndex := make(map[uint32]int, len(sent))
		for i, m := range sent {
			seqIndex[m.Header.Sequence] = start + i
		}
		if err := c.collectAcks(seqIndex, fail); err != nil {
			for _, i := range seqIndex {
				fail(i, err)
			}
			for i := end; i < len(reqs); i++ {
				fail(i, ErrNotAttempted)
			}
			break
		}
	}
	if len(failed) == 0 {
		return nil
	}
	sortOpErrors(failed)
	return &BatchError{Failed: failed}
}

// collectAcks reads acks until every sequence in pending is answered,
// reporting failures through fail. pending shrinks as acks arrive; on a
// transport error the still-pending entries are left in it.
func (c *Client) collectAcks(pending map[uint32]int, fail func(int, error)) error {
	for len(pending) > 0 {
		msgs, err := c.nc.Receive()
		if err != nil {
			var oe *netlink.OpError
			if errors.As(err, &oe) && oe.Sequence != 0 {
				if i, ok := pending[oe.Sequence]; ok {
					delete(pending, oe.Sequence)
					fail(i, err)
					continue
				}
			}
			return err
		}
		for _, m := range msgs {
			if m.Header.Type != netlink.Error {
				continue
			}
			delete(pending, m.Header.Sequence)
		}
	}
	return nil
}

func sortOpErrors(errs []*OpError) {
	// insertion sort: failures arrive nearly in order
	for i := 1; i < len(errs); i++ {
		for j := i; j > 0 && errs[j].Index < errs[j-1].Index; j-- {
			errs[j], errs[j-1] = errs[j-1], errs[j]
		}
	}
}
