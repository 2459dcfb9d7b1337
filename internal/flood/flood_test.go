// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package flood

import (
	"encoding/binary"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// verify recomputes a checksum over parts the slow way: the one's-complement sum of all
// 16-bit words, checksum field included, must be 0xffff.
func verify(t *testing.T, what string, parts ...[]byte) {
	t.Helper()
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var s uint64
	for i := 0; i < len(all); i += 2 {
		s += uint64(all[i])<<8 | uint64(all[i+1])
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	if s != 0xffff {
		t.Errorf("%s checksum wrong: sum %#x", what, s)
	}
}

func TestPacket(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst netip.Addr
		flags    byte
		wantLen  int
		wantOpts bool
	}{
		{"v4 SYN", netip.MustParseAddr("198.18.1.2"), netip.MustParseAddr("203.0.113.10"), SYN, 60, true},
		{"v4 ACK", netip.MustParseAddr("198.18.1.2"), netip.MustParseAddr("203.0.113.10"), ACK, 40, false},
		{"v6 SYN", netip.MustParseAddr("2001:db8:ff00::1"), netip.MustParseAddr("2001:db8:1::10"), SYN, 80, true},
		{"v6 FIN", netip.MustParseAddr("2001:db8:ff00::1"), netip.MustParseAddr("2001:db8:1::10"), FIN | ACK, 60, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := make([]byte, 96)
			for i := range buf {
				buf[i] = 0xaa // Packet must not leave old bytes behind
			}
			p := Packet(buf, tc.src, tc.dst, 4242, 80, tc.flags, 0x01020304, 0x0a0b0c0d)
			if len(p) != tc.wantLen {
				t.Fatalf("length %d, want %d", len(p), tc.wantLen)
			}
			var tcp, pseudo []byte
			if tc.src.Is6() {
				if p[0]>>4 != 6 || p[6] != 6 || int(binary.BigEndian.Uint16(p[4:])) != len(p)-40 {
					t.Fatalf("bad IPv6 header % x", p[:40])
				}
				if netip.AddrFrom16([16]byte(p[8:24])) != tc.src || netip.AddrFrom16([16]byte(p[24:40])) != tc.dst {
					t.Fatalf("addresses % x", p[8:40])
				}
				tcp = p[40:]
				pseudo = append(append([]byte{}, p[8:40]...), 0, 0, byte(len(tcp)>>8), byte(len(tcp)), 0, 0, 0, 6)
			} else {
				if p[0] != 0x45 || p[9] != 6 || int(binary.BigEndian.Uint16(p[2:])) != len(p) {
					t.Fatalf("bad IPv4 header % x", p[:20])
				}
				if netip.AddrFrom4([4]byte(p[12:16])) != tc.src || netip.AddrFrom4([4]byte(p[16:20])) != tc.dst {
					t.Fatalf("addresses % x", p[12:20])
				}
				verify(t, "IPv4 header", p[:20])
				tcp = p[20:]
				pseudo = append(append([]byte{}, p[12:20]...), 0, 6, byte(len(tcp)>>8), byte(len(tcp)))
			}
			verify(t, "TCP", pseudo, tcp)
			if sp, dp := binary.BigEndian.Uint16(tcp), binary.BigEndian.Uint16(tcp[2:]); sp != 4242 || dp != 80 {
				t.Errorf("ports %d -> %d", sp, dp)
			}
			if seq, ack := binary.BigEndian.Uint32(tcp[4:]), binary.BigEndian.Uint32(tcp[8:]); seq != 0x01020304 || ack != 0x0a0b0c0d {
				t.Errorf("seq %#x ack %#x", seq, ack)
			}
			if tcp[13] != tc.flags || int(tcp[12]>>4)*4 != len(tcp) {
				t.Errorf("flags %#x, data offset %d for %d bytes", tcp[13], tcp[12]>>4, len(tcp))
			}
			if tc.wantOpts {
				// MSS 1460, SACK permitted, timestamp, window scale 7.
				o := tcp[20:]
				if o[0] != 2 || binary.BigEndian.Uint16(o[2:]) != 1460 || o[4] != 4 || o[6] != 8 || o[16] != 1 || o[17] != 3 || o[19] != 7 {
					t.Errorf("SYN options % x", o)
				}
			}
		})
	}
}

func TestRunBadConfig(t *testing.T) {
	for _, c := range []Config{
		{},
		{Target: netip.MustParseAddrPort("203.0.113.10:0"), Count: 1},
		{Target: netip.MustParseAddrPort("203.0.113.10:80"), Count: -1},
	} {
		if _, err := Run(c); err == nil {
			t.Errorf("Run(%+v): no error", c)
		}
	}
}

func TestRate(t *testing.T) {
	if r := (Result{Sent: 1000, Elapsed: 500e6}).Rate(); r != 2000 {
		t.Errorf("rate %v, want 2000", r)
	}
	if r := (Result{Sent: 5}).Rate(); r != 0 {
		t.Errorf("rate of no time %v, want 0", r)
	}
}

// TestRunLoopback sends small floods of each family to the loopback of a fresh network
// namespace (root only; CI runs as root) and counts them with a raw receiving socket.
func TestRunLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for raw sockets and a private network namespace")
	}
	for _, target := range []string{"127.0.0.1:9", "[::1]:9"} {
		t.Run(target, func(t *testing.T) {
			ap := netip.MustParseAddrPort(target)
			err := inPrivateNetns(func() error {
				af := unix.AF_INET
				if ap.Addr().Is6() {
					af = unix.AF_INET6
				}
				rx, err := unix.Socket(af, unix.SOCK_RAW, unix.IPPROTO_TCP)
				if err != nil {
					return err
				}
				defer unix.Close(rx)
				// Three senders, pinned to CPU 0.
				r, err := Run(Config{Target: ap, Count: 100, Flags: SYN, Workers: 3, CPUs: []int{0}})
				if err != nil {
					return err
				}
				if r.Sent != 100 {
					t.Errorf("sent %d, want 100", r.Sent)
				}
				if err := unix.SetNonblock(rx, true); err != nil {
					return err
				}
				buf := make([]byte, 256)
				got := 0
				for {
					if _, _, err := unix.Recvfrom(rx, buf, 0); err != nil {
						break
					}
					got++
				}
				if got != 100 {
					t.Errorf("received %d SYNs, want 100", got)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// inPrivateNetns runs fn on a thread moved into a new network namespace with lo up.
func inPrivateNetns(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread stays locked and dies with the goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("lo")
		if err != nil {
			errc <- err
			return
		}
		ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func TestSpoofedCoversSources(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, k := range []uint32{0, 1, 1 << 16, 1<<24 - 1, 1 << 24, 1<<25 - 1, 1<<32 - 1} {
			if src := source(k, v6); !Spoofed(src) {
				t.Errorf("flood source %v (packet %d) is not Spoofed", src, k)
			}
		}
	}
	for _, a := range []string{"192.0.2.2", "198.20.0.1", "198.17.255.255", "198.51.100.201", "2001:db8:1::2", "2001:db8:fe00::1"} {
		if Spoofed(netip.MustParseAddr(a)) {
			t.Errorf("%s is Spoofed", a)
		}
	}
}
