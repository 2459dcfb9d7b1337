// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package synproxy

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// rawSocket opens a raw socket that takes whole IP packets (IPPROTO_RAW) of family af in
// the named network namespace.
func rawSocket(ns string, af int) (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return -1, err
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return -1, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return -1, fmt.Errorf("setns %s: %w", ns, err)
	}
	fd, serr := unix.Socket(af, unix.SOCK_RAW, unix.IPPROTO_RAW)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays in the wrong namespace: never give it back to the runtime.
		runtime.LockOSThread()
		return -1, fmt.Errorf("setns back: %w", err)
	}
	if serr != nil {
		return -1, serr
	}
	return fd, nil
}

func csum(b []byte, sum uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

func fold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// packet builds an IPv4 or IPv6 TCP packet from src:sport to dst:dport with flags, seq and ack; SYNs
// carry MSS 1460, SACK permitted, timestamps and window scale 7 like Linux's.
func packet(buf []byte, src, dst netip.Addr, sport, dport uint16, flags byte, seq, ack uint32) []byte {
	var opts []byte
	if flags&0x02 != 0 {
		opts = []byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}
	}
	tl := 20 + len(opts)
	hl := 20
	if src.Is6() {
		hl = 40
	}
	b := buf[:hl+tl]
	for i := range b {
		b[i] = 0
	}
	var sa, da []byte
	if src.Is6() {
		b[0] = 0x60
		binary.BigEndian.PutUint16(b[4:], uint16(tl))
		b[6] = unix.IPPROTO_TCP
		b[7] = 64
		s16, d16 := src.As16(), dst.As16()
		sa, da = s16[:], d16[:]
		copy(b[8:], sa)
		copy(b[24:], da)
	} else {
		b[0] = 0x45
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		b[8] = 64
		b[9] = unix.IPPROTO_TCP
		s4, d4 := src.As4(), dst.As4()
		sa, da = s4[:], d4[:]
		copy(b[12:], sa)
		copy(b[16:], da)
	}
	t := b[hl:]
	binary.BigEndian.PutUint16(t[0:], sport)
	binary.BigEndian.PutUint16(t[2:], dport)
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], ack)
	t[12] = byte(tl/4) << 4
	t[13] = flags
	binary.BigEndian.PutUint16(t[14:], 64240)
	copy(t[20:], opts)
	sum := csum(sa, 0)
	sum = csum(da, sum)
	sum += unix.IPPROTO_TCP + uint32(tl)
	binary.BigEndian.PutUint16(t[16:], fold(csum(t, sum)))
	return b
}

// TCP flags of flood packets.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagACK = 0x10
)

// flood sends count packets with TCP flags (random sequence numbers and acknowledgements)
// from sources spread over 198.18.0.0/15 (2001:db8:ff00::/40 for IPv6) to vip, with workers senders, for at most limit. It
// returns how many were sent and how long that took.
func flood(ns string, vip netip.AddrPort, count int, flags byte, workers int, limit time.Duration) (int, time.Duration, error) {
	var sent atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	deadline := start.Add(limit)
	per := count / workers
	for w := 0; w < workers; w++ {
		af := unix.AF_INET
		if vip.Addr().Is6() {
			af = unix.AF_INET6
		}
		fd, err := rawSocket(ns, af)
		if err != nil {
			return 0, 0, err
		}
		wg.Add(1)
		go func(w, fd int) {
			defer wg.Done()
			defer unix.Close(fd)
			buf := make([]byte, 96)
			var to unix.Sockaddr
			if vip.Addr().Is6() {
				to = &unix.SockaddrInet6{Addr: vip.Addr().As16()}
			} else {
				to = &unix.SockaddrInet4{Addr: vip.Addr().As4()}
			}
			x := uint32(w*per + 1)
			for i := 0; i < per; i++ {
				if i%1024 == 0 && time.Now().After(deadline) {
					return
				}
				x = x*1664525 + 1013904223
				n := uint32(w*per + i)
				src := netip.AddrFrom4([4]byte{198, 18 + byte(n>>24&1), byte(n >> 16), byte(n >> 8)})
				if vip.Addr().Is6() {
					src = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 13: byte(n >> 16), 14: byte(n >> 8), 15: byte(n)})
				}
				sport := uint16(1024 + n%60000)
				var ack uint32
				if flags&flagACK != 0 {
					ack = x ^ 0x5bd1e995
				}
				p := packet(buf, src, vip.Addr(), sport, vip.Port(), flags, x, ack)
				if err := unix.Sendto(fd, p, 0, to); err != nil {
					if err == unix.ENOBUFS || err == unix.EAGAIN {
						time.Sleep(50 * time.Microsecond)
						i--
						continue
					}
					firstErr.CompareAndSwap(nil, err)
					return
				}
				sent.Add(1)
			}
		}(w, fd)
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return int(sent.Load()), time.Since(start), e
	}
	return int(sent.Load()), time.Since(start), nil
}
