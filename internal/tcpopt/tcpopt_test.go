// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package tcpopt

import (
	"errors"
	"net"
	"testing"
)

// A loopback connection agrees what Linux offers by default: timestamps, SACK, window scaling.
func TestAgreedLoopback(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, conn := range []net.Conn{c, s} {
		o, err := Agreed(conn)
		if err != nil {
			t.Fatal(err)
		}
		if o != Timestamps|SACK|WindowScale {
			t.Errorf("%v: agreed %v, want ts,sack,wscale", conn.LocalAddr(), o)
		}
	}
}

func TestNotTCP(t *testing.T) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := Agreed(c.(net.Conn)); !errors.Is(err, ErrNotTCP) {
		t.Errorf("UDP socket: %v, want ErrNotTCP", err)
	}
}

func TestString(t *testing.T) {
	for o, want := range map[Options]string{0: "-", Timestamps: "ts", Timestamps | WindowScale: "ts,wscale", SACK: "sack"} {
		if got := o.String(); got != want {
			t.Errorf("%d: %q, want %q", o, got, want)
		}
	}
}
