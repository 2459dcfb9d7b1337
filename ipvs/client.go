// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Client talks to IPVS over generic netlink in one network namespace. It is
// safe for concurrent use: requests are serialised on one socket.
//
// Every method that talks to the kernel takes a context. When the context
// is done before the kernel has answered, the method returns an error
// matching the context's error (errors.Is(err, context.Canceled) or
// context.DeadlineExceeded) and the client closes its socket, so no reply
// of the abandoned request is left for the next call, which opens a new
// socket in the same namespace. Work the kernel does inside one system
// call is not interruptible: the context is seen when that call returns.
// A change the kernel has received may have been applied even when its
// call reports the context's error. Waiting for the client (calls are
// serialised) also ends when the context is done.
type Client struct {
	// sem serialises calls (a mutex whose wait can be abandoned).
	sem chan struct{}
	// nc is the socket; nil after an interrupted call until the next
	// call reopens it with redial (nil when it cannot be reopened).
	nc     *netlink.Conn
	redial func() (*netlink.Conn, error)
	family uint16

	// nsFile is the client's network namespace, for helper sockets.
	nsFile  *os.File
	helpers []*netlink.Conn

	featKnown bool
	features  Features
}

// New opens a client in the calling thread's network namespace.
func New() (*Client, error) {
	return dial(&netlink.Config{MessageBufferSize: recvBufferSize})
}

// NewInNamespace opens a client in the network namespace at path (for
// example /var/run/netns/blue or /proc/1234/ns/net). The client keeps
// working in that namespace whatever thread later uses it.
func NewInNamespace(path string) (*Client, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ipvs: open network namespace: %w", err)
	}
	defer f.Close()
	return NewInNamespaceFD(int(f.Fd()))
}

// NewInNamespaceFD opens a client in the network namespace referred to by
// the open file descriptor fd (the caller keeps ownership of fd).
func NewInNamespaceFD(fd int) (*Client, error) {
	if fd <= 0 {
		return nil, fmt.Errorf("ipvs: invalid network namespace fd %d", fd)
	}
	return dial(&netlink.Config{NetNS: fd, MessageBufferSize: recvBufferSize})
}

func dial(cfg *netlink.Config) (*Client, error) {
	nc, err := dialConn(cfg)
	if err != nil {
		return nil, err
	}
	c, err := newClient(nc)
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	c.nsFile = openNamespace(cfg.NetNS)
	if c.nsFile != nil {
		ns := c.nsFile
		c.redial = func() (*netlink.Conn, error) {
			return dialConn(&netlink.Config{NetNS: int(ns.Fd()), MessageBufferSize: recvBufferSize})
		}
	}
	return c, nil
}

// dialConn opens a generic netlink socket with the client's options.
func dialConn(cfg *netlink.Config) (*netlink.Conn, error) {
	nc, err := netlink.Dial(unix.NETLINK_GENERIC, cfg)
	if err != nil {
		return nil, fmt.Errorf("ipvs: dial generic netlink: %w", err)
	}
	// Best effort: error messages from the kernel. Not NETLINK_CAP_ACK:
	// netlink.Conn finds the extended-ack attributes after the whole echoed
	// request and ignores NLM_F_CAPPED, so a capped error that carries a
	// message would fail to parse ("not enough data for netlink error code").
	_ = nc.SetOption(netlink.ExtendedAcknowledge, true)
	return nc, nil
}

// NewFromDialer opens a client on the generic netlink sockets dial
// returns: one now, more later for parallel listing and to replace a
// socket dropped after an interrupted call. Every socket must reach the
// same IPVS. It is meant for fakes such as package ipvstest, whose
// sockets are netlink.Conns over a netlink.Socket of their own; the
// client then runs exactly the production request, exchange and decode
// path.
func NewFromDialer(dial func() (*netlink.Conn, error)) (*Client, error) {
	nc, err := dial()
	if err != nil {
		return nil, fmt.Errorf("ipvs: dial: %w", err)
	}
	c, err := newClient(nc)
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	c.redial = dial
	return c, nil
}

// newClient resolves the IPVS family on an existing connection (also used
// by tests with nltest fakes).
func newClient(nc *netlink.Conn) (*Client, error) {
	fam, err := genetlink.NewConn(nc).GetFamily(familyName)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			e := &Error{Op: "resolve family", Object: familyName,
				Err: fmt.Errorf("generic netlink family not found, is the ip_vs module loaded? (%w)", err)}
			e.markModule()
			return nil, e
		}
		return nil, wrapErr("resolve family", familyName, err)
	}
	return &Client{sem: make(chan struct{}, 1), nc: nc, family: fam.ID}, nil
}

// Close releases the socket.
func (c *Client) Close() error {
	c.sem <- struct{}{}
	defer c.unlock()
	for _, h := range c.helpers {
		_ = h.Close()
	}
	c.helpers = nil
	if c.nsFile != nil {
		_ = c.nsFile.Close()
		c.nsFile = nil
	}
	if c.nc == nil {
		return nil
	}
	err := c.nc.Close()
	c.nc, c.redial = nil, nil
	return err
}

// Info returns the IPVS version, connection table size and the extension
// features of the running module. The features are cached for the checks
// that guard extension requests.
func (c *Client) Info(ctx context.Context) (Info, error) {
	if err := c.lock(ctx); err != nil {
		return Info{}, err
	}
	defer c.unlock()
	return c.infoLocked(ctx)
}

func (c *Client) infoLocked(ctx context.Context) (Info, error) {
	msgs, err := c.do(ctx, cmdGetInfo, 0, nil)
	if err != nil {
		return Info{}, wrapErr("get info", "", err)
	}
	for _, m := range msgs {
		if m.cmd != cmdSetInfo {
			continue
		}
		info, err := decodeInfo(m.data)
		if err != nil {
			return Info{}, wrapErr("get info", "", err)
		}
		c.features, c.featKnown = info.Features, true
		return info, nil
	}
	return Info{}, &Error{Op: "get info", Err: errors.New("no reply")}
}

// Features returns the cached extension features, asking the kernel once.
func (c *Client) Features(ctx context.Context) (Features, error) {
	if err := c.lock(ctx); err != nil {
		return 0, err
	}
	defer c.unlock()
	return c.featuresLocked(ctx)
}

func (c *Client) featuresLocked(ctx context.Context) (Features, error) {
	if c.featKnown {
		return c.features, nil
	}
	if _, err := c.infoLocked(ctx); err != nil {
		return 0, err
	}
	return c.features, nil
}

// Services lists all virtual services of the namespace, in kernel order.
func (c *Client) Services(ctx context.Context) ([]Service, error) {
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	defer c.unlock()
	msgs, err := c.do(ctx, cmdGetService, netlink.Dump, nil)
	if err != nil {
		return nil, wrapErr("list services", "", err)
	}
	svcs := make([]Service, 0, len(msgs))
	for _, m := range msgs {
		s, ok, err := decodeServiceMsg(m.data)
		if err != nil {
			return nil, wrapErr("list services", "", err)
		}
		if ok {
			svcs = append(svcs, s)
		}
	}
	return svcs, nil
}

// Service returns the service identified by key (Family plus FWMark, or
// Protocol, Address and Port). A missing service gives an error matching
// os.ErrNotExist.
func (c *Client) Service(ctx context.Context, key Service) (Service, error) {
	if err := c.lock(ctx); err != nil {
		return Service{}, err
	}
	defer c.unlock()
	obj := key.String()
	b, err := encodeServiceRequest(key, false, 0)
	if err != nil {
		return Service{}, wrapErr("get service", obj, err)
	}
	msgs, err := c.do(ctx, cmdGetService, 0, b)
	if err != nil {
		return Service{}, wrapErr("get service", obj, err)
	}
	for _, m := range msgs {
		s, ok, err := decodeServiceMsg(m.data)
		if err != nil {
			return Service{}, wrapErr("get service", obj, err)
		}
		if ok {
			return s, nil
		}
	}
	return Service{}, &Error{Op: "get service", Object: obj, Err: unix.ESRCH}
}

// CreateService adds a virtual service. An existing one gives os.ErrExist.
func (c *Client) CreateService(ctx context.Context, s Service) error {
	return c.apply1(ctx, Op{Kind: OpCreateService, Service: s})
}

// UpdateService changes scheduler, flags, persistence, netmask, PE and
// ESTABLISHED timeout of an existing service (all of them: unset fields
// are reset to their defaults, as ipvsadm -E does).
func (c *Client) UpdateService(ctx context.Context, s Service) error {
	return c.apply1(ctx, Op{Kind: OpUpdateService, Service: s})
}

// DeleteService removes a service and its destinations.
func (c *Client) DeleteService(ctx context.Context, s Service) error {
	return c.apply1(ctx, Op{Kind: OpDeleteService, Service: s})
}

// Destinations lists the real servers of a service (newest first, as the
// kernel keeps them). A missing service gives an empty list, as the kernel
// does not report it.
func (c *Client) Destinations(ctx context.Context, svc Service) ([]Destination, error) {
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	defer c.unlock()
	return c.destinationsLocked(ctx, svc)
}

func (c *Client) destinationsLocked(ctx context.Context, svc Service) ([]Destination, error) {
	obj := svc.String()
	b, err := encodeServiceRequest(svc, false, 0)
	if err != nil {
		return nil, wrapErr("list destinations of", obj, err)
	}
	msgs, err := c.do(ctx, cmdGetDest, netlink.Dump, b)
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

// CreateDestination adds a real server to svc.
func (c *Client) CreateDestination(ctx context.Context, svc Service, d Destination) error {
	return c.apply1(ctx, Op{Kind: OpCreateDestination, Service: svc, Destination: d})
}

// UpdateDestination changes forwarding method, weight, thresholds and
// tunnel settings of a real server.
func (c *Client) UpdateDestination(ctx context.Context, svc Service, d Destination) error {
	return c.apply1(ctx, Op{Kind: OpUpdateDestination, Service: svc, Destination: d})
}

// DeleteDestination removes a real server (identified by address and port).
func (c *Client) DeleteDestination(ctx context.Context, svc Service, d Destination) error {
	return c.apply1(ctx, Op{Kind: OpDeleteDestination, Service: svc, Destination: d})
}

// LocalAddresses lists the FULLNAT local addresses of svc (extension).
func (c *Client) LocalAddresses(ctx context.Context, svc Service) ([]LocalAddress, error) {
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	defer c.unlock()
	obj := svc.String()
	if err := c.need(ctx, "list local addresses of", obj, FeatureFullNAT); err != nil {
		return nil, err
	}
	b, err := encodeServiceRequest(svc, false, 0)
	if err != nil {
		return nil, wrapErr("list local addresses of", obj, err)
	}
	msgs, err := c.do(ctx, cmdGetLaddr, netlink.Dump, b)
	if err != nil {
		return nil, wrapErr("list local addresses of", obj, err)
	}
	var las []LocalAddress
	for _, m := range msgs {
		l, ok, err := decodeLaddrMsg(m.data, svc.family())
		if err != nil {
			return nil, wrapErr("list local addresses of", obj, err)
		}
		if ok {
			las = append(las, l)
		}
	}
	return las, nil
}

// CreateLocalAddress adds a FULLNAT local address to svc (extension). The
// address must be configured on the director, in the namespace of the
// service: the kernel refuses another with syscall.EADDRNOTAVAIL (the error's
// Message says why).
func (c *Client) CreateLocalAddress(ctx context.Context, svc Service, la LocalAddress) error {
	return c.apply1(ctx, Op{Kind: OpCreateLocalAddress, Service: svc, LocalAddress: la})
}

// DeleteLocalAddress removes a FULLNAT local address from svc (extension).
func (c *Client) DeleteLocalAddress(ctx context.Context, svc Service, la LocalAddress) error {
	return c.apply1(ctx, Op{Kind: OpDeleteLocalAddress, Service: svc, LocalAddress: la})
}

// Timeouts returns the global TCP, TCP FIN and UDP timeouts.
func (c *Client) Timeouts(ctx context.Context) (Timeouts, error) {
	if err := c.lock(ctx); err != nil {
		return Timeouts{}, err
	}
	defer c.unlock()
	msgs, err := c.do(ctx, cmdGetConfig, 0, nil)
	if err != nil {
		return Timeouts{}, wrapErr("get timeouts", "", err)
	}
	for _, m := range msgs {
		if m.cmd == cmdSetConfig {
			t, err := decodeTimeouts(m.data)
			return t, wrapErr("get timeouts", "", err)
		}
	}
	return Timeouts{}, &Error{Op: "get timeouts", Err: errors.New("no reply")}
}

// SetTimeouts sets the global timeouts; zero fields stay unchanged.
func (c *Client) SetTimeouts(ctx context.Context, t Timeouts) error {
	return c.apply1(ctx, Op{Kind: OpSetTimeouts, Timeouts: t})
}

// Daemons lists the running connection-sync daemons.
func (c *Client) Daemons(ctx context.Context) ([]Daemon, error) {
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	defer c.unlock()
	msgs, err := c.do(ctx, cmdGetDaemon, netlink.Dump, nil)
	if err != nil {
		return nil, wrapErr("list daemons", "", err)
	}
	var ds []Daemon
	for _, m := range msgs {
		d, ok, err := decodeDaemonMsg(m.data)
		if err != nil {
			return nil, wrapErr("list daemons", "", err)
		}
		if ok {
			ds = append(ds, d)
		}
	}
	return ds, nil
}

// StartDaemon starts a sync daemon (os.ErrExist if one of that state runs).
func (c *Client) StartDaemon(ctx context.Context, d Daemon) error {
	return c.apply1(ctx, Op{Kind: OpStartDaemon, Daemon: d})
}

// StopDaemon stops the sync daemon of d.State (os.ErrNotExist if none).
//
// Upstream kernels (every line to date) do not answer a stop that finds
// the daemon's kernel thread not yet run, typically right after
// StartDaemon: kthread_stop() returns -EINTR, IPVS passes it on, and
// netlink acknowledges no -EINTR, although the daemon has stopped. So
// that the call cannot wait forever for that answer, the stop request goes
// out with a GET_INFO request after it, in the same system call; the
// kernel answers requests in order, and when the GET_INFO's answer comes
// without an answer to the stop, the stop has succeeded and StopDaemon
// returns nil. Kernels that answer (the fullnat module does) see no
// difference but the extra GET_INFO. A Batch whose window ends with an
// OpStopDaemon does the same.
func (c *Client) StopDaemon(ctx context.Context, d Daemon) error {
	return c.apply1(ctx, Op{Kind: OpStopDaemon, Daemon: d})
}

// ZeroService zeroes the counters of one service and its destinations.
func (c *Client) ZeroService(ctx context.Context, s Service) error {
	return c.apply1(ctx, Op{Kind: OpZeroService, Service: s})
}

// ZeroAll zeroes the counters of every service.
func (c *Client) ZeroAll(ctx context.Context) error {
	return c.apply1(ctx, Op{Kind: OpZeroAll})
}

// Flush deletes every service of the namespace.
func (c *Client) Flush(ctx context.Context) error {
	return c.apply1(ctx, Op{Kind: OpFlush})
}

// apply1 runs one acknowledged change.
func (c *Client) apply1(ctx context.Context, op Op) error {
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	req, err := c.prepare(ctx, op)
	if err != nil {
		return err
	}
	if op.Kind == OpStopDaemon {
		// see StopDaemon: the kernel may leave the request unanswered
		err = c.call(ctx, func(nc *netlink.Conn) error {
			return exchangeFenced(nc, c.family, req.msg)
		})
	} else {
		_, err = c.doMsg(ctx, netlink.Acknowledge, req.msg)
	}
	return opErr(&op, err)
}

// need returns ErrNotSupported (wrapped) unless the module has f.
func (c *Client) need(ctx context.Context, op, obj string, f Features) error {
	have, err := c.featuresLocked(ctx)
	if err != nil {
		return err
	}
	if !have.Has(f) {
		return notSupported(op, obj, f)
	}
	return nil
}

// genlMsg is a decoded generic netlink message of the IPVS family.
type genlMsg struct {
	cmd  uint8
	data []byte
}

// do sends one request and collects its replies (client locked).
func (c *Client) do(ctx context.Context, cmd uint8, flags netlink.HeaderFlags, data []byte) ([]genlMsg, error) {
	return c.doMsg(ctx, flags, genlHeader(cmd, data))
}

// doMsg sends one genetlink payload (header and attributes) and collects
// the replies (client locked).
func (c *Client) doMsg(ctx context.Context, flags netlink.HeaderFlags, msg []byte) ([]genlMsg, error) {
	var msgs []genlMsg
	err := c.call(ctx, func(nc *netlink.Conn) error {
		var err error
		msgs, err = exchange(nc, c.family, flags, msg)
		return err
	})
	return msgs, err
}

// genlHeader prefixes data with a genetlink header for cmd.
func genlHeader(cmd uint8, data []byte) []byte {
	b := make([]byte, 4+len(data))
	b[0] = cmd
	b[1] = familyVersion
	copy(b[4:], data)
	return b
}

// lock waits for the client (or for ctx to be done).
func (c *Client) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ipvs: %w", err)
	}
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ipvs: waiting for the client's earlier call: %w", ctx.Err())
	}
}

func (c *Client) unlock() { <-c.sem }

// errClosed is returned by calls on a closed client.
var errClosed = errors.New("client closed")

// connLocked returns the client's socket, reopening it after an
// interrupted call (client locked).
func (c *Client) connLocked() (*netlink.Conn, error) {
	if c.nc != nil {
		return c.nc, nil
	}
	if c.redial == nil {
		return nil, fmt.Errorf("%w (or its socket was closed by an interrupted call and cannot be reopened)", errClosed)
	}
	nc, err := c.redial()
	if err != nil {
		return nil, fmt.Errorf("reopen the socket after an interrupted call: %w", err)
	}
	c.nc = nc
	return nc, nil
}

// call runs fn on the client's socket (client locked). When ctx is done
// before fn returns, the socket is closed, which ends fn's wait, and ctx's
// error is returned. After that, or after an error that may have left
// replies unread, the socket is dropped and the next call opens a new one.
func (c *Client) call(ctx context.Context, fn func(nc *netlink.Conn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	nc, err := c.connLocked()
	if err != nil {
		return err
	}
	stop := closeWhenDone(ctx, nc)
	err = fn(nc)
	interrupted := !stop()
	if interrupted || (err != nil && !kernelAnswer(err)) {
		_ = nc.Close()
		c.nc = nil
	}
	if interrupted && err != nil && !kernelAnswer(err) {
		return ctx.Err()
	}
	return err
}

// closeWhenDone closes the sockets when ctx is done. The returned stop
// function disarms it and reports false when they have been (or are
// being) closed.
func closeWhenDone(ctx context.Context, ncs ...*netlink.Conn) (stop func() bool) {
	if ctx.Done() == nil {
		return func() bool { return true }
	}
	return context.AfterFunc(ctx, func() {
		for _, nc := range ncs {
			_ = nc.Close()
		}
	})
}
