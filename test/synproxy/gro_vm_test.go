// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package synproxy

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/fullnat/fullnat/ipvs"
	"golang.org/x/sys/unix"
)

const ethtool = "/usr/sbin/ethtool"

// tracefs is where the kernel's tracing file system is mounted in the VM.
const tracefs = "/sys/kernel/tracing"

// flistProbe counts the calls of skb_gro_receive_list, the function with which GRO chains a
// segment to a packet in fraglist mode (rx-gro-list), with a kprobe event.
type flistProbe struct{}

const flistEvent = "fullnat_test/flist"

func openFlistProbe(t *testing.T) flistProbe {
	t.Helper()
	if _, err := os.Stat(tracefs + "/kprobe_events"); err != nil {
		if err := unix.Mount("tracefs", tracefs, "tracefs", 0, ""); err != nil {
			t.Fatalf("mounting tracefs at %s: %v", tracefs, err)
		}
	}
	// No jump optimisation: it patches kernel text later, maybe while a vCPU runs it (TCG).
	write(t, "/proc/sys/debug/kprobes-optimization", "0")
	write(t, tracefs+"/kprobe_events", "p:"+flistEvent+" skb_gro_receive_list\n")
	write(t, tracefs+"/events/"+flistEvent+"/enable", "1")
	t.Cleanup(func() {
		_ = os.WriteFile(tracefs+"/events/"+flistEvent+"/enable", []byte("0"), 0)
		f, err := os.OpenFile(tracefs+"/kprobe_events", os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			_, _ = f.WriteString("-:" + flistEvent + "\n")
			_ = f.Close()
		}
	})
	return flistProbe{}
}

func write(t *testing.T, file, s string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		_, err = f.WriteString(s)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatalf("writing %q to %s: %v", s, file, err)
	}
}

// hits is how often the probe fired so far.
func (flistProbe) hits(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile(tracefs + "/kprobe_profile")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		if len(fs) >= 2 && (fs[0] == flistEvent || fs[0] == "flist") {
			n, err := strconv.ParseUint(fs[1], 10, 64)
			if err != nil {
				t.Fatalf("kprobe_profile: %q", line)
			}
			return n
		}
	}
	t.Fatalf("no %s in kprobe_profile:\n%s", flistEvent, b)
	return 0
}

// segCheck is what the receiving end of a transfer saw of the sender's segments: how many fit
// the connection as the receiver knows it from the handshake, and how many did not.
type segCheck struct {
	found     bool // the capture saw the handshake
	good, bad int
	goodBytes int
	example   string
}

// checkSegments drains c, a capture on the receiving end of one connection to or from port 80
// that moved at most limit bytes each way, and checks every segment the sender sent: its
// sequence number must lie in the sender's stream and its acknowledgement in the receiver's,
// counted from the initial sequence numbers of the handshake the receiver saw. server says
// whether the receiver is the server (port 80) or the client. A segment the director
// translated wrongly carries a number from the other side's space, off by a random delta.
func checkSegments(c *vmnet.Capture, server bool, limit uint32) segCheck {
	var in, out []tcpSeg
	for _, dir := range []bool{false, true} {
		for {
			f, err := c.Next(dir, 300*time.Millisecond, nil)
			if err != nil {
				break
			}
			if sg, ok := parseTCP(f.Data); ok {
				if dir {
					out = append(out, sg)
				} else {
					in = append(in, sg)
				}
			}
		}
	}
	const syn, ack = 0x02, 0x10
	fromSender := func(sg tcpSeg) bool {
		if server {
			return sg.dst.Port() == 80
		}
		return sg.src.Port() == 80
	}
	var r segCheck
	var isnS, isnR uint32
	var haveS, haveR bool
	for _, sg := range in {
		if fromSender(sg) && sg.flags&syn != 0 {
			isnS, haveS = sg.seq, true
			break
		}
	}
	for _, sg := range out {
		if !fromSender(sg) && sg.flags&syn != 0 {
			isnR, haveR = sg.seq, true
			break
		}
	}
	if !haveS || !haveR {
		return r
	}
	r.found = true
	for _, sg := range in {
		if !fromSender(sg) || sg.flags&syn != 0 {
			continue
		}
		okSeq := sg.seq-(isnS+1) <= limit
		okAck := sg.flags&ack == 0 || sg.ack-(isnR+1) <= limit
		if okSeq && okAck {
			r.good++
			r.goodBytes += sg.payload
			continue
		}
		r.bad++
		if r.example == "" {
			r.example = fmt.Sprintf("%s -> %s seq %d (ISN %d) ack %d (ISN %d) %d bytes", sg.src, sg.dst,
				sg.seq, isnS, sg.ack, isnR, sg.payload)
		}
	}
	return r
}

// TestSynProxyFraglistGRO: with GRO in fraglist mode (rx-gro-list) on the director's devices,
// a packet IPVS gets may be a chain of whole segments, each with its own TCP header, that GSO
// takes apart again on the way out, fixing only addresses and ports from the head. FULLNAT and
// SYNPROXY move sequence numbers and acknowledgements, so every segment's header has to be
// translated: bulk transfers both ways through FULLNAT and through SYNPROXY NAT, IPv4 and IPv6,
// must arrive intact (lvs-peer checks every byte).
//
// The client and the real servers send segments, not TSO packets (veth runs GRO only then);
// the director's devices do GRO with rx-gro-list and, like real NICs, cannot transmit fraglist
// packets (tx-gso-list off), so GSO segments them. Only Linux 6.10 and later build TCP fraglist
// packets: on 6.12 a kprobe on skb_gro_receive_list proves GRO chained segments during each
// transfer; on 6.1 (UDP fraglist GRO only) the test asserts only that the transfers work.
//
// A segment GSO sends with an untranslated sequence or acknowledgement number is dropped by the
// receiver and sent again, so the content arrives intact anyway, only slowly: the test also
// checks, on the receiving end, that every segment of the sender lies in the connection's
// sequence space as the receiver's handshake defined it.
func TestSynProxyFraglistGRO(t *testing.T) {
	f := newFixture(t)
	d := f.tp.Director
	f.tp.Client.Run(t, ethtool, "-K", "eth0", "tso", "off")
	for _, rs := range f.tp.Servers {
		rs.Run(t, ethtool, "-K", "eth0", "tso", "off")
	}
	for _, dev := range []string{"c0", "r1", "r2"} {
		d.Run(t, ethtool, "-K", dev, "gro", "on", "rx-gro-list", "on", "tx-gso-list", "off")
		if out := d.Run(t, ethtool, "-k", dev); !strings.Contains(out, "rx-gro-list: on") ||
			!strings.Contains(out, "generic-receive-offload: on") {
			t.Fatalf("%s: GRO or rx-gro-list did not go on:\n%s", dev, out)
		}
	}
	fraglist := os.Getenv("RIG_KERNEL") != "6.1"
	var probe flistProbe
	if fraglist {
		probe = openFlistProbe(t)
	}
	const size = 4 << 20
	// transfers per direction until GRO has chained segments
	const groAttempts = 6
	for _, c := range []struct {
		fwd      ipvs.ForwardMethod
		synproxy bool
	}{{ipvs.FullNAT, false}, {ipvs.Masquerade, true}} {
		for _, vip := range []netip.Addr{f.tp.VIP, f.tp.VIP6} {
			name := fmt.Sprintf("%v/%v", c.fwd, vip)
			if c.synproxy {
				name = "SYNPROXY-" + name
			}
			t.Run(name, func(t *testing.T) {
				s := f.service(t, vip, c.fwd, c.synproxy)
				addr := netip.AddrPortFrom(vip, 80).String()
				for _, op := range []string{"put", "get"} {
					for attempt := 1; ; attempt++ {
						var before uint64
						if fraglist {
							before = probe.hits(t)
						}
						// The receiving end sees what the director made of each segment.
						recv := []*vmnet.Capture{vmnet.OpenCapture(t, f.tp.Client, "eth0")}
						if op == "put" {
							recv = nil
							for _, rs := range f.tp.Servers {
								recv = append(recv, vmnet.OpenCapture(t, rs, "eth0"))
							}
						}
						r, out, err := vmnet.TryDial(f.tp.Client, "--addr", addr, "--op", op, "--size", strconv.Itoa(size), "--timeout", "45s")
						var seg segCheck
						for _, c := range recv {
							if sc := checkSegments(c, op == "put", size+1000); sc.found {
								seg = sc
							}
						}
						if err != nil || r.Bytes != size {
							// a stalled transfer takes the whole timeout: one is enough
							t.Errorf("%s of %d bytes: %d bytes intact (%v)\n%s", op, size, r.Bytes, err, out)
						} else {
							t.Logf("%s %d bytes in %d ms", op, size, r.ElapsedMS)
						}
						// Under load the capture may miss packets; an eighth of the stream is
						// plenty to see mistranslated segments (every chained one is).
						if !seg.found {
							t.Errorf("%s: the receiving end's capture missed the handshake", op)
						} else if seg.bad > 0 || seg.goodBytes < size/8 {
							t.Errorf("%s: the receiving end got %d segments outside the connection's sequence space (%d inside, %d bytes), e.g. %s",
								op, seg.bad, seg.good, seg.goodBytes, seg.example)
						} else {
							t.Logf("%s: the receiving end saw %d segments (%d bytes), all inside the connection", op, seg.good, seg.goodBytes)
						}
						if fraglist {
							n := probe.hits(t) - before
							t.Logf("%s: skb_gro_receive_list ran %d times", op, n)
							switch {
							case n == 0 && attempt < groAttempts && !t.Failed():
								// a slow kernel (the sanitizer one) may hand the
								// segments over one by one: send them again
								t.Logf("%s: GRO chained no segment, transfer %d of at most %d", op, attempt, groAttempts)
								continue
							case n == 0:
								t.Errorf("%s: GRO chained no segment in %d transfers (skb_gro_receive_list never ran): the transfer proves nothing", op, attempt)
							}
						}
						break
					}
					if t.Failed() {
						break
					}
				}
				if err := f.c.DeleteService(t.Context(), s); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}
