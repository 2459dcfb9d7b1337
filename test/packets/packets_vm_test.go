// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package packets

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/pktfix"
	"github.com/fullnat/fullnat/internal/vmnet"
	"golang.org/x/sys/unix"
)

// The ghost client's addresses (see run).
const (
	ghost4 = "192.0.2.3"
	ghost6 = "2001:db8:1::3"
)

// shellPrelude puts our binaries first and makes ip and tc iproute2's: busybox sh would run
// its own applets otherwise.
const shellPrelude = "PATH=" + vmnet.Bin + ":/usr/sbin:/sbin:/usr/bin:/bin; " +
	`ip() { /usr/sbin/ip "$@"; }; tc() { /usr/sbin/tc "$@"; }; `

// expectWait bounds how long an expect step waits for its packet.
const expectWait = 3 * time.Second

func TestPacketFixtures(t *testing.T) {
	files, err := filepath.Glob("../../testdata/packets/*.pkt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata/packets (%v)", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".pkt"), func(t *testing.T) {
			steps, err := parseFixture(file)
			if err != nil {
				t.Fatal(err)
			}
			run(t, steps)
		})
	}
}

func run(t *testing.T, steps []step) {
	tp := vmnet.New(t, vmnet.Options{Servers: 1})
	d := tp.Director
	d.Run(t, "/sbin/modprobe", "ip_vs")
	d.Run(t, "/sbin/modprobe", "ip_vs_rr")
	vmnet.Serve(t, tp.Servers[0], "rs1", 80, tp.ServerAddrs[0], tp.ServerAddrs6[0])
	// The ghost client: addresses whose packets reach the client's eth0 (and its capture) but not
	// its stack, so a handshake played on a raw socket is not reset by the client's kernel.
	var mac string
	if err := vmnet.InNetns(string(tp.Client), func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err == nil {
			mac = ifi.HardwareAddr.String()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, ghost := range []string{ghost4, ghost6} {
		d.Run(t, vmnet.IP, "neigh", "replace", ghost, "lladdr", mac, "dev", "c0", "nud", "permanent")
	}
	nodes := map[string]vmnet.NS{"client": tp.Client, "director": d, "rs1": tp.Servers[0]}
	caps := map[string]*capture{"client": openCapture(t, tp.Client), "rs1": openCapture(t, tp.Servers[0])}
	vars := pktfix.Vars{}
	for _, s := range steps {
		ns := nodes[s.node]
		switch s.verb {
		case "run":
			cmd := ns.Command("/bin/sh", "-c", shellPrelude+s.arg)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: run %s: %v\n%s", s.where, s.arg, err, out)
			}
		case "send":
			p, err := s.packet.Build(vars)
			if err == nil {
				err = sendRaw(ns, p)
			}
			if err != nil {
				t.Fatalf("%s: send: %v", s.where, err)
			}
		case "expect":
			p, err := caps[s.node].next(s.dir, expectWait)
			if err != nil {
				t.Fatalf("%s: expect %s %s: %v\n  want: %s", s.where, s.node, s.dir, err, s.arg)
			}
			if err := s.packet.Match(p, vars); err != nil {
				t.Fatalf("%s: expect %s %s: %v", s.where, s.node, s.dir, err)
			}
		case "quiet":
			if p, err := caps[s.node].next(s.dir, s.dur); err == nil {
				t.Fatalf("%s: quiet %s %s: got %s", s.where, s.node, s.dir, pktfix.Format(p))
			}
		case "sleep":
			time.Sleep(s.dur)
		}
	}
}

// sendRaw sends p from namespace ns on a raw socket that takes the whole IP packet.
func sendRaw(ns vmnet.NS, p pktfix.Packet) error {
	b, err := p.Marshal()
	if err != nil {
		return err
	}
	return vmnet.InNetns(string(ns), func() error {
		af := unix.AF_INET
		var to unix.Sockaddr
		if p.Is6() {
			af = unix.AF_INET6
			to = &unix.SockaddrInet6{Addr: p.Dst.Addr().As16()}
		} else {
			to = &unix.SockaddrInet4{Addr: p.Dst.Addr().As4()}
		}
		fd, err := unix.Socket(af, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.Sendto(fd, b, 0, to); err != nil {
			return fmt.Errorf("sendto %v: %w", p.Dst.Addr(), err)
		}
		return nil
	})
}

// capture queues the TCP and UDP packets a namespace's eth0 receives and sends.
type capture struct {
	fd      int
	in, out chan pktfix.Packet
	done    chan struct{}
	wg      sync.WaitGroup
}

func openCapture(t *testing.T, ns vmnet.NS) *capture {
	t.Helper()
	c := &capture{in: make(chan pktfix.Packet, 4096), out: make(chan pktfix.Packet, 4096), done: make(chan struct{})}
	err := vmnet.InNetns(string(ns), func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		all := htons(unix.ETH_P_ALL)
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(all))
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		c.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: all, Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("binding to eth0: %w", err)
		}
		// The auxiliary data says whether a packet still waits for checksum offload.
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return fmt.Errorf("PACKET_AUXDATA: %w", err)
		}
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		if c.fd > 0 {
			unix.Close(c.fd)
		}
		t.Fatalf("capture in %s: %v", ns, err)
	}
	c.wg.Add(1)
	go c.loop()
	t.Cleanup(func() { close(c.done); c.wg.Wait(); unix.Close(c.fd) })
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *capture) loop() {
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
		if err != nil {
			continue
		}
		partial := false
		if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, cm := range cms {
				if cm.Header.Level == unix.SOL_PACKET && cm.Header.Type == unix.PACKET_AUXDATA && len(cm.Data) >= 4 {
					// struct tpacket_auxdata starts with tp_status.
					partial = binary.NativeEndian.Uint32(cm.Data)&unix.TP_STATUS_CSUMNOTREADY != 0
				}
			}
		}
		p, err := pktfix.Decode(buf[:n], partial)
		if err != nil {
			continue // ARP, ICMPv6 neighbour discovery, ...
		}
		q := c.in
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			q = c.out
		}
		select {
		case q <- p:
		default:
		}
	}
}

// next returns the next packet of direction dir within timeout.
func (c *capture) next(dir string, timeout time.Duration) (pktfix.Packet, error) {
	q := c.in
	if dir == "out" {
		q = c.out
	}
	select {
	case p := <-q:
		return p, nil
	case <-time.After(timeout):
		return pktfix.Packet{}, errors.New("no TCP or UDP packet within " + timeout.String())
	}
}
