// Copyright The fullnat Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package toa

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/fullnat/fullnat/internal/vmnet"
)

// The director side of a link sends from these addresses; the server owns srv4/srv6.
var (
	dir4 = netip.MustParseAddr("198.51.100.1")
	srv4 = netip.MustParseAddr("198.51.100.11")
	dir6 = netip.MustParseAddr("2001:db8:2::1")
	srv6 = netip.MustParseAddr("2001:db8:2::11")
	cli4 = netip.MustParseAddrPort("203.0.113.7:41000")
	cli6 = netip.MustParseAddrPort("[2001:db8:99::7]:41001")
)

var listenPorts, directors atomic.Uint32

// port returns a listening port not used before in this run.
func port() uint16 { return uint16(8000 + listenPorts.Add(1)) }

// director returns a director address and port not used before in this run: ports 20000 to
// 59999 of 198.51.100.1 and 2001:db8:2::1 on the link, then of addresses routed through them
// (198.18.0.0/15, 2001:db8:3::/64), so that held connections are never hit by a new SYN.
func director(v6 bool) netip.AddrPort {
	n := directors.Add(1)
	idx, p := n/40000, uint16(20000+n%40000)
	switch {
	case idx == 0 && v6:
		return netip.AddrPortFrom(dir6, p)
	case idx == 0:
		return netip.AddrPortFrom(dir4, p)
	case v6:
		a := netip.MustParseAddr("2001:db8:3::").As16()
		a[14], a[15] = byte(idx>>8), byte(idx)
		return netip.AddrPortFrom(netip.AddrFrom16(a), p)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(idx >> 8), byte(idx)}), p)
}

// mapped returns a as an IPv4-mapped IPv6 address if it is IPv4.
func mapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
}

// ---- module ------------------------------------------------------------------------------

func toaLoaded() bool {
	b, err := os.ReadFile("/proc/modules")
	return err == nil && (bytes.Contains(b, []byte("\ntoa ")) || bytes.HasPrefix(b, []byte("toa ")))
}

func loadTOA(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("modprobe", "toa").CombinedOutput(); err != nil {
		t.Fatalf("modprobe toa: %v\n%s", err, out)
	}
	if !toaLoaded() {
		t.Fatal("modprobe toa succeeded but toa is not in /proc/modules")
	}
}

func unloadTOA(t testing.TB) {
	t.Helper()
	if !toaLoaded() {
		return
	}
	if out, err := exec.Command("rmmod", "toa").CombinedOutput(); err != nil {
		t.Fatalf("rmmod toa: %v\n%s", err, out)
	}
	if toaLoaded() {
		t.Fatal("rmmod toa succeeded but toa is still in /proc/modules")
	}
}

// ---- topology ----------------------------------------------------------------------------

// link is a server namespace reached through a veth from a namespace where the test sends
// hand-made frames. The sending side has no addresses, so its kernel neither answers nor
// resets the server's segments; the server knows the director's MAC addresses statically.
type link struct {
	cl, rs  vmnet.NS
	ifindex int
	clMAC   net.HardwareAddr
	rsMAC   net.HardwareAddr
	// srv4 and srv6 are the server's addresses on this link.
	srv4, srv6 netip.Addr
}

var linkSeq atomic.Int32

func newLink(t *testing.T) *link {
	t.Helper()
	n := linkSeq.Add(1)
	l := &link{cl: vmnet.Add(t, fmt.Sprintf("toacl%d", n)), rs: vmnet.Add(t, fmt.Sprintf("toars%d", n)), srv4: srv4, srv6: srv6}
	vmnet.Veth(t, l.cl, "d0", l.rs, "r0")
	l.cl.Sysctl(t, "net.ipv6.conf.d0.disable_ipv6", "1")
	l.rs.Addr(t, "r0", srv4.String()+"/24")
	l.rs.Addr(t, "r0", srv6.String()+"/64")
	err := vmnet.InNetns(string(l.cl), func() error {
		ifi, err := net.InterfaceByName("d0")
		if err != nil {
			return err
		}
		l.ifindex, l.clMAC = ifi.Index, ifi.HardwareAddr
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = vmnet.InNetns(string(l.rs), func() error {
		ifi, err := net.InterfaceByName("r0")
		if err != nil {
			return err
		}
		l.rsMAC = ifi.HardwareAddr
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []netip.Addr{dir4, dir6} {
		l.rs.Run(t, vmnet.IP, "neigh", "replace", a.String(), "lladdr", l.clMAC.String(), "dev", "r0", "nud", "permanent")
	}
	l.rs.Run(t, vmnet.IP, "route", "add", "198.18.0.0/15", "via", dir4.String())
	l.rs.Run(t, vmnet.IP, "-6", "route", "add", "2001:db8:3::/64", "via", dir6.String())
	return l
}

// Another host that reaches the server directly, not through the director: it sends from
// these addresses, to the server's addresses on its own link.
var (
	forger4    = netip.MustParseAddr("192.0.2.66")
	forgerSrv4 = netip.MustParseAddr("192.0.2.11")
	forger6    = netip.MustParseAddr("2001:db8:4::66")
	forgerSrv6 = netip.MustParseAddr("2001:db8:4::11")
)

// forger adds a second link to l's server namespace, from a namespace of its own, for a host
// that sends forged TOA options from forger4 and forger6.
func (l *link) forger(t *testing.T) *link {
	t.Helper()
	n := linkSeq.Add(1)
	f := &link{cl: vmnet.Add(t, fmt.Sprintf("toafg%d", n)), rs: l.rs, srv4: forgerSrv4, srv6: forgerSrv6}
	rsIf := fmt.Sprintf("f%d", n)
	vmnet.Veth(t, f.cl, "d0", f.rs, rsIf)
	f.cl.Sysctl(t, "net.ipv6.conf.d0.disable_ipv6", "1")
	f.rs.Addr(t, rsIf, forgerSrv4.String()+"/24")
	f.rs.Addr(t, rsIf, forgerSrv6.String()+"/64")
	err := vmnet.InNetns(string(f.cl), func() error {
		ifi, err := net.InterfaceByName("d0")
		if err != nil {
			return err
		}
		f.ifindex, f.clMAC = ifi.Index, ifi.HardwareAddr
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = vmnet.InNetns(string(f.rs), func() error {
		ifi, err := net.InterfaceByName(rsIf)
		if err != nil {
			return err
		}
		f.rsMAC = ifi.HardwareAddr
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []netip.Addr{forger4, forger6} {
		f.rs.Run(t, vmnet.IP, "neigh", "replace", a.String(), "lladdr", f.clMAC.String(), "dev", rsIf, "nud", "permanent")
	}
	return f
}

// tap is a packet socket on the director side of a link.
type tap struct {
	l  *link
	fd int
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (l *link) tap(t testing.TB) *tap {
	t.Helper()
	tp := &tap{l: l, fd: -1}
	err := vmnet.InNetns(string(l.cl), func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		tp.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: l.ifindex}); err != nil {
			return fmt.Errorf("bind packet socket: %w", err)
		}
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if tp.fd >= 0 {
		t.Cleanup(func() { unix.Close(tp.fd) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// tapFor is a tap that receives only the server's segments from ln's port. Taps see every
// frame on the link; a tap that waits while other goroutines make thousands of connections
// would otherwise drop its own SYN-ACK from a receive queue full of theirs.
func (l *link) tapFor(t testing.TB, ln *listener) *tap {
	t.Helper()
	tp := l.tap(t)
	const drop, keep = 0, 1 << 18
	prog, err := bpf.Assemble([]bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 12, Size: 2}, // EtherType
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ETH_P_IPV6, SkipTrue: 8},
		/* 2 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.ETH_P_IP, SkipTrue: 11},
		/* 3 */ bpf.LoadAbsolute{Off: 14 + 9, Size: 1}, // IPv4 protocol
		/* 4 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_TCP, SkipTrue: 9},
		/* 5 */ bpf.LoadAbsolute{Off: 14 + 6, Size: 2}, // flags and fragment offset
		/* 6 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 7},
		/* 7 */ bpf.LoadMemShift{Off: 14}, // X = IPv4 header length
		/* 8 */ bpf.LoadIndirect{Off: 14, Size: 2}, // TCP source port
		/* 9 */ bpf.Jump{Skip: 3},
		/* 10 */ bpf.LoadAbsolute{Off: 14 + 6, Size: 1}, // IPv6 next header
		/* 11 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_TCP, SkipTrue: 2},
		/* 12 */ bpf.LoadAbsolute{Off: 14 + 40, Size: 2}, // TCP source port
		/* 13 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(ln.port), SkipTrue: 1},
		/* 14 */ bpf.RetConstant{Val: drop},
		/* 15 */ bpf.RetConstant{Val: keep},
	})
	if err != nil {
		t.Fatal(err)
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(tp.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		t.Fatalf("attach filter to packet socket: %v", err)
	}
	return tp
}

func (tp *tap) send(s Segment) error {
	f, err := s.Frame(tp.l.clMAC, tp.l.rsMAC)
	if err != nil {
		return err
	}
	sa := &unix.SockaddrLinklayer{Ifindex: tp.l.ifindex, Halen: 6}
	copy(sa.Addr[:], tp.l.rsMAC)
	if err := unix.Sendto(tp.fd, f, 0, sa); err != nil {
		return fmt.Errorf("send %v -> %v: %w", s.Src, s.Dst, err)
	}
	return nil
}

var errTimeout = errors.New("timed out")

// await reads frames until one matches or d passes.
func (tp *tap) await(match func(Segment) bool, d time.Duration) (Segment, error) {
	buf := make([]byte, 65536)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(tp.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return Segment{}, fmt.Errorf("receive: %w", err)
		}
		s, err := ParseFrame(buf[:n])
		if err == nil && match(s) {
			return s, nil
		}
	}
	return Segment{}, errTimeout
}

// handshake plays the director: a SYN with synOpts, then, on the server's SYN-ACK, the ACK
// that completes the handshake with ackOpts.
func (tp *tap) handshake(src, dst netip.AddrPort, synOpts, ackOpts []byte) error {
	isn := rand.Uint32()
	syn := Segment{Src: src, Dst: dst, Seq: isn, Flags: FlagSYN, Options: append([]byte{2, 4, 0x05, 0xb4}, synOpts...)}
	var sa Segment
	var err error
	for try := 0; try < 3; try++ {
		if err = tp.send(syn); err != nil {
			return err
		}
		sa, err = tp.await(func(s Segment) bool {
			return s.Src == dst && s.Dst == src && s.Flags&(FlagSYN|FlagACK|FlagRST) == FlagSYN|FlagACK && s.Ack == isn+1
		}, 2*time.Second)
		if err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("SYN-ACK from %v to %v: %w", dst, src, err)
	}
	return tp.send(Segment{Src: src, Dst: dst, Seq: isn + 1, Ack: sa.Seq + 1, Flags: FlagACK, Options: ackOpts})
}

// listener is a listening TCP socket in the server namespace.
type listener struct {
	fd   int
	port uint16
	v6   bool
}

// listen opens a listening socket: AF_INET, or AF_INET6 (dual stack unless v6only).
func (l *link) listen(t testing.TB, v6, v6only bool) *listener {
	t.Helper()
	ln := &listener{fd: -1, port: port(), v6: v6}
	err := vmnet.InNetns(string(l.rs), func() error {
		family := unix.AF_INET
		var sa unix.Sockaddr = &unix.SockaddrInet4{Port: int(ln.port)}
		if v6 {
			family = unix.AF_INET6
			sa = &unix.SockaddrInet6{Port: int(ln.port)}
		}
		fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		ln.fd = fd
		if v6 {
			only := 0
			if v6only {
				only = 1
			}
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, only); err != nil {
				return fmt.Errorf("IPV6_V6ONLY: %w", err)
			}
		}
		if err := unix.Bind(fd, sa); err != nil {
			return fmt.Errorf("bind port %d: %w", ln.port, err)
		}
		return unix.Listen(fd, 512)
	})
	if ln.fd >= 0 {
		t.Cleanup(func() { unix.Close(ln.fd) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func toAddrPort(sa unix.Sockaddr) (netip.AddrPort, error) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), nil
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)), nil
	}
	return netip.AddrPort{}, fmt.Errorf("unexpected socket address %T", sa)
}

// conn is an accepted connection with the address accept() returned.
type conn struct {
	fd     int
	accept netip.AddrPort
}

func (ln *listener) accept(d time.Duration) (*conn, error) {
	fds := []unix.PollFd{{Fd: int32(ln.fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("accept on port %d: %w", ln.port, errTimeout)
		}
		if _, err := unix.Poll(fds, int(left.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
			return nil, fmt.Errorf("poll: %w", err)
		}
		fd, sa, err := unix.Accept4(ln.fd, unix.SOCK_CLOEXEC)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("accept: %w", err)
		}
		ap, err := toAddrPort(sa)
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		return &conn{fd: fd, accept: ap}, nil
	}
}

func (c *conn) peer() (netip.AddrPort, error) {
	sa, err := unix.Getpeername(c.fd)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("getpeername: %w", err)
	}
	return toAddrPort(sa)
}

// close resets the connection so that the server socket is destroyed at once.
func (c *conn) close() {
	_ = unix.SetsockoptLinger(c.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	unix.Close(c.fd)
}

// dial makes a connection from the director address src to the listener over IPv4 or IPv6
// (as src is) and returns the accepted connection and its getpeername().
func (tp *tap) dial(ln *listener, src netip.AddrPort, synOpts, ackOpts []byte) (*conn, netip.AddrPort, error) {
	dst := netip.AddrPortFrom(tp.l.srv4, ln.port)
	if src.Addr().Is6() {
		dst = netip.AddrPortFrom(tp.l.srv6, ln.port)
	}
	if err := tp.handshake(src, dst, synOpts, ackOpts); err != nil {
		return nil, netip.AddrPort{}, err
	}
	c, err := ln.accept(5 * time.Second)
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	p, err := c.peer()
	if err != nil {
		c.close()
		return nil, netip.AddrPort{}, err
	}
	return c, p, nil
}

// expect dials and checks that accept() and getpeername() both return want; want is
// v4-mapped by the caller for IPv6 sockets.
func expect(t *testing.T, tp *tap, ln *listener, src netip.AddrPort, synOpts, ackOpts []byte, want netip.AddrPort) {
	t.Helper()
	c, p, err := tp.dial(ln, src, synOpts, ackOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if c.accept != want || p != want {
		t.Errorf("accept() = %v, getpeername() = %v, want %v (director %v)", c.accept, p, want, src)
	}
}

// real returns the address a socket of the listener's family shows for the director src.
func (ln *listener) real(src netip.AddrPort) netip.AddrPort {
	if ln.v6 {
		return mapped(src)
	}
	return src
}

// ---- /proc/net/toa_stats -----------------------------------------------------------------

// readStats reads /proc/net/toa_stats in ns and sums each counter over the CPUs.
func readStats(ns vmnet.NS) (map[string]uint64, error) {
	var b []byte
	err := vmnet.InNetns(string(ns), func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/toa_stats")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read toa_stats in %s: %w", ns, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	if !sc.Scan() {
		return nil, fmt.Errorf("toa_stats in %s is empty", ns)
	}
	head := sc.Text()
	cpus := strings.Fields(head)
	if !strings.HasPrefix(head, strings.Repeat(" ", 34)+"CPU") || len(cpus) == 0 {
		return nil, fmt.Errorf("toa_stats header %q", head)
	}
	m := map[string]uint64{}
	var order []string
	for sc.Scan() {
		line := sc.Text()
		if len(line) < 26 || line[25] != ':' {
			return nil, fmt.Errorf("toa_stats line %q is not %%-25s:", line)
		}
		name := strings.TrimSpace(line[:25])
		vals := strings.Fields(line[26:])
		if len(vals) != len(cpus) {
			return nil, fmt.Errorf("toa_stats line %q has %d values for %d CPUs", line, len(vals), len(cpus))
		}
		var sum uint64
		for i, v := range vals {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("toa_stats line %q: %w", line, err)
			}
			// The module-wide counts are all in the first column.
			if i > 0 && n != 0 && strings.HasSuffix(name, "_missed") {
				return nil, fmt.Errorf("toa_stats line %q: a module-wide count beyond the first column", line)
			}
			sum += n
		}
		m[name] = sum
		order = append(order, name)
	}
	want := []string{"syn_recv_sock_toa", "syn_recv_sock_no_toa", "getname_toa_ok",
		"getname_toa_mismatch", "getname_toa_bypass", "getname_toa_empty",
		"syn_recv_sock_untrusted", "syn_recv_sock_missed", "getname_missed", "destroy_sock_missed"}
	if strings.Join(order, ",") != strings.Join(want, ",") {
		return nil, fmt.Errorf("toa_stats counters %v, want %v", order, want)
	}
	return m, nil
}

// missedStats are the module-wide lines of toa_stats: probe hits the kprobe core missed.
var missedStats = []string{"syn_recv_sock_missed", "getname_missed", "destroy_sock_missed"}

// ---- net.toa.allow -------------------------------------------------------------------------

const allowPath = "/proc/sys/net/toa/allow"

// readAllow returns net.toa.allow of ns without its trailing newline.
func readAllow(ns vmnet.NS) (string, error) {
	var b []byte
	err := vmnet.InNetns(string(ns), func() error {
		var err error
		b, err = os.ReadFile(allowPath)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read net.toa.allow in %s: %w", ns, err)
	}
	s, ok := strings.CutSuffix(string(b), "\n")
	if !ok {
		return "", fmt.Errorf("net.toa.allow in %s is %q: no newline at the end", ns, b)
	}
	return s, nil
}

// writeAllow writes v to net.toa.allow of ns in one write(2) at offset off.
func writeAllow(ns vmnet.NS, v string, off int64) error {
	return vmnet.InNetns(string(ns), func() error {
		f, err := os.OpenFile(allowPath, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := unix.Pwrite(int(f.Fd()), []byte(v), off)
		if err != nil {
			return fmt.Errorf("write %q to net.toa.allow in %s: %w", v, ns, err)
		}
		if n != len(v) {
			return fmt.Errorf("write %q to net.toa.allow in %s: %d bytes written", v, ns, n)
		}
		return nil
	})
}

// setAllow sets net.toa.allow of ns and checks that it reads back as want.
func setAllow(t *testing.T, ns vmnet.NS, v, want string) {
	t.Helper()
	if err := writeAllow(ns, v, 0); err != nil {
		t.Fatal(err)
	}
	got, err := readAllow(ns)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("net.toa.allow in %s: wrote %q, reads %q, want %q", ns, v, got, want)
	}
}

// ---- sockmap: another user of sk_user_data -----------------------------------------------

func bpfSyscall(cmd uintptr, attr unsafe.Pointer, size uintptr) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, cmd, uintptr(attr), size)
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}

// sockmap is a BPF_MAP_TYPE_SOCKMAP of one entry: a socket put into it carries a psock in
// sk_user_data.
type sockmap struct{ fd int }

func newSockmap() (*sockmap, error) {
	attr := struct{ typ, keySize, valueSize, maxEntries, flags uint32 }{unix.BPF_MAP_TYPE_SOCKMAP, 4, 4, 1, 0}
	fd, err := bpfSyscall(unix.BPF_MAP_CREATE, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil {
		return nil, fmt.Errorf("create sockmap: %w", err)
	}
	return &sockmap{fd: int(fd)}, nil
}

func (m *sockmap) elem(cmd uintptr, value *uint32) error {
	var key uint32
	attr := struct {
		mapFd uint32
		_     uint32
		key   uint64
		value uint64
		flags uint64
	}{mapFd: uint32(m.fd), key: uint64(uintptr(unsafe.Pointer(&key)))}
	if value != nil {
		attr.value = uint64(uintptr(unsafe.Pointer(value)))
	}
	_, err := bpfSyscall(cmd, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(&key)
	runtime.KeepAlive(value)
	return err
}

func (m *sockmap) put(fd int) error {
	v := uint32(fd)
	if err := m.elem(unix.BPF_MAP_UPDATE_ELEM, &v); err != nil {
		return fmt.Errorf("sockmap update: %w", err)
	}
	return nil
}

func (m *sockmap) del() error {
	if err := m.elem(unix.BPF_MAP_DELETE_ELEM, nil); err != nil {
		return fmt.Errorf("sockmap delete: %w", err)
	}
	return nil
}
