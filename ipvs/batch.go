// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
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

// ServiceKeep names extension settings of a service that an
// OpUpdateService leaves as the kernel has them instead of replacing
// them with the Op's.
type ServiceKeep uint8

// Settings an update can keep.
const (
	// KeepSynProxy leaves the service's FlagSynProxy as it is (the
	// update's flags are applied with a mask without it).
	KeepSynProxy ServiceKeep = 1 << iota
	// KeepEstablishedTimeout leaves the service's EstablishedTimeout as
	// it is (the update does not carry one).
	KeepEstablishedTimeout
	// KeepProxyProtocol leaves the service's ProxyProtocol as it is (the
	// update does not carry one).
	KeepProxyProtocol
)

// Op is one change. Which fields matter depends on Kind: Service for
// service operations and as the parent of destination and local-address
// operations, Destination, LocalAddress, Timeouts or Daemon. Keep applies
// to OpUpdateService only.
type Op struct {
	Kind         OpKind
	Service      Service
	Destination  Destination
	LocalAddress LocalAddress
	Timeouts     Timeouts
	Daemon       Daemon
	Keep         ServiceKeep
}

// object describes the op's object for error messages.
func (o *Op) object() string {
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

// Grow makes room for n more operations (an Op is large: sizing a big
// batch up front saves copying it while it grows).
func (b *Batch) Grow(n int) { b.Ops = slices.Grow(b.Ops, n) }

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
	cmd uint8
	// msg is the genetlink header and the attributes.
	msg []byte
}

// prepare checks op against the cached features and encodes it (client locked).
func (c *Client) prepare(ctx context.Context, op Op) (request, error) {
	have, err := c.opFeatures(ctx, &op)
	if err != nil {
		return request{}, err
	}
	r, err := encodeOp(&op, have)
	if err != nil {
		return request{}, &Error{Op: op.Kind.verb(), Object: op.object(), Err: err}
	}
	return r, nil
}

// opFeatures returns the module's features when op depends on them, and
// ErrNotSupported when op needs one the module lacks (client locked).
func (c *Client) opFeatures(ctx context.Context, op *Op) (Features, error) {
	var need Features
	switch op.Kind {
	case OpCreateService, OpUpdateService:
		if op.Service.Flags&FlagSynProxy != 0 {
			need |= FeatureSynProxy
		}
		if op.Service.EstablishedTimeout != 0 {
			need |= FeatureEstTimeout
		}
		if op.Service.ProxyProtocol != ProxyProtocolOff {
			need |= FeatureProxyProtocol
		}
	case OpCreateDestination, OpUpdateDestination:
		if op.Destination.ForwardMethod == FullNAT {
			need |= FeatureFullNAT
		}
	case OpCreateLocalAddress, OpDeleteLocalAddress:
		need |= FeatureFullNAT
	}
	if need == 0 && op.Kind != OpCreateService && op.Kind != OpUpdateService {
		return 0, nil
	}
	have, err := c.featuresLocked(ctx)
	if err != nil {
		return 0, &Error{Op: op.Kind.verb(), Object: op.object(), Err: fmt.Errorf("reading the module's features: %w", err)}
	}
	for _, f := range []Features{FeatureFullNAT, FeatureSynProxy, FeatureEstTimeout, FeatureProxyProtocol} {
		if need&f != 0 && !have.Has(f) {
			return 0, notSupported(op.Kind.verb(), op.object(), f)
		}
	}
	return have, nil
}

// encodeBatch encodes every operation as a netlink message (header
// fields other than the length filled in at send time) into one buffer;
// offs[i] is where message i starts, offs[len(ops)] the end.
func (c *Client) encodeBatch(ctx context.Context, ops []Op) (buf []byte, offs []int, err error) {
	buf = make([]byte, 0, len(ops)*176)
	offs = make([]int, len(ops)+1)
	for i := range ops {
		op := &ops[i]
		have, err := c.opFeatures(ctx, op)
		if err != nil {
			return nil, nil, &BatchError{Failed: []*OpError{{Index: i, Op: *op, Err: err}}}
		}
		start := len(buf)
		offs[i] = start
		w := attrWriter{b: append(buf, make([]byte, nlHdrLen+4)...)}
		cmd, err := encodeOpTo(&w, op, have)
		if err != nil {
			return nil, nil, &BatchError{Failed: []*OpError{{Index: i, Op: *op, Err: &Error{Op: op.Kind.verb(), Object: op.object(), Err: err}}}}
		}
		buf = w.b
		binary.NativeEndian.PutUint32(buf[start:], uint32(len(buf)-start))
		buf[start+nlHdrLen] = cmd
		buf[start+nlHdrLen+1] = familyVersion
	}
	offs[len(ops)] = len(buf)
	return buf, offs, nil
}

// window is how many requests Apply sends per sendmsg. Only the last
// request of a window asks for an ack; the kernel answers the others only
// when they fail, so a window costs one sendmsg and one read plus one read
// per failure. A window's worth of error messages fits the socket's
// default receive buffer.
const window = 128

// Apply sends the operations of b on the client's socket, pipelined: a
// window of requests goes out in one sendmsg, and only failures and the
// window's last request are answered by the kernel. Every operation is
// checked against the module's features and encoded before anything is
// sent, so a batch that needs a missing feature fails with
// ErrNotSupported and changes nothing. The kernel applies each operation
// independently and in order; failures are returned as a *BatchError
// listing each failed operation and why.
//
// When ctx is done, the window in flight is reported with ctx's error
// (its outcome is unknown: the kernel may have applied some of it) and
// the rest as ErrNotAttempted (also matching ctx's error).
func (c *Client) Apply(ctx context.Context, b *Batch) error {
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	buf, offs, err := c.encodeBatch(ctx, b.Ops)
	if err != nil {
		return err
	}
	var failed []*OpError
	fail := func(i int, err error) {
		failed = append(failed, &OpError{Index: i, Op: b.Ops[i], Err: opErr(&b.Ops[i], err)})
	}
	for start := 0; start < len(b.Ops); start += window {
		end := min(start+window, len(b.Ops))
		if b.StopOnError && len(failed) > 0 {
			for i := start; i < len(b.Ops); i++ {
				fail(i, ErrNotAttempted)
			}
			break
		}
		if err := ctx.Err(); err != nil {
			for i := start; i < len(b.Ops); i++ {
				fail(i, fmt.Errorf("%w: %w", ErrNotAttempted, err))
			}
			break
		}
		err := c.call(ctx, func(nc *netlink.Conn) error {
			return sendWindow(nc, c.family, buf, offs[start:end+1], func(i int, err error) { fail(start+i, err) })
		})
		if err != nil {
			// The transport failed: what the kernel did with this
			// window is unknown.
			for i := start; i < end; i++ {
				fail(i, fmt.Errorf("outcome unknown: %w", err))
			}
			for i := end; i < len(b.Ops); i++ {
				fail(i, ErrNotAttempted)
			}
			break
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &BatchError{Failed: sortOpErrors(failed)}
}

// sortOpErrors orders failures by index, keeping the first report of an
// operation (a kernel answer wins over a later "outcome unknown").
func sortOpErrors(errs []*OpError) []*OpError {
	// insertion sort (stable): failures arrive nearly in order
	for i := 1; i < len(errs); i++ {
		for j := i; j > 0 && errs[j].Index < errs[j-1].Index; j-- {
			errs[j], errs[j-1] = errs[j-1], errs[j]
		}
	}
	out := errs[:0]
	for i, e := range errs {
		if i > 0 && e.Index == errs[i-1].Index {
			continue
		}
		out = append(out, e)
	}
	return out
}
