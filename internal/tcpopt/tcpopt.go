// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package tcpopt reports which TCP options a connection agreed with its peer (tcpi_options of
// Linux's TCP_INFO), so a test can tell what a proxy in the path let through.
package tcpopt

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/sys/unix"
)

// Options is a set of agreed TCP options.
type Options uint8

// The options of TCP_INFO (TCPI_OPT_* of linux/tcp.h).
const (
	Timestamps  Options = 1
	SACK        Options = 2
	WindowScale Options = 4
)

// ErrNotTCP is returned for a connection that is not a TCP one.
var ErrNotTCP = errors.New("not a TCP connection")

// String lists the options, "ts,sack,wscale" or "-" for none.
func (o Options) String() string {
	var s []string
	for _, n := range []struct {
		bit  Options
		name string
	}{{Timestamps, "ts"}, {SACK, "sack"}, {WindowScale, "wscale"}} {
		if o&n.bit != 0 {
			s = append(s, n.name)
		}
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

// Agreed returns the options c agreed with its peer.
func Agreed(c net.Conn) (Options, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return 0, fmt.Errorf("%T: %w", c, ErrNotTCP)
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("TCP_INFO: %w", err)
	}
	var info *unix.TCPInfo
	var serr error
	if err := rc.Control(func(fd uintptr) {
		info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return 0, fmt.Errorf("TCP_INFO: %w", err)
	}
	if serr != nil {
		return 0, fmt.Errorf("TCP_INFO: %w", serr)
	}
	return Options(info.Options) & (Timestamps | SACK | WindowScale), nil
}
