// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ServiceDestinations is a service with its real servers.
type ServiceDestinations struct {
	Service      Service
	Destinations []Destination
	// LocalAddresses are the service's FULLNAT local addresses when the
	// kernel lists them in the same dump (FeatureTableLaddrs); nil
	// otherwise, when Client.LocalAddresses gives them.
	LocalAddresses []LocalAddress
}

// A ListOption changes what ServicesWithDestinations lists.
type ListOption func(*listOptions)

type listOptions struct {
	noStats bool
}

// WithoutStats lets ServicesWithDestinations leave out the counters, for
// a listing that shows none: with FeatureTableNoStats the kernel sends
// none, and the Stats and Stats64 of every service and destination are
// zero. That makes the dump about half as large. Other kernels send them
// anyway, and they are listed.
func WithoutStats() ListOption {
	return func(o *listOptions) { o.noStats = true }
}

// maxListWorkers bounds the extra sockets ServicesWithDestinations uses.
const maxListWorkers = 4

// ServicesWithDestinations lists every service and its destinations, as
// "ipvsadm -L" needs. With FeatureTableDump (our module) this is one dump
// of the whole table; when the kernel reports that the table changed
// during it (NLM_F_DUMP_INTR) the dump is repeated, and after a few
// interrupted attempts the error matches ErrDumpInterrupted. Without the
// feature it is one dump of services and one dump per service; the per-service dumps
// run in parallel on a few extra sockets in the client's namespace (one
// dump at a time is all a netlink socket allows). Without extra sockets
// (a client that cannot dial more, or when they cannot be opened) the
// dumps run one after the other on the client's socket. A service deleted between the two steps
// is listed with no destinations, as with ipvsadm. Options (WithoutStats)
// change what is listed.
func (c *Client) ServicesWithDestinations(ctx context.Context, opts ...ListOption) ([]ServiceDestinations, error) {
	var o listOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	if have, err := c.featuresLocked(ctx); err == nil && have.Has(FeatureTableDump) {
		defer c.unlock()
		return c.tableLocked(ctx, o.noStats && have.Has(FeatureTableNoStats))
	}
	c.unlock()
	svcs, err := c.Services(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	defer c.unlock()
	out := make([]ServiceDestinations, len(svcs))
	for i, s := range svcs {
		out[i].Service = s
	}
	workers := c.listWorkersLocked(len(svcs))
	if len(workers) < 2 {
		for i := range out {
			ds, err := c.destinationsLocked(ctx, out[i].Service)
			if err != nil {
				return nil, err
			}
			out[i].Destinations = ds
		}
		return out, nil
	}
	// ctx done closes the helper sockets, which ends the dumps
	stop := closeWhenDone(ctx, workers...)
	var (
		wg    sync.WaitGroup
		next  = make(chan int)
		errMu sync.Mutex
		first error
	)
	for _, w := range workers {
		wg.Add(1)
		go func(w *netlink.Conn) {
			defer wg.Done()
			for i := range next {
				ds, err := c.destinationsVia(w, out[i].Service)
				if err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
					continue
				}
				out[i].Destinations = ds
			}
		}(w)
	}
	for i := range out {
		next <- i
	}
	close(next)
	wg.Wait()
	if !stop() || (first != nil && !kernelAnswer(first)) {
		// replies may be left unread: drop the helper sockets
		for _, w := range c.helpers {
			_ = w.Close()
		}
		c.helpers = nil
		if err := ctx.Err(); err != nil {
			return nil, wrapErr("list destinations", "", err)
		}
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

// destinationsVia dumps the destinations of svc on the helper socket w.
func (c *Client) destinationsVia(w *netlink.Conn, svc Service) ([]Destination, error) {
	obj := svc.String()
	b, err := encodeServiceRequest(svc, false, 0)
	if err != nil {
		return nil, wrapErr("list destinations of", obj, err)
	}
	msgs, err := exchange(w, c.family, netlink.Dump, genlHeader(cmdGetDest, b))
	if err != nil {
		return nil, wrapErr("list destinations of", obj, err)
	}
	ds := make([]Destination, 0, len(msgs))
	for _, m := range msgs {
		d, ok, err := decodeDestMsg(m.data, svc.family())
		if err != nil {
			return nil, wrapErr("list destinations of", obj, err)
		}
		if ok {
			ds = append(ds, d)
		}
	}
	return ds, nil
}

// listWorkersLocked returns the helper sockets for parallel listing,
// opening them on first use in the client's namespace (client locked). It
// returns nil when parallel listing is not worth it or not possible.
func (c *Client) listWorkersLocked(jobs int) []*netlink.Conn {
	n := min(runtime.GOMAXPROCS(0), maxListWorkers)
	if c.redial == nil || n < 2 || jobs < 16 {
		return nil
	}
	for len(c.helpers) < n {
		nc, err := c.redial()
		if err != nil {
			break
		}
		c.helpers = append(c.helpers, nc)
	}
	return c.helpers
}

// openNamespace returns a handle on the namespace a client lives in, so
// that helper sockets can be opened there later: a duplicate of fd, or
// the calling thread's namespace when fd is 0. Errors leave the client
// without helpers.
func openNamespace(fd int) *os.File {
	if fd > 0 {
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil
		}
		return os.NewFile(uintptr(nfd), "netns")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return nil
	}
	return f
}
