// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package vmnet

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// InNetns runs fn on an OS thread switched into the named network namespace; sockets fn creates
// stay in that namespace.
func InNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is left locked and so dies with the goroutine: it never returns to the
		// pool in the wrong namespace.
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- fmt.Errorf("opening netns %s: %w", ns, err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering netns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// PinThread locks the calling goroutine to its OS thread and pins that thread to cpu; the
// thread should then die with the goroutine (never unlock it). A packet a thread sends
// through veth is handled on that thread's CPU, so pinned senders put packets on chosen CPUs.
func PinThread(cpu int) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pinning to CPU %d: %w", cpu, err)
	}
	return nil
}

// InFreshNetns runs fn on an OS thread in a network namespace of its own, new and empty but for
// loopback, which is up as in the VM's root namespace. Processes fn starts (os/exec forks from the
// calling thread) and sockets it opens are in that namespace; per-namespace kernel state, such as
// IPVS's services, timeouts and sync daemons, starts from the defaults there. The namespace goes
// away once fn has returned and the last of its processes has exited.
func InFreshNetns(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Left locked: the thread dies with the goroutine, never back in the pool in the
		// wrong namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("new netns: %w", err)
			return
		}
		if err := linkUp("lo"); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// linkUp sets the interface up in the calling thread's namespace.
func linkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s flags: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s up: %w", name, err)
	}
	return nil
}

// HelloFrom connects from client port lport (in namespace ns) to vip, sends "hello", reads the
// answer "<server> <peer>" and waits for the server to close first, so the client never holds
// the port in TIME_WAIT.
func HelloFrom(ns string, lport int, vip netip.AddrPort) (server, peer string, err error) {
	err = InNetns(ns, func() error {
		d := net.Dialer{
			Timeout:   5 * time.Second,
			LocalAddr: &net.TCPAddr{Port: lport},
			Control: func(_, _ string, c syscall.RawConn) error {
				var serr error
				if err := c.Control(func(fd uintptr) {
					serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
				}); err != nil {
					return err
				}
				return serr
			},
		}
		// The previous connection from lport may still wait in LAST_ACK for the server's
		// last ACK (it closed second, a moment ago): its tuple is busy until then.
		c, err := d.Dial("tcp", vip.String())
		for end := time.Now().Add(2 * time.Second); errors.Is(err, syscall.EADDRNOTAVAIL) && time.Now().Before(end); {
			time.Sleep(20 * time.Millisecond)
			c, err = d.Dial("tcp", vip.String())
		}
		if err != nil {
			return fmt.Errorf("dial %s from port %d: %w", vip, lport, err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "hello\n"); err != nil {
			return fmt.Errorf("hello: %w", err)
		}
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("hello reply: %w", err)
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return fmt.Errorf("hello: bad reply %q", line)
		}
		server, peer = f[0], f[1]
		if _, err := io.Copy(io.Discard, r); err != nil {
			return fmt.Errorf("waiting for the server to close: %w", err)
		}
		return nil
	})
	return server, peer, err
}

// UDPExchange sends payload as one datagram from a connected UDP socket in ns to dst and waits
// up to timeout for the reply; it returns the reply, the socket's local port, and the error of
// the exchange (a timeout, or ECONNREFUSED when an ICMP port unreachable came back).
func UDPExchange(ns NS, dst netip.AddrPort, payload []byte, timeout time.Duration) (reply string, lport int, err error) {
	err = InNetns(string(ns), func() error {
		c, err := net.Dial("udp", dst.String())
		if err != nil {
			return fmt.Errorf("udp dial %s: %w", dst, err)
		}
		defer c.Close()
		lport = c.LocalAddr().(*net.UDPAddr).Port
		_ = c.SetDeadline(time.Now().Add(timeout))
		if _, err := c.Write(payload); err != nil {
			return fmt.Errorf("udp write: %w", err)
		}
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("udp read: %w", err)
		}
		reply = string(buf[:n])
		return nil
	})
	return reply, lport, err
}
