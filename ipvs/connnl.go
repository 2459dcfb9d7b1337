// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Connections streams the connection table of the client's namespace:
// connections and persistence templates, as /proc/net/ip_vs_conn lists
// them.
//
// With FeatureConnDump it is one IPVS_CMD_GET_CONN dump on a socket of its
// own, decoded as it is read, so a table of millions of entries is never
// held in memory and the client stays free for other calls while the loop
// runs. Entries carry the FULLNAT local side and the fields /proc leaves
// out. Without the feature (a stock module) the entries come from
// /proc/net/ip_vs_conn of the client's namespace.
//
// The table changes while it is read: an entry created or expiring during
// the listing may or may not be in it. When the module had to replace its
// table during the dump (a resize, Linux 7.x) the last value yielded is
// an error matching ErrDumpInterrupted, after every entry read. Breaking
// out of the loop ends the dump. ctx done ends it with ctx's error.
func (c *Client) Connections(ctx context.Context) iter.Seq2[Connection, error] {
	return c.connections(ctx, nil)
}

// ServiceConnections is Connections limited to the connections and
// templates of one service, selected by the module. The error matches
// ErrNotFound when there is no such service. Without FeatureConnDump the
// /proc table is filtered by the service's address, port and protocol; a
// firewall-mark service then gives an error matching ErrNotSupported.
func (c *Client) ServiceConnections(ctx context.Context, svc Service) iter.Seq2[Connection, error] {
	return c.connections(ctx, &svc)
}

func (c *Client) connections(ctx context.Context, svc *Service) iter.Seq2[Connection, error] {
	return func(yield func(Connection, error) bool) {
		op, obj := "list connections", ""
		if svc != nil {
			op, obj = "list connections of", svc.String()
		}
		have, err := c.Features(ctx)
		if err != nil {
			yield(Connection{}, err)
			return
		}
		if !have.Has(FeatureConnDump) {
			c.procConnections(ctx, svc, op, obj, yield)
			return
		}
		var req []byte
		if svc != nil {
			if req, err = encodeServiceRequest(*svc, false, have); err != nil {
				yield(Connection{}, wrapErr(op, obj, err))
				return
			}
		}
		nc, err := c.dumpSocket()
		if err != nil {
			yield(Connection{}, wrapErr(op, obj, err))
			return
		}
		defer nc.Close()
		stop := closeWhenDone(ctx, nc)
		var decodeErr error
		cancelled := false
		err = exchangeFunc(nc, c.family, netlink.Dump, genlHeader(cmdGetConn, req), func(m genlMsg) bool {
			if ctx.Err() != nil {
				cancelled = true
				return false
			}
			if m.cmd != cmdGetConn {
				return true
			}
			conn, ok, err := decodeConnMsg(m.data)
			if err != nil {
				decodeErr = err
				return false
			}
			return !ok || yield(conn, nil)
		})
		interrupted := !stop()
		switch {
		case decodeErr != nil:
			yield(Connection{}, wrapErr(op, obj, decodeErr))
		case cancelled:
			yield(Connection{}, wrapErr(op, obj, ctx.Err()))
		case errors.Is(err, errStopped):
			// the consumer broke out of the loop
		case interrupted && !kernelAnswer(err):
			yield(Connection{}, wrapErr(op, obj, ctx.Err()))
		case err != nil:
			yield(Connection{}, wrapErr(op, obj, err))
		}
	}
}

// dumpSocket opens a socket in the client's namespace for a dump that
// runs beside the client's own calls.
func (c *Client) dumpSocket() (*netlink.Conn, error) {
	if c.redial == nil {
		return nil, fmt.Errorf("%w (a client that cannot open more sockets)", errClosed)
	}
	nc, err := c.redial()
	if err != nil {
		return nil, fmt.Errorf("open a socket for the dump: %w", err)
	}
	return nc, nil
}

// procConnections yields the entries of /proc/net/ip_vs_conn in the
// client's namespace, those of svc when it is not nil.
func (c *Client) procConnections(ctx context.Context, svc *Service, op, obj string, yield func(Connection, error) bool) {
	if svc != nil && svc.FWMark != 0 {
		yield(Connection{}, wrapErr(op, obj, fmt.Errorf("%w: a firewall-mark service's connections need the module's connection dump", ErrNotSupported)))
		return
	}
	if c.nsFile == nil {
		yield(Connection{}, wrapErr(op, obj, fmt.Errorf("%w: no connection dump and no namespace to read /proc in", ErrNotSupported)))
		return
	}
	f, err := openInNamespace(c.nsFile, ConnPath)
	if err != nil {
		yield(Connection{}, wrapErr(op, obj, err))
		return
	}
	defer f.Close()
	stop := context.AfterFunc(ctx, func() { _ = f.Close() })
	defer stop()
	var key Service
	if svc != nil {
		key = *svc
		key.Address = normAddr(svc.family(), svc.Address)
	}
	for conn, err := range ParseConnections(bufio.NewReaderSize(f, procReadSize)) {
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			yield(Connection{}, wrapErr(op, obj, err))
			return
		}
		if svc != nil && (conn.Virtual.Port() != key.Port || conn.Virtual.Addr() != key.Address ||
			conn.Protocol != protocolName(uint16(key.Protocol))) {
			continue
		}
		if !yield(conn, nil) {
			return
		}
	}
}

// openInNamespace opens the /proc/net file path ("/proc/net/NAME") as seen
// from the network namespace ns: through /proc/thread-self when ns is the
// calling thread's (/proc/net is the main thread's), else from a thread
// that enters ns and is then discarded.
func openInNamespace(ns *os.File, path string) (*os.File, error) {
	self := "/proc/thread-self/net/" + path[len("/proc/net/"):]
	runtime.LockOSThread()
	if same, err := sameNamespace(ns); err == nil && same {
		f, err := os.Open(self)
		runtime.UnlockOSThread()
		return f, err
	}
	runtime.UnlockOSThread()
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread is not unlocked: it ends with the goroutine, so no
		// other goroutine runs in the namespace it entered.
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("enter the client's network namespace: %w", err)}
			return
		}
		f, err := os.Open(self)
		ch <- result{f, err}
	}()
	r := <-ch
	return r.f, r.err
}

// sameNamespace reports whether ns is the calling thread's network
// namespace (the caller has locked its thread).
func sameNamespace(ns *os.File) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Fstat(int(ns.Fd()), &a); err != nil {
		return false, err
	}
	if err := unix.Stat("/proc/thread-self/ns/net", &b); err != nil {
		return false, err
	}
	return a.Dev == b.Dev && a.Ino == b.Ino, nil
}

// protocolName is the kernel's name of an IP protocol in connection
// listings (ip_vs_proto_name).
func protocolName(p uint16) string {
	switch p {
	case 0:
		return "IP"
	case unix.IPPROTO_TCP:
		return "TCP"
	case unix.IPPROTO_UDP:
		return "UDP"
	case unix.IPPROTO_SCTP:
		return "SCTP"
	case unix.IPPROTO_ICMP:
		return "ICMP"
	case unix.IPPROTO_ICMPV6:
		return "ICMPv6"
	}
	return "IP_" + strconv.Itoa(int(p))
}

// decodeConnMsg decodes a GET_CONN reply; ok is false if it has no
// connection.
func decodeConnMsg(b []byte) (Connection, bool, error) {
	n, ok, err := nestOf(b, cmdAttrConn)
	if err != nil || !ok {
		return Connection{}, false, err
	}
	conn, err := decodeConn(n)
	return conn, err == nil, err
}

// decodeConn decodes the attributes of a CONN nest. It runs once per
// connection of a dump of millions: no maps, no closures, the common
// state names not allocated.
func decodeConn(b []byte) (Connection, error) {
	var (
		c                   Connection
		proto, daf          uint16
		caddr, vaddr, daddr []byte
		laddr               []byte
		cport, vport, dport uint16
		lport               uint16
		seen                uint32
	)
	ad := attrIter{rest: b}
	for ad.Next() {
		var err error
		var v32 uint32
		v := ad.Bytes()
		if ad.Type() < 32 {
			seen |= 1 << ad.Type()
		}
		switch ad.Type() {
		case connAttrAF:
			var f uint16
			f, err = u16(v)
			c.Family = Family(f)
		case connAttrProtocol:
			proto, err = u16(v)
		case connAttrCAddr:
			caddr = v
		case connAttrCPort:
			cport, err = ube16(v)
		case connAttrVAddr:
			vaddr = v
		case connAttrVPort:
			vport, err = ube16(v)
		case connAttrDAddr:
			daddr = v
		case connAttrDPort:
			dport, err = ube16(v)
		case connAttrDAF:
			daf, err = u16(v)
		case connAttrFlags:
			v32, err = u32(v)
			c.Flags = ConnFlags(v32)
		case connAttrState:
			c.State = stateName(v)
		case connAttrExpires:
			v32, err = u32(v)
			c.Expires = time.Duration(v32) * time.Millisecond
		case connAttrTimeout:
			v32, err = u32(v)
			c.Timeout = time.Duration(v32) * time.Millisecond
		case connAttrFWMark:
			c.FWMark, err = u32(v)
		case connAttrLAddr:
			laddr = v
		case connAttrLPort:
			lport, err = ube16(v)
		case connAttrSynProxy:
			v32, err = u32(v)
			c.SynProxyAnswered = v32&connSynProxyAnswered != 0
		case connAttrPEName:
			c.PEName = cstring(v)
		case connAttrPEData:
			c.PEData = string(v)
		}
		if err != nil {
			return c, fmt.Errorf("connection attribute %d: %w", ad.Type(), err)
		}
	}
	if err := ad.Err(); err != nil {
		return c, err
	}
	for _, a := range [...]uint16{connAttrAF, connAttrProtocol, connAttrCAddr, connAttrCPort, connAttrVAddr,
		connAttrVPort, connAttrDAddr, connAttrDPort, connAttrState} {
		if seen&(1<<a) == 0 {
			return c, fmt.Errorf("connection without attribute %d", a)
		}
	}
	if daf == 0 {
		daf = uint16(c.Family)
	}
	c.Protocol = protocolName(proto)
	var err error
	if c.Client, err = connAddrPort("client", c.Family, caddr, cport); err != nil {
		return c, err
	}
	if c.Virtual, err = connAddrPort("virtual address", c.Family, vaddr, vport); err != nil {
		return c, err
	}
	if c.Destination, err = connAddrPort("real server", Family(daf), daddr, dport); err != nil {
		return c, err
	}
	if laddr != nil {
		// the local address is of the real server's family
		if c.Local, err = connAddrPort("local address", Family(daf), laddr, lport); err != nil {
			return c, err
		}
	}
	return c, nil
}

func connAddrPort(what string, f Family, b []byte, port uint16) (netip.AddrPort, error) {
	a, err := decodeAddr(f, b)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("connection %s: %w", what, err)
	}
	return netip.AddrPortFrom(a, port), nil
}

// stateNames are the states of TCP, UDP and SCTP connections as the
// kernel names them, shared by every decoded connection.
var stateNames = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{"NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT", "CLOSE",
		"CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK", "UDP", "INIT", "COOKIE_WAIT", "COOKIE_ECHOED",
		"COOKIE_SENT", "COOKIE_REPLIED", "SHUTDOWN_SENT", "SHUTDOWN_RECEIVED", "SHUTDOWN_ACK_SENT",
		"REJECTED", "ERR!"} {
		m[s] = s
	}
	return m
}()

// stateName reads a state attribute, without allocating for a known name.
func stateName(b []byte) string {
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	if s, ok := stateNames[string(b)]; ok {
		return s
	}
	return string(b)
}
