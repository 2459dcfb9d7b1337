// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Client talks to IPVS over generic netlink in one network namespace. It is
// safe for concurrent use: requests are serialised on one socket.
type Client struct {
	mu     sync.Mutex
	nc     *netlink.Conn
	raw    *rawConn // nil over fakes
	family uint16

	// nsFile is the client's network namespace, for helper sockets.
	nsFile      *os.File
	helpers     []*rawConn
	helperConns []*netlink.Conn

	featKnown bool
	features  Features
}

// New opens a client in the calling thread's network namespace.
func New() (*Client, error) {
	return dial(&netlink.Config{MessageBufferSize: recvBufferSize})
}

// recvBufferSize is netlink.Conn's fixed receive buffer (no peek before
// each read); see rawBufSize.
const recvBufferSize = rawBufSize

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
	nc, err := netlink.Dial(unix.NETLINK_GENERIC, cfg)
	if err != nil {
		return nil, fmt.Errorf("ipvs: dial generic netlink: %w", err)
	}
	c, err := newClient(nc)
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	// Best effort: error messages from the kernel, and short error acks.
	_ = nc.SetOption(netlink.ExtendedAcknowledge, true)
	_ = nc.SetOption(netlink.CapAcknowledge, true)
	c.nsFile = openNamespace(cfg.NetNS)
	return c, nil
}

// newClient resolves the IPVS family on an existing connection (also used
// by tests with nltest fakes).
func newClient(nc *netlink.Conn) (*Client, error) {
	fam, err := genetlink.NewConn(nc).GetFamily(familyName)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &Error{Op: "resolve family", Object: familyName,
				Err: fmt.Errorf("generic netlink family not found, is the ip_vs module loaded? (%w)", err)}
		}
		return nil, wrapErr("resolve family", familyName, err)
	}
	return &Client{nc: nc, raw: newRawConn(nc), family: fam.ID}, nil
}

// Close releases the socket.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.helperConns {
		_ = h.Close()
	}
	c.helpers, c.helperConns = nil, nil
	if c.nsFile != nil {
		_ = c.nsFile.Close()
		c.nsFile = nil
	}
	return c.nc.Close()
}

// Info returns the IPVS version, connection table size and the extension
// features of the running module. The features are cached for the checks
// that guard extension requests.
func (c *Client) Info() (Info, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.infoLocked()
}

func (c *Client) infoLocked() (Info, error) {
	msgs, err := c.do(cmdGetInfo, 0, nil)
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
func (c *Client) Features() (Features, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.featuresLocked()
}

func (c *Client) featuresLocked() (Features, error) {
	if c.featKnown {
		return c.features, nil
	}
	if _, err := c.infoLocked(); err != nil {
		return 0, err
	}
	return c.features, nil
}

// Services lists all virtual services of the namespace, in kernel order.
func (c *Client) Services() ([]Service, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	msgs, err := c.do(cmdGetService, netlink.Dump, nil)
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
func (c *Client) Service(key Service) (Service, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	obj := key.String()
	b, err := encodeServiceRequest(key, false, 0)
	if err != nil {
		return Service{}, wrapErr("get service", obj, err)
	}
	msgs, err := c.do(cmdGetService, 0, b)
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
func (c *Client) CreateService(s Service) error {
	return c.apply1(Op{Kind: OpCreateService, Service: s})
}

// UpdateService changes scheduler, flags, persistence, netmask, PE and
// ESTABLISHED timeout of an existing service (all of them: unset fields
// are reset to their defaults, as ipvsadm -E does).
func (c *Client) UpdateService(s Service) error {
	return c.apply1(Op{Kind: OpUpdateService, Service: s})
}

// DeleteService removes a service and its destinations.
func (c *Client) DeleteService(s Service) error {
	return c.apply1(Op{Kind: OpDeleteService, Service: s})
}

// Destinations lists the real servers of a service (newest first, as the
// kernel keeps them). A missing service gives an empty list, as the kernel
// does not report it.
func (c *Client) Destinations(svc Service) ([]Destination, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.destinationsLocked(svc)
}

func (c *Client) destinationsLocked(svc Service) ([]Destination, error) {
	obj := svc.String()
	b, err := encodeServiceRequest(svc, false, 0)
	if err != nil {
		return nil, wrapErr("list destinations of", obj, err)
	}
	msgs, err := c.do(cmdGetDest, netlink.Dump, b)
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
func (c *Client) CreateDestination(svc Service, d Destination) error {
	return c.apply1(Op{Kind: OpCreateDestination, Service: svc, Destination: d})
}

// UpdateDestination changes forwarding method, weight, thresholds and
// tunnel settings of a real server.
func (c *Client) UpdateDestination(svc Service, d Destination) error {
	return c.apply1(Op{Kind: OpUpdateDestination, Service: svc, Destination: d})
}

// DeleteDestination removes a real server (identified by address and port).
func (c *Client) DeleteDestination(svc Service, d Destination) error {
	return c.apply1(Op{Kind: OpDeleteDestination, Service: svc, Destination: d})
}

// LocalAddresses lists the FULLNAT local addresses of svc (extension).
func (c *Client) LocalAddresses(svc Service) ([]LocalAddress, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	obj := svc.String()
	if err := c.need("list local addresses of", obj, FeatureFullNAT); err != nil {
		return nil, err
	}
	b, err := encodeServiceRequest(svc, false, 0)
	if err != nil {
		return nil, wrapErr("list local addresses of", obj, err)
	}
	msgs, err := c.do(cmdGetLaddr, netlink.Dump, b)
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
func (c *Client) CreateLocalAddress(svc Service, la LocalAddress) error {
	return c.apply1(Op{Kind: OpCreateLocalAddress, Service: svc, LocalAddress: la})
}

// DeleteLocalAddress removes a FULLNAT local address from svc (extension).
func (c *Client) DeleteLocalAddress(svc Service, la LocalAddress) error {
	return c.apply1(Op{Kind: OpDeleteLocalAddress, Service: svc, LocalAddress: la})
}

// Timeouts returns the global TCP, TCP FIN and UDP timeouts.
func (c *Client) Timeouts() (Timeouts, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	msgs, err := c.do(cmdGetConfig, 0, nil)
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
func (c *Client) SetTimeouts(t Timeouts) error {
	return c.apply1(Op{Kind: OpSetTimeouts, Timeouts: t})
}

// Daemons lists the running connection-sync daemons.
func (c *Client) Daemons() ([]Daemon, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	msgs, err := c.do(cmdGetDaemon, netlink.Dump, nil)
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
func (c *Client) StartDaemon(d Daemon) error {
	return c.apply1(Op{Kind: OpStartDaemon, Daemon: d})
}

// StopDaemon stops the sync daemon of d.State (os.ErrNotExist if none).
func (c *Client) StopDaemon(d Daemon) error {
	return c.apply1(Op{Kind: OpStopDaemon, Daemon: d})
}

// ZeroService zeroes the counters of one service and its destinations.
func (c *Client) ZeroService(s Service) error {
	return c.apply1(Op{Kind: OpZeroService, Service: s})
}

// ZeroAll zeroes the counters of every service.
func (c *Client) ZeroAll() error {
	return c.apply1(Op{Kind: OpZeroAll})
}

// Flush deletes every service of the namespace.
func (c *Client) Flush() error {
	return c.apply1(Op{Kind: OpFlush})
}

// apply1 runs one acknowledged change.
func (c *Client) apply1(op Op) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	req, err := c.prepare(op)
	if err != nil {
		return err
	}
	_, err = c.doMsg(netlink.Acknowledge, req.msg)
	return wrapErr(op.Kind.verb(), op.object(), err)
}

// need returns ErrNotSupported (wrapped) unless the module has f.
func (c *Client) need(op, obj string, f Features) error {
	have, err := c.featuresLocked()
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
	cmd uint8
	// flags are the netlink header's (NLM_F_DUMP_INTR matters).
	flags uint16
	data  []byte
}

// do sends one request and collects its replies (c.mu held).
func (c *Client) do(cmd uint8, flags netlink.HeaderFlags, data []byte) ([]genlMsg, error) {
	return c.doMsg(flags, genlHeader(cmd, data))
}

// doMsg sends one genetlink payload (header and attributes) and collects
// the replies (c.mu held).
func (c *Client) doMsg(flags netlink.HeaderFlags, msg []byte) ([]genlMsg, error) {
	if c.raw != nil {
		return c.raw.exchange(c.family, flags, msg)
	}
	req := netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(c.family), Flags: netlink.Request | flags},
		Data:   msg,
	}
	msgs, err := c.nc.Execute(req)
	if err != nil {
		return nil, err
	}
	out := make([]genlMsg, 0, len(msgs))
	for _, m := range msgs {
		if m.Header.Type != netlink.HeaderType(c.family) || len(m.Data) < 4 {
			continue
		}
		out = append(out, genlMsg{cmd: m.Data[0], flags: uint16(m.Header.Flags), data: m.Data[4:]})
	}
	return out, nil
}

// genlHeader prefixes data with a genetlink header for cmd.
func genlHeader(cmd uint8, data []byte) []byte {
	b := make([]byte, 4+len(data))
	b[0] = cmd
	b[1] = familyVersion
	copy(b[4:], data)
	return b
}
