// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fullnat/fullnat/internal/flood"
	"github.com/fullnat/fullnat/internal/pktfix"
	"golang.org/x/sys/unix"
)

// sniffStats is what sniff counts: the TCP segments an interface received.
type sniffStats struct {
	mu sync.Mutex
	// Segs and Syns count every TCP segment and those with SYN and without ACK.
	Segs, Syns int
	// Sources counts segments by IP source address, TOA by the client address of their TOA option.
	Sources, TOA map[netip.Addr]int
	// Spoofed counts segments whose source or TOA address is a flood source
	// (internal/flood), SpoofedSyns those of them that are SYNs.
	Spoofed, SpoofedSyns int
	// Other counts IP packets that are not TCP or UDP (or that the parser does not take).
	Other int
}

// add counts one received IP packet.
func (s *sniffStats) add(b []byte) {
	p, err := pktfix.Decode(b, false)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.Other++
		return
	}
	if p.Proto != unix.IPPROTO_TCP {
		return
	}
	s.Segs++
	syn := p.Flags&flood.SYN != 0 && p.Flags&flood.ACK == 0
	if syn {
		s.Syns++
	}
	src := p.Src.Addr()
	s.Sources[src]++
	spoofed := flood.Spoofed(src)
	for _, o := range p.Opts {
		var a netip.Addr
		switch {
		case o.Kind == pktfix.OptTOA4 && len(o.Data) == 6:
			a = netip.AddrFrom4([4]byte(o.Data[2:6]))
		case o.Kind == pktfix.OptTOA6 && len(o.Data) == 18:
			a = netip.AddrFrom16([16]byte(o.Data[2:18]))
		default:
			continue
		}
		s.TOA[a]++
		spoofed = spoofed || flood.Spoofed(a)
	}
	if spoofed {
		s.Spoofed++
		if syn {
			s.SpoofedSyns++
		}
	}
}

// top lists the n most frequent addresses of m as ADDR(COUNT), the rest as +N more.
func top(m map[netip.Addr]int, n int) string {
	if len(m) == 0 {
		return "-"
	}
	as := make([]netip.Addr, 0, len(m))
	for a := range m {
		as = append(as, a)
	}
	sort.Slice(as, func(i, j int) bool {
		if m[as[i]] != m[as[j]] {
			return m[as[i]] > m[as[j]]
		}
		return as[i].Less(as[j])
	})
	var out []string
	for i, a := range as {
		if i == n {
			out = append(out, fmt.Sprintf("+%d-more", len(as)-n))
			break
		}
		out = append(out, fmt.Sprintf("%s(%d)", a, m[a]))
	}
	return strings.Join(out, ",")
}

// sniffCmd counts what an interface receives until SIGINT or SIGTERM (or --for), then prints it.
func sniffCmd(args []string) error {
	fs := flag.NewFlagSet("sniff", flag.ExitOnError)
	name := fs.String("name", "", "name of this host in the report")
	iface := fs.String("iface", "eth0", "interface to watch")
	tag := fs.String("tag", "", "also print a \"result TAG key=value ...\" line")
	limit := fs.Duration("for", 0, "stop after this long (0: at SIGINT or SIGTERM)")
	_ = fs.Parse(args)
	if *name == "" {
		return errors.New("sniff needs --name")
	}
	ifi, err := net.InterfaceByName(*iface)
	if err != nil {
		return fmt.Errorf("sniff: %w", err)
	}
	all := uint16(unix.ETH_P_ALL<<8 | unix.ETH_P_ALL>>8)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(all))
	if err != nil {
		return fmt.Errorf("sniff: AF_PACKET socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: all, Ifindex: ifi.Index}); err != nil {
		return fmt.Errorf("sniff: binding to %s: %w", *iface, err)
	}
	// A flood must not overflow the socket before the counting catches up.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20)
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("sniff: %w", err)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	var deadline <-chan time.Time
	if *limit > 0 {
		deadline = time.After(*limit)
	}
	fmt.Println("ready")
	st := &sniffStats{Sources: map[netip.Addr]int{}, TOA: map[netip.Addr]int{}}
	buf := make([]byte, 65536)
	stopping := false
	for {
		if !stopping {
			select {
			case <-stop:
				stopping = true
			case <-deadline:
				stopping = true
			default:
			}
		}
		flags := 0
		if stopping {
			flags = unix.MSG_DONTWAIT // what is queued, then the end
		}
		n, from, err := unix.Recvfrom(fd, buf, flags)
		if err != nil {
			if stopping {
				break // drained
			}
			continue
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if p := ll.Protocol>>8 | ll.Protocol<<8; p != unix.ETH_P_IP && p != unix.ETH_P_IPV6 {
			continue
		}
		st.add(buf[:n])
	}
	var drops uint32
	if s, err := unix.GetsockoptTpacketStats(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		drops = s.Drops
	}
	fmt.Printf("%s received %d TCP segments (%d SYNs) from %s; TOA client addresses %s; %d from spoofed flood addresses (%d SYNs)\n",
		*name, st.Segs, st.Syns, top(st.Sources, 4), top(st.TOA, 4), st.Spoofed, st.SpoofedSyns)
	if *tag != "" {
		fmt.Printf("result %s server=%s tcp=%d syn=%d spoofed=%d spoofed_syn=%d toa_addrs=%d sources=%s toa=%s dropped=%d\n",
			*tag, *name, st.Segs, st.Syns, st.Spoofed, st.SpoofedSyns, len(st.TOA), top(st.Sources, 4), top(st.TOA, 4), drops)
	}
	return nil
}
