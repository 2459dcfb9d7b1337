// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// errProxyHeader is wrapped by every error about a PROXY protocol header.
var errProxyHeader = errors.New("bad PROXY protocol header")

// proxyV2Sig starts a version 2 header.
var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// proxyHeader is what a PROXY protocol header (haproxy's proxy-protocol.txt) says.
type proxyHeader struct {
	Version int
	Src     netip.AddrPort // the client
	Dst     netip.AddrPort // the address it connected to
}

// readProxyHeader reads one version 1 or version 2 header (of a TCP connection) from r.
func readProxyHeader(r *bufio.Reader) (proxyHeader, error) {
	sig, err := r.Peek(len(proxyV2Sig))
	if err != nil && !(errors.Is(err, io.EOF) && len(sig) >= 6) {
		return proxyHeader{}, fmt.Errorf("%w: %w", errProxyHeader, err)
	}
	if bytes.Equal(sig, proxyV2Sig) {
		return readProxyV2(r)
	}
	return readProxyV1(r)
}

func readProxyV1(r *bufio.Reader) (proxyHeader, error) {
	var line []byte
	for len(line) < 107 {
		b, err := r.ReadByte()
		if err != nil {
			return proxyHeader{}, fmt.Errorf("%w: %w", errProxyHeader, err)
		}
		line = append(line, b)
		if b == '\n' {
			break
		}
	}
	s, ok := strings.CutSuffix(string(line), "\r\n")
	if !ok {
		return proxyHeader{}, fmt.Errorf("%w: v1 line %q does not end in CRLF within 107 bytes", errProxyHeader, line)
	}
	f := strings.Split(s, " ")
	if len(f) != 6 || f[0] != "PROXY" || (f[1] != "TCP4" && f[1] != "TCP6") {
		return proxyHeader{}, fmt.Errorf("%w: v1 line %q", errProxyHeader, s)
	}
	h := proxyHeader{Version: 1}
	for i, ap := range []*netip.AddrPort{&h.Src, &h.Dst} {
		a, err := netip.ParseAddr(f[2+i])
		if err != nil || a.Is4() != (f[1] == "TCP4") {
			return proxyHeader{}, fmt.Errorf("%w: v1 address %q", errProxyHeader, f[2+i])
		}
		p, err := strconv.ParseUint(f[4+i], 10, 16)
		if err != nil || (len(f[4+i]) > 1 && f[4+i][0] == '0') {
			return proxyHeader{}, fmt.Errorf("%w: v1 port %q", errProxyHeader, f[4+i])
		}
		*ap = netip.AddrPortFrom(a, uint16(p))
	}
	return h, nil
}

func readProxyV2(r *bufio.Reader) (proxyHeader, error) {
	var fixed [16]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return proxyHeader{}, fmt.Errorf("%w: %w", errProxyHeader, err)
	}
	body := make([]byte, binary.BigEndian.Uint16(fixed[14:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return proxyHeader{}, fmt.Errorf("%w: v2 body: %w", errProxyHeader, err)
	}
	if fixed[12] != 0x21 {
		return proxyHeader{}, fmt.Errorf("%w: v2 version/command 0x%02x, want 0x21 (v2 PROXY)", errProxyHeader, fixed[12])
	}
	alen := map[byte]int{0x11: 4, 0x21: 16}[fixed[13]]
	if alen == 0 || len(body) < 2*alen+4 {
		return proxyHeader{}, fmt.Errorf("%w: v2 family/transport 0x%02x with %d bytes", errProxyHeader, fixed[13], len(body))
	}
	src, _ := netip.AddrFromSlice(body[:alen])
	dst, _ := netip.AddrFromSlice(body[alen : 2*alen])
	return proxyHeader{
		Version: 2,
		Src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[2*alen:])),
		Dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[2*alen+2:])),
	}, nil
}

// proxiedConn is a connection whose PROXY protocol header was read: its remote address is the
// client's, and what followed the header is read first.
type proxiedConn struct {
	net.Conn
	r   *bufio.Reader
	src net.Addr
}

func (c *proxiedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *proxiedConn) RemoteAddr() net.Addr       { return c.src }

// acceptProxy wraps a handler so that it first reads the connection's PROXY protocol header;
// a connection without a good one is closed with the error written to stderr.
func acceptProxy(h func(net.Conn, string)) func(net.Conn, string) {
	return func(c net.Conn, name string) {
		_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
		r := bufio.NewReader(c)
		hdr, err := readProxyHeader(r)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s from %s: %v\n", name, c.RemoteAddr(), err)
			c.Close()
			return
		}
		h(&proxiedConn{Conn: c, r: r, src: net.TCPAddrFromAddrPort(hdr.Src)}, name)
	}
}
