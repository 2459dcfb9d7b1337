// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package vmnet

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Frame is one IP packet a Capture saw.
type Frame struct {
	// Data is the IP packet, from its IP header on.
	Data []byte
	// Out is set for a packet the namespace sent, clear for one it received.
	Out bool
	// Partial is set for a packet that still waits for checksum offload (CHECKSUM_PARTIAL):
	// its checksum field holds only the pseudo-header sum.
	Partial bool
	// At is when the capture read the packet.
	At time.Time
	// EtherType is the frame's protocol: 0x0800 (IPv4), 0x86dd (IPv6), 0x0806 (ARP), ...
	EtherType uint16
}

// Capture queues the IP packets an interface of a namespace receives and sends, from an
// AF_PACKET socket, each direction in order.
type Capture struct {
	fd      int
	in, out chan Frame
	done    chan struct{}
	wg      sync.WaitGroup
}

// OpenCapture starts capturing on interface ifname of ns; the test's cleanup stops it.
func OpenCapture(t testing.TB, ns NS, ifname string) *Capture {
	t.Helper()
	c := &Capture{fd: -1, in: make(chan Frame, 4096), out: make(chan Frame, 4096), done: make(chan struct{})}
	err := InNetns(string(ns), func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return fmt.Errorf("interface %s: %w", ifname, err)
		}
		all := htons(unix.ETH_P_ALL)
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(all))
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		c.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: all, Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("binding to %s: %w", ifname, err)
		}
		// The auxiliary data says whether a packet still waits for checksum offload.
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return fmt.Errorf("PACKET_AUXDATA: %w", err)
		}
		// Room for bursts of GSO packets (up to 64 KiB each) while the reader catches up.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20); err != nil {
			return fmt.Errorf("SO_RCVBUFFORCE: %w", err)
		}
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		if c.fd >= 0 {
			unix.Close(c.fd)
		}
		t.Fatalf("capture on %s in %s: %v", ifname, ns, err)
	}
	c.wg.Add(1)
	go c.loop()
	t.Cleanup(func() { close(c.done); c.wg.Wait(); unix.Close(c.fd) })
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *Capture) loop() {
	defer c.wg.Done()
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for {
		select {
		case <-c.done:
			return
		default:
		}
		n, oobn, _, from, err := unix.Recvmsg(c.fd, buf, oob, 0)
		if err != nil || n == 0 {
			continue
		}
		f := Frame{Data: append([]byte(nil), buf[:n]...), At: time.Now()}
		if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, cm := range cms {
				if cm.Header.Level == unix.SOL_PACKET && cm.Header.Type == unix.PACKET_AUXDATA && len(cm.Data) >= 4 {
					// struct tpacket_auxdata starts with tp_status.
					f.Partial = binary.NativeEndian.Uint32(cm.Data)&unix.TP_STATUS_CSUMNOTREADY != 0
				}
			}
		}
		q := c.in
		if ll, ok := from.(*unix.SockaddrLinklayer); ok {
			f.EtherType = htons(ll.Protocol)
			if ll.Pkttype == unix.PACKET_OUTGOING {
				f.Out, q = true, c.out
			}
		}
		select {
		case q <- f:
		default: // a test that does not read: drop rather than block
		}
	}
}

// Next returns the next frame of the direction (out: sent, else received) for which match
// returns true, skipping the others, or an error when none comes within timeout. A nil match
// takes any frame.
func (c *Capture) Next(out bool, timeout time.Duration, match func(Frame) bool) (Frame, error) {
	q := c.in
	if out {
		q = c.out
	}
	deadline := time.After(timeout)
	for {
		select {
		case f := <-q:
			if match == nil || match(f) {
				return f, nil
			}
		case <-deadline:
			return Frame{}, fmt.Errorf("no matching packet within %s", timeout)
		}
	}
}

// SendRaw sends pkt, a whole IP packet (header included, as built by the caller), from ns to
// dst on a raw socket.
func SendRaw(ns NS, pkt []byte, dst netip.Addr) error {
	return InNetns(string(ns), func() error {
		af := unix.AF_INET
		var to unix.Sockaddr
		if dst.Is6() {
			af = unix.AF_INET6
			to = &unix.SockaddrInet6{Addr: dst.As16()}
		} else {
			to = &unix.SockaddrInet4{Addr: dst.As4()}
		}
		fd, err := unix.Socket(af, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.Sendto(fd, pkt, 0, to); err != nil {
			return fmt.Errorf("sendto %v: %w", dst, err)
		}
		return nil
	})
}
