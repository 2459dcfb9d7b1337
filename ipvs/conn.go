// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"iter"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Paths of the connection tables.
const (
	// ConnPath is the stock connection table.
	ConnPath = "/proc/net/ip_vs_conn"
	// FullNATConnPath is the extension's table of FULLNAT connections.
	FullNATConnPath = "/proc/net/ip_vs_conn_fnat"
)

// Connection is one entry of an IPVS connection table.
type Connection struct {
	// Protocol is the protocol name as the kernel prints it ("TCP", "UDP",
	// "SCTP", or "IP" for others).
	Protocol string
	// Client is the client side (FromIP/FPrt).
	Client netip.AddrPort
	// Virtual is the virtual service side (ToIP/TPrt).
	Virtual netip.AddrPort
	// Local is the FULLNAT local address and port (LocalIP/LPrt); invalid
	// in the stock table.
	Local netip.AddrPort
	// Destination is the real server (DestIP/DPrt).
	Destination netip.AddrPort
	// State is the protocol state ("ESTABLISHED", "UDP", "ASSURED"...).
	State string
	// Expires is the time left.
	Expires time.Duration
	// PEName and PEData are the persistence engine columns, if any.
	PEName string
	PEData string

	// The fields below come from the module's connection dump
	// (FeatureConnDump, see Client.Connections); they are zero in
	// entries read from /proc.

	// Family is the address family of the client and virtual side.
	Family Family
	// Flags are the connection's flags, its forwarding method included.
	Flags ConnFlags
	// Timeout is the whole timeout of the connection's current state
	// (Expires is what is left of it).
	Timeout time.Duration
	// FWMark is the firewall mark the connection was scheduled with.
	FWMark uint32
	// SynProxyAnswered is set on a SYNPROXY connection (ConnSynProxy)
	// once its real server has answered the director's SYN.
	SynProxyAnswered bool
}

// ConnFlags are the flags of a connection (IP_VS_CONN_F_*).
type ConnFlags uint32

// Connection flags. The low three bits are the forwarding method.
const (
	ConnSynced    ConnFlags = 0x0020 // created by the sync daemon (a backup's copy)
	ConnNoOutput  ConnFlags = 0x0080 // no output packets yet
	ConnInactive  ConnFlags = 0x0100 // not ESTABLISHED
	ConnNoCPort   ConnFlags = 0x0800 // the client port is not known yet
	ConnTemplate  ConnFlags = 0x1000 // a persistence template, not a connection
	ConnOnePacket ConnFlags = 0x2000 // a one-packet "connection" (UDP one-packet scheduling)
	ConnSynProxy  ConnFlags = 0x8000 // extension: opened by SYNPROXY
)

// ForwardMethod is the forwarding method of the connection.
func (f ConnFlags) ForwardMethod() ForwardMethod { return ForwardMethod(f & 0x7) }

// column indices of a table, from its header line
type connColumns struct {
	// n is the number of columns; min the fewest fields a line may have
	// (every column but trailing optional PEName/PEData).
	n, min                                          int
	pro, from, fprt, to, tprt, lip, lprt, dst, dprt int
	state, expires, pename, pedata                  int
}

func parseConnHeader(line string) (connColumns, error) {
	c := connColumns{lip: -1, lprt: -1, pename: -1, pedata: -1}
	idx := map[string]*int{
		"Pro": &c.pro, "FromIP": &c.from, "FPrt": &c.fprt, "ToIP": &c.to, "TPrt": &c.tprt,
		"LocalIP": &c.lip, "LPrt": &c.lprt, "DestIP": &c.dst, "DPrt": &c.dprt,
		"State": &c.state, "Expires": &c.expires, "PEName": &c.pename, "PEData": &c.pedata,
	}
	required := []string{"Pro", "FromIP", "FPrt", "ToIP", "TPrt", "DestIP", "DPrt", "State", "Expires"}
	seen := map[string]bool{}
	fields := strings.Fields(line)
	for i, f := range fields {
		if p, ok := idx[f]; ok {
			*p = i
			seen[f] = true
		}
	}
	for _, r := range required {
		if !seen[r] {
			return c, fmt.Errorf("connection table header %q lacks column %s", line, r)
		}
	}
	if seen["LocalIP"] != seen["LPrt"] {
		return c, fmt.Errorf("connection table header %q has only one of LocalIP and LPrt", line)
	}
	c.n = len(fields)
	for _, p := range []int{c.pro, c.from, c.fprt, c.to, c.tprt, c.lip, c.lprt, c.dst, c.dprt, c.state, c.expires} {
		if p+1 > c.min {
			c.min = p + 1
		}
	}
	return c, nil
}

// parseConnAddr parses an address column: 8 hex digits for IPv4, or an
// IPv6 address in the kernel's %pI6 form.
func parseConnAddr(s string) (netip.Addr, error) {
	if len(s) == 8 && !strings.Contains(s, ":") {
		b, err := hex.DecodeString(s)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("address %q: %w", s, err)
		}
		return netip.AddrFrom4([4]byte(b)), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("address %q is neither 8 hex digits nor IPv6", s)
	}
	return a, nil
}

func parseConnAddrPort(addr, port string) (netip.AddrPort, error) {
	a, err := parseConnAddr(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if len(port) != 4 {
		return netip.AddrPort{}, fmt.Errorf("port %q is not 4 hex digits", port)
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: %w", port, err)
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

func (c connColumns) parse(line string) (Connection, error) {
	f := strings.Fields(line)
	// PEName and PEData are optional at the end of a line.
	if len(f) < c.min || len(f) > c.n {
		return Connection{}, fmt.Errorf("%d fields, want %d..%d", len(f), c.min, c.n)
	}
	var conn Connection
	var err error
	conn.Protocol = f[c.pro]
	if conn.Client, err = parseConnAddrPort(f[c.from], f[c.fprt]); err != nil {
		return conn, err
	}
	if conn.Virtual, err = parseConnAddrPort(f[c.to], f[c.tprt]); err != nil {
		return conn, err
	}
	if c.lip >= 0 {
		if conn.Local, err = parseConnAddrPort(f[c.lip], f[c.lprt]); err != nil {
			return conn, err
		}
	}
	if conn.Destination, err = parseConnAddrPort(f[c.dst], f[c.dprt]); err != nil {
		return conn, err
	}
	conn.State = f[c.state]
	exp, err := strconv.ParseUint(f[c.expires], 10, 32)
	if err != nil {
		return conn, fmt.Errorf("expires %q: %w", f[c.expires], err)
	}
	conn.Expires = time.Duration(exp) * time.Second
	if c.pename >= 0 && len(f) > c.pename {
		conn.PEName = f[c.pename]
	}
	if c.pedata >= 0 && len(f) > c.pedata {
		conn.PEData = f[c.pedata]
	}
	return conn, nil
}

// ParseConnections parses a connection table (the stock
// /proc/net/ip_vs_conn format or the FULLNAT format, told apart by the
// header line) from r, one entry at a time. Iteration stops at the first
// error, which is yielded with the line number.
func ParseConnections(r io.Reader) iter.Seq2[Connection, error] {
	return func(yield func(Connection, error) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 4096), 64*1024)
		var cols connColumns
		lineNo := 0
		for sc.Scan() {
			lineNo++
			line := sc.Text()
			if strings.TrimSpace(line) == "" {
				continue
			}
			if lineNo == 1 {
				var err error
				if cols, err = parseConnHeader(line); err != nil {
					yield(Connection{}, fmt.Errorf("ipvs: connection table: %w", err))
					return
				}
				continue
			}
			conn, err := cols.parse(line)
			if err != nil {
				yield(Connection{}, fmt.Errorf("ipvs: connection table line %d: %w", lineNo, err))
				return
			}
			if !yield(conn, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(Connection{}, fmt.Errorf("ipvs: connection table: %w", err))
		}
	}
}

// procReadSize is the read size for /proc connection tables. The kernel
// finds the position of each read() by walking its table from the start,
// so a table of a million entries read 4 KiB at a time costs billions of
// steps; 1 MiB reads make it a few hundred walks.
const procReadSize = 1 << 20

// ReadConnections streams the connection table at path (ConnPath or
// FullNATConnPath). A missing file gives an error matching
// os.ErrNotExist (no IPVS, or no FULLNAT module). /proc/net is the
// namespace of the process's main thread: a thread that entered another
// namespace reads /proc/thread-self/net/ instead, and Client.Connections
// reads the client's namespace whatever the thread.
func ReadConnections(path string) iter.Seq2[Connection, error] {
	return func(yield func(Connection, error) bool) {
		f, err := os.Open(path)
		if err != nil {
			yield(Connection{}, fmt.Errorf("ipvs: %w", err))
			return
		}
		defer f.Close()
		for c, err := range ParseConnections(bufio.NewReaderSize(f, procReadSize)) {
			if !yield(c, err) || err != nil {
				return
			}
		}
	}
}
