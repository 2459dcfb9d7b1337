// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package flood sends floods of spoofed TCP packets (SYN, bad ACK, stray FIN) through raw
// sockets, for the SYNPROXY tests and the demo. Sources are spread over 198.18.0.0/15 (the
// benchmarking range) for IPv4 and 2001:db8:ff00::/40 for IPv6; nothing answers them.
package flood

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fullnat/fullnat/internal/inet"
	"golang.org/x/sys/unix"
)

// TCP flags of flood packets.
const (
	FIN = 0x01
	SYN = 0x02
	RST = 0x04
	ACK = 0x10
)

// The prefixes flood sources are taken from.
var (
	Sources4 = netip.MustParsePrefix("198.18.0.0/15")
	Sources6 = netip.MustParsePrefix("2001:db8:ff00::/40")
)

// Spoofed reports whether a is an address a flood sends from.
func Spoofed(a netip.Addr) bool { return Sources4.Contains(a.Unmap()) || Sources6.Contains(a) }

// Config says what to send.
type Config struct {
	// Target is the virtual service attacked.
	Target netip.AddrPort
	// Count is the number of packets.
	Count int
	// Flags are the TCP flags of every packet (SYN, ACK, FIN|ACK...). SYNs carry the
	// options of a Linux SYN; ACKs carry an acknowledgement no cookie check accepts.
	Flags byte
	// Workers is the number of sending goroutines, each with its own socket (1 if 0).
	Workers int
	// Limit stops the flood early when it has run that long (no limit if 0).
	Limit time.Duration
	// CPUs, when not empty, are the only CPUs the senders run on.
	CPUs []int
	// Plain SYNs carry an MSS option only, no timestamp, SACK or window scale.
	Plain bool
	// First is the index of the first packet. Packet k comes from source k (an address and
	// port of its own for k below 2^25), so floods with First 0 and First N send from
	// different sources: a second flood adds new connections rather than repeating them.
	First int
}

// Result is what a flood did.
type Result struct {
	Sent    int
	Elapsed time.Duration
}

// Rate is the packets sent per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Sent) / r.Elapsed.Seconds()
}

// Run sends the flood of c from raw sockets opened in the calling thread's network namespace.
// It needs CAP_NET_RAW.
func Run(c Config) (Result, error) {
	if !c.Target.IsValid() || c.Target.Port() == 0 {
		return Result{}, fmt.Errorf("flood: target %v: need an address and a port", c.Target)
	}
	if c.Count < 0 || c.First < 0 {
		return Result{}, fmt.Errorf("flood: count %d or first %d is negative", c.Count, c.First)
	}
	workers := c.Workers
	if workers <= 0 {
		workers = 1
	}
	target := netip.AddrPortFrom(c.Target.Addr().Unmap(), c.Target.Port())
	af := unix.AF_INET
	// one Sockaddr per sender: Sendto writes into it
	sockaddr := func() unix.Sockaddr { return &unix.SockaddrInet4{Addr: target.Addr().As4()} }
	if target.Addr().Is6() {
		af = unix.AF_INET6
		sockaddr = func() unix.Sockaddr { return &unix.SockaddrInet6{Addr: target.Addr().As16()} }
	}
	// Every socket before any sender: the caller may be on a thread switched into another
	// namespace only for the duration of this call.
	fds := make([]int, 0, workers)
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for w := 0; w < workers; w++ {
		fd, err := unix.Socket(af, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err != nil {
			return Result{}, fmt.Errorf("flood: raw socket: %w", err)
		}
		fds = append(fds, fd)
	}
	var sent atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	start := time.Now()
	var deadline time.Time
	if c.Limit > 0 {
		deadline = start.Add(c.Limit)
	}
	for w := 0; w < workers; w++ {
		first, n := c.First+c.Count*w/workers, c.Count*(w+1)/workers-c.Count*w/workers
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			if len(c.CPUs) > 0 {
				// The thread stays locked, and so dies with the goroutine.
				runtime.LockOSThread()
				var set unix.CPUSet
				for _, cpu := range c.CPUs {
					set.Set(cpu)
				}
				if err := unix.SchedSetaffinity(0, &set); err != nil {
					errs[w] = fmt.Errorf("flood: pinning to CPUs %v: %w", c.CPUs, err)
					return
				}
			}
			errs[w] = send(fds[w], sockaddr(), target, c.Flags, c.Plain, first, n, deadline, &sent)
		}(w)
	}
	wg.Wait()
	r := Result{Sent: int(sent.Load()), Elapsed: time.Since(start)}
	return r, errors.Join(errs...)
}

// send writes packets first..first+n-1 of a flood to fd.
func send(fd int, to unix.Sockaddr, target netip.AddrPort, flags byte, plain bool, first, n int, deadline time.Time, sent *atomic.Int64) error {
	var opts []byte
	if flags&SYN != 0 {
		opts = linuxOptions
		if plain {
			opts = mssOption
		}
	}
	buf := make([]byte, 96)
	x := uint32(first + 1)
	for i := 0; i < n; i++ {
		if i%1024 == 0 && !deadline.IsZero() && time.Now().After(deadline) {
			return nil
		}
		x = x*1664525 + 1013904223
		k := uint32(first + i)
		src := source(k, target.Addr().Is6())
		var ack uint32
		if flags&ACK != 0 {
			ack = x ^ 0x5bd1e995
		}
		p := packet(buf, src, target.Addr(), uint16(1024+k%60000), target.Port(), flags, x, ack, opts)
		if err := unix.Sendto(fd, p, 0, to); err != nil {
			if err == unix.ENOBUFS || err == unix.EAGAIN {
				// The qdisc is full: let it drain and send the same packet again.
				time.Sleep(50 * time.Microsecond)
				i--
				continue
			}
			return fmt.Errorf("flood: sendto %v: %w", target.Addr(), err)
		}
		sent.Add(1)
	}
	return nil
}

// source is the spoofed source address of packet k of a flood.
func source(k uint32, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 13: byte(k >> 16), 14: byte(k >> 8), 15: byte(k)})
	}
	return netip.AddrFrom4([4]byte{198, 18 + byte(k>>24&1), byte(k >> 16), byte(k >> 8)})
}

// Packet builds, in buf (at least 80 bytes), an IPv4 or IPv6 TCP packet from src:sport to
// dst:dport with flags, seq and ack, checksums filled in. A SYN carries Linux's options: MSS
// 1460, SACK permitted, a timestamp and window scale 7.
func Packet(buf []byte, src, dst netip.Addr, sport, dport uint16, flags byte, seq, ack uint32) []byte {
	var opts []byte
	if flags&SYN != 0 {
		opts = linuxOptions
	}
	return packet(buf, src, dst, sport, dport, flags, seq, ack, opts)
}

// linuxOptions are the options of a Linux SYN: MSS 1460, SACK permitted, a timestamp and
// window scale 7.
var linuxOptions = []byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}

// packet is Packet with the TCP options opts (a multiple of 4 bytes, at most 40).
func packet(buf []byte, src, dst netip.Addr, sport, dport uint16, flags byte, seq, ack uint32, opts []byte) []byte {
	tl := 20 + len(opts)
	hl := 20
	if src.Is6() {
		hl = 40
	}
	b := buf[:hl+tl]
	clear(b)
	if src.Is6() {
		b[0] = 0x60
		binary.BigEndian.PutUint16(b[4:], uint16(tl))
		b[6] = unix.IPPROTO_TCP
		b[7] = 64
		s16, d16 := src.As16(), dst.As16()
		copy(b[8:], s16[:])
		copy(b[24:], d16[:])
	} else {
		b[0] = 0x45
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		b[8] = 64
		b[9] = unix.IPPROTO_TCP
		s4, d4 := src.As4(), dst.As4()
		copy(b[12:], s4[:])
		copy(b[16:], d4[:])
		binary.BigEndian.PutUint16(b[10:], inet.Checksum(b[:20]))
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
	binary.BigEndian.PutUint16(t[16:], inet.L4Checksum(src, dst, unix.IPPROTO_TCP, t))
	return b
}
