// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package synproxy

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/inet"
	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
	"golang.org/x/sys/unix"
)

// Path MTU discovery through SYNPROXY: the client's stack quotes the real server's segments in
// its ICMP errors with the sequence numbers it received, which SYNPROXY moved by its delta. The
// director has to give them back in the real server's space, or the real server's TCP drops the
// error as out of window (TcpExtOutOfWindowIcmps) and never lowers its path MTU.

const pmtuPort = 8080

// pmtuReply is what holdServer answers to a line: short, so one segment carries it.
const pmtuReply = 200

// holdServer listens on addr:pmtuPort in ns; each connection gets pmtuReply bytes for the first
// line it sends and then stays open (the real server's snd_una == snd_nxt) until the client
// closes it or the test ends.
func holdServer(t *testing.T, ns vmnet.NS, addr netip.Addr) {
	t.Helper()
	var l net.Listener
	err := vmnet.InNetns(string(ns), func() error {
		var err error
		l, err = net.Listen("tcp", netip.AddrPortFrom(addr, pmtuPort).String())
		return err
	})
	if err != nil {
		t.Fatalf("listening in %s: %v", ns, err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := bufio.NewReader(c)
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
				if _, err := c.Write([]byte(strings.Repeat("x", pmtuReply-1) + "\n")); err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, r)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// holdExchange connects from ns to a holdServer at addr, sends a line, reads the reply and
// leaves the connection open (closed at the test's end); it returns the client's port.
func holdExchange(t *testing.T, ns vmnet.NS, addr netip.AddrPort) uint16 {
	t.Helper()
	c := dialIn(t, ns, addr)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, pmtuReply)); err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	return uint16(c.LocalAddr().(*net.TCPAddr).Port)
}

// tcpSeg is a TCP segment a capture saw.
type tcpSeg struct {
	src, dst netip.AddrPort
	seq, ack uint32
	flags    byte
	payload  int
}

// parseTCP reads an IPv4 or IPv6 (no extension headers) TCP segment.
func parseTCP(b []byte) (s tcpSeg, ok bool) {
	th, ok := tcpHeader(b)
	if !ok || len(th) < 20 {
		return s, false
	}
	var src, dst netip.Addr
	var end int
	if b[0]>>4 == 4 {
		src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		end = int(binary.BigEndian.Uint16(b[2:]))
	} else {
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		end = 40 + int(binary.BigEndian.Uint16(b[4:]))
	}
	if end > len(b) || end == 0 { // a GSO packet's length field may be 0: use what was captured
		end = len(b)
	}
	hl := int(th[12]>>4) * 4
	off := len(b) - len(th)
	if hl < 20 || off+hl > end {
		return s, false
	}
	s.src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(th[0:]))
	s.dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(th[2:]))
	s.seq = binary.BigEndian.Uint32(th[4:])
	s.ack = binary.BigEndian.Uint32(th[8:])
	s.flags = th[13]
	s.payload = end - off - hl
	return s, true
}

// nextSeq reads from c (direction out) the data segments from port pmtuPort to dst (any port
// when dst's port is 0) until want payload bytes have gone by, and returns the sequence number
// after the last, the next one the real server sends in the space of the side c captures on,
// and the destination port.
func nextSeq(c *vmnet.Capture, out bool, dst netip.AddrPort, want int) (uint32, uint16, error) {
	got := 0
	var end uint32
	var port uint16
	for got < want {
		var s tcpSeg
		_, err := c.Next(out, 10*time.Second, func(f vmnet.Frame) bool {
			var ok bool
			s, ok = parseTCP(f.Data)
			return ok && s.src.Port() == pmtuPort && s.dst.Addr() == dst.Addr() && s.payload > 0 &&
				(dst.Port() == 0 || s.dst.Port() == dst.Port())
		})
		if err != nil {
			return 0, 0, fmt.Errorf("after %d of %d bytes: %w", got, want, err)
		}
		got += s.payload
		end = s.seq + uint32(s.payload)
		port = s.dst.Port()
		dst = s.dst
	}
	return end, port, nil
}

// fragNeeded builds, from client to vip, an ICMP "fragmentation needed" (IPv4) or "packet too
// big" (IPv6) with MTU mtu about a segment vip:pmtuPort -> client with sequence number seq.
func fragNeeded(client, vip netip.AddrPort, seq uint32, mtu int) []byte {
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], vip.Port())
	binary.BigEndian.PutUint16(tcp[2:], client.Port())
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[12] = 5 << 4
	tcp[13] = 0x18 // PSH ACK
	binary.BigEndian.PutUint16(tcp[14:], 0xffff)
	const quotedLen = 1400 // the segment the client could not pass on
	h := inet.Header{Src: vip.Addr(), Dst: client.Addr(), Proto: unix.IPPROTO_TCP, TTL: 63}
	if client.Addr().Is4() {
		h.PayloadLen, h.Frag = quotedLen-20, 0x4000 // DF
		return inet.ICMPError(client.Addr(), vip.Addr(), 3, 4, uint32(mtu), append(h.Marshal(), tcp...))
	}
	h.PayloadLen = quotedLen - 40
	return inet.ICMPError(client.Addr(), vip.Addr(), 2, 0, uint32(mtu), append(h.Marshal(), tcp...))
}

// quotedTCP is an ICMP "too big" error and the TCP segment it quotes.
type quotedTCP struct {
	src, dst     netip.Addr
	inSrc, inDst netip.AddrPort
	seq          uint32
	mtu          int
}

// parseTooBig reads b as an IPv4 frag-needed or ICMPv6 packet-too-big about a TCP segment.
func parseTooBig(b []byte) (q quotedTCP, ok bool) {
	if len(b) < 1 {
		return q, false
	}
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0xf) * 4
		if len(b) < ihl+8+20+8 || b[9] != unix.IPPROTO_ICMP || b[ihl] != 3 || b[ihl+1] != 4 {
			return q, false
		}
		q.src, q.dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		q.mtu = int(binary.BigEndian.Uint16(b[ihl+6:]))
		in := b[ihl+8:]
		iihl := int(in[0]&0xf) * 4
		if in[9] != unix.IPPROTO_TCP || len(in) < iihl+8 {
			return q, false
		}
		q.inSrc = netip.AddrPortFrom(netip.AddrFrom4([4]byte(in[12:16])), binary.BigEndian.Uint16(in[iihl:]))
		q.inDst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(in[16:20])), binary.BigEndian.Uint16(in[iihl+2:]))
		q.seq = binary.BigEndian.Uint32(in[iihl+4:])
	case 6:
		if len(b) < 40+8+40+8 || b[6] != unix.IPPROTO_ICMPV6 || b[40] != 2 {
			return q, false
		}
		q.src, q.dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		q.mtu = int(binary.BigEndian.Uint32(b[44:]))
		in := b[48:]
		if in[6] != unix.IPPROTO_TCP {
			return q, false
		}
		q.inSrc = netip.AddrPortFrom(netip.AddrFrom16([16]byte(in[8:24])), binary.BigEndian.Uint16(in[40:]))
		q.inDst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(in[24:40])), binary.BigEndian.Uint16(in[42:]))
		q.seq = binary.BigEndian.Uint32(in[44:])
	default:
		return q, false
	}
	return q, true
}

var routeMTU = regexp.MustCompile(`\bmtu (\d+)`)

// pathMTU is the MTU `ip route get dst` shows in ns, 0 when the route has none of its own.
func pathMTU(t *testing.T, ns vmnet.NS, dst netip.Addr) int {
	t.Helper()
	fam := "-4"
	if dst.Is6() {
		fam = "-6"
	}
	out := ns.Run(t, vmnet.IP, fam, "route", "get", dst.String())
	m := routeMTU.FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestSynProxyPMTU: a "fragmentation needed" / "packet too big" the client sends about a reply
// of a SYNPROXY connection (NAT and FULLNAT, IPv4 and IPv6) reaches the real server quoting
// the sequence number the real server itself sent, so its TCP accepts the error and lowers
// the path MTU towards the client (NAT) or the local address (FULLNAT).
func TestSynProxyPMTU(t *testing.T) {
	f := newFixture(t)
	rs := f.tp.Servers[0]
	holdServer(t, rs, f.tp.ServerAddrs[0])
	holdServer(t, rs, f.tp.ServerAddrs6[0])
	const mtu = 1280
	for _, fwd := range []ipvs.ForwardMethod{ipvs.FullNAT, ipvs.Masquerade} {
		for _, vip := range []netip.Addr{f.tp.VIP, f.tp.VIP6} {
			t.Run(fmt.Sprintf("%v/%v", fwd, vip), func(t *testing.T) {
				rsAddr, client, peer := f.tp.ServerAddrs[0], f.tp.ClientAddr, f.tp.ClientAddr
				if vip.Is6() {
					rsAddr, client, peer = f.tp.ServerAddrs6[0], f.tp.ClientAddr6, f.tp.ClientAddr6
				}
				if fwd == ipvs.FullNAT {
					peer = f.laddrs[0]
					if vip.Is6() {
						peer = f.lad6[0]
					}
				}
				s := ipvs.Service{Protocol: ipvs.Protocol(6), Address: vip, Port: pmtuPort, Scheduler: "rr", Flags: ipvs.FlagSynProxy}
				if err := f.c.CreateService(t.Context(), s); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = f.c.DeleteService(context.Background(), s) })
				if err := f.c.CreateDestination(t.Context(), s, ipvs.Destination{Address: rsAddr, Port: pmtuPort, ForwardMethod: fwd, Weight: 1}); err != nil {
					t.Fatal(err)
				}
				if fwd == ipvs.FullNAT {
					if err := f.c.CreateLocalAddress(t.Context(), s, ipvs.LocalAddress{Address: peer}); err != nil {
						t.Fatal(err)
					}
				}
				rs.Run(t, vmnet.IP, "-4", "route", "flush", "cache")
				rs.Run(t, vmnet.IP, "-6", "route", "flush", "cache")
				if m := pathMTU(t, rs, peer); m != 0 && m <= mtu {
					t.Fatalf("the real server's route to %s already has mtu %d", peer, m)
				}

				onCl := vmnet.OpenCapture(t, f.tp.Client, "eth0")
				onRS := vmnet.OpenCapture(t, rs, "eth0")
				cport := holdExchange(t, f.tp.Client, netip.AddrPortFrom(vip, pmtuPort))
				// The next sequence number the real server sends, as the client knows it and
				// as the real server does.
				clSeq, _, err := nextSeq(onCl, false, netip.AddrPortFrom(client, cport), pmtuReply)
				if err != nil {
					t.Fatalf("the reply on the client: %v", err)
				}
				rsDst := netip.AddrPortFrom(peer, cport)
				if fwd == ipvs.FullNAT {
					rsDst = netip.AddrPortFrom(peer, 0) // the local port FULLNAT chose
				}
				rsSeq, rsPort, err := nextSeq(onRS, true, rsDst, pmtuReply)
				if err != nil {
					t.Fatalf("the reply on the real server: %v", err)
				}
				f.checkPMTU(t, onRS, client, vip, cport, peer, rsAddr, rsPort, clSeq, rsSeq, mtu)
			})
		}
	}
}

// checkPMTU sends the error from the client and checks what the real server makes of it.
func (f *fixture) checkPMTU(t *testing.T, onRS *vmnet.Capture, client, vip netip.Addr, cport uint16,
	peer, rsAddr netip.Addr, rsPort uint16, clSeq, rsSeq uint32, mtu int) {
	t.Helper()
	rs := f.tp.Servers[0]
	if clSeq == rsSeq {
		t.Fatalf("SYNPROXY did not move the real server's sequence numbers (%d on both sides): the test proves nothing", clSeq)
	}
	t.Logf("next sequence of the real server: %d on the client, %d on the real server", clSeq, rsSeq)
	oow := tcpExt(t, rs)["OutOfWindowIcmps"]
	pkt := fragNeeded(netip.AddrPortFrom(client, cport), netip.AddrPortFrom(vip, pmtuPort), clSeq, mtu)
	if err := vmnet.SendRaw(f.tp.Client, pkt, vip); err != nil {
		t.Fatal(err)
	}
	tooBigArrives(t, onRS, rs, "the real server", netip.AddrPortFrom(rsAddr, pmtuPort), netip.AddrPortFrom(peer, rsPort),
		rsSeq, clSeq, mtu, peer, oow)
}

// tooBigArrives checks that the ICMP "too big" error reaches ns (its capture c, who names it)
// about its own segment in -> out with its own sequence number seq (the other side's is other),
// that ns's route to peer takes the MTU, and that its TCP dropped no ICMP error as out of window
// since the TcpExtOutOfWindowIcmps count oow.
func tooBigArrives(t *testing.T, c *vmnet.Capture, ns vmnet.NS, who string, in, out netip.AddrPort,
	seq, other uint32, mtu int, peer netip.Addr, oow uint64) {
	t.Helper()
	var q quotedTCP
	if _, err := c.Next(false, 10*time.Second, func(fr vmnet.Frame) bool {
		var ok bool
		q, ok = parseTooBig(fr.Data)
		return ok
	}); err != nil {
		t.Fatalf("no ICMP error reached %s: %v", who, err)
	}
	if q.dst != in.Addr() || q.inSrc != in || q.inDst != out || q.mtu != mtu {
		t.Errorf("error on %s: %s -> %s mtu %d about %s -> %s; want -> %s mtu %d about %s -> %s",
			who, q.src, q.dst, q.mtu, q.inSrc, q.inDst, in.Addr(), mtu, in, out)
	}
	if q.seq != seq {
		t.Errorf("the error quotes sequence %d, want %s's own %d (the other side's is %d)", q.seq, who, seq, other)
	}
	// TCP handles the error in softirq: give it a moment.
	var got int
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if got = pathMTU(t, ns, peer); got == mtu {
			break
		}
	}
	if got != mtu {
		t.Errorf("%s's route to %s has mtu %d after the error, want %d:\n%s", who, peer, got, mtu,
			ns.Run(t, vmnet.IP, "route", "get", peer.String()))
	}
	if n := tcpExt(t, ns)["OutOfWindowIcmps"] - oow; n != 0 {
		t.Errorf("%s dropped %d ICMP errors as out of window (TcpExtOutOfWindowIcmps)", who, n)
	}
}
