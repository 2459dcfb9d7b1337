// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package flood

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Answered is what Answer did.
type Answered struct {
	SYNs, SYNACKs int // packets answered, by kind
}

// Answer completes, with no socket behind them, the TCP handshakes that a SYN flood starts: it
// reads every IPv4 TCP packet that arrives on interface ifname (in the calling thread's
// namespace), for any destination, and answers a SYN with a SYN-ACK (the part of a real
// server) and a SYN-ACK with the handshake's ACK (the part of the flood's spoofed client). It
// returns when stop is closed. With one Answer beside the flood's client and one beside a real
// server address that no one owns, a SYN flood opens SYNPROXY connections that the real server
// "accepts": connections a flood alone cannot open, since only a client that answers the
// cookie does. It needs CAP_NET_RAW. IPv6 is not answered.
func Answer(ifname string, stop <-chan struct{}) (Answered, error) {
	var a Answered
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return a, fmt.Errorf("flood: answer: %w", err)
	}
	proto := htons(unix.ETH_P_IP)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return a, fmt.Errorf("flood: answer: AF_PACKET socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		return a, fmt.Errorf("flood: answer: bind to %s: %w", ifname, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20); err != nil {
		return a, fmt.Errorf("flood: answer: SO_RCVBUFFORCE: %w", err)
	}
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return a, fmt.Errorf("flood: answer: SO_RCVTIMEO: %w", err)
	}
	out, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return a, fmt.Errorf("flood: answer: raw socket: %w", err)
	}
	defer unix.Close(out)
	in, buf := make([]byte, 2048), make([]byte, 96)
	for {
		select {
		case <-stop:
			return a, nil
		default:
		}
		n, from, err := unix.Recvfrom(fd, in, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return a, fmt.Errorf("flood: answer: read from %s: %w", ifname, err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		p, ok := reply(buf, in[:n])
		if !ok {
			continue
		}
		to := &unix.SockaddrInet4{Addr: [4]byte(p[16:20])}
		for {
			err = unix.Sendto(out, p, 0, to)
			if err != unix.ENOBUFS && err != unix.EAGAIN {
				break
			}
			time.Sleep(50 * time.Microsecond)
		}
		if err != nil {
			return a, fmt.Errorf("flood: answer: sendto %v: %w", netip.AddrFrom4(to.Addr), err)
		}
		if p[20+13] == SYN|ACK {
			a.SYNs++
		} else {
			a.SYNACKs++
		}
	}
}

// reply builds in buf the answer to the IPv4 packet pkt: a SYN-ACK to a SYN, an ACK to a
// SYN-ACK. False when pkt is neither.
func reply(buf, pkt []byte) ([]byte, bool) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != unix.IPPROTO_TCP {
		return nil, false
	}
	hl := int(pkt[0]&0xf) * 4
	if len(pkt) < hl+20 || binary.BigEndian.Uint16(pkt[6:])&0x3fff != 0 {
		return nil, false // short, or a fragment
	}
	tcp := pkt[hl:]
	src, dst := netip.AddrFrom4([4]byte(pkt[12:16])), netip.AddrFrom4([4]byte(pkt[16:20]))
	sport, dport := binary.BigEndian.Uint16(tcp[0:]), binary.BigEndian.Uint16(tcp[2:])
	seq, ack := binary.BigEndian.Uint32(tcp[4:]), binary.BigEndian.Uint32(tcp[8:])
	switch tcp[13] & (FIN | SYN | RST | ACK) {
	case SYN:
		// the real server's ISN: any number the connection keeps
		isn := seq*2654435761 ^ uint32(sport)<<16 ^ uint32(dport)
		return packet(buf, dst, src, dport, sport, SYN|ACK, isn, seq+1, mssOption), true
	case SYN | ACK:
		return packet(buf, dst, src, dport, sport, ACK, ack, seq+1, nil), true
	}
	return nil, false
}

// mssOption is the only option of Answer's SYN-ACKs and of plain SYNs (Config.Plain).
var mssOption = []byte{2, 4, 0x05, 0xb4}

// htons is v in network byte order, as AF_PACKET takes protocol numbers.
func htons(v uint16) uint16 { return v<<8 | v>>8 }
