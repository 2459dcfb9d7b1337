// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package flood_test

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/flood"
	"github.com/fullnat/fullnat/internal/vmnet"
)

// TestAnswerHandshakes plays both ends of a handshake across two namespaces: a flood of plain
// SYNs from spoofed sources in a goes to an address of b's segment that no one owns; Answer on
// b's interface makes a SYN-ACK of each (back through a, which owns no spoofed source either),
// and Answer on a's interface the ACK of each.
func TestAnswerHandshakes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and raw sockets")
	}
	a, b := vmnet.Add(t, "flood-a"), vmnet.Add(t, "flood-b")
	vmnet.Veth(t, a, "a0", b, "b0")
	a.Addr(t, "a0", "10.9.0.1/24")
	b.Addr(t, "b0", "10.9.0.2/24")
	mac := strings.TrimSpace(b.Run(t, "cat", "/sys/class/net/b0/address"))
	a.Run(t, vmnet.IP, "neigh", "add", "10.9.0.250", "lladdr", mac, "dev", "a0", "nud", "permanent")
	b.Run(t, vmnet.IP, "route", "add", "198.18.0.0/15", "via", "10.9.0.1")

	const n = 500
	stop := make(chan struct{})
	type result struct {
		a   flood.Answered
		err error
	}
	res := map[vmnet.NS]chan result{a: make(chan result, 1), b: make(chan result, 1)}
	for ns, ifname := range map[vmnet.NS]string{a: "a0", b: "b0"} {
		go func() {
			var r result
			r.err = vmnet.InNetns(string(ns), func() (err error) {
				r.a, err = flood.Answer(ifname, stop)
				return err
			})
			res[ns] <- r
		}()
	}
	time.Sleep(300 * time.Millisecond) // both are reading
	err := vmnet.InNetns(string(a), func() error {
		_, err := flood.Run(flood.Config{Target: netip.MustParseAddrPort("10.9.0.250:80"), Flags: flood.SYN, Plain: true, Count: n})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	close(stop)
	ra, rb := <-res[a], <-res[b]
	if ra.err != nil || rb.err != nil {
		t.Fatalf("answer: %v, %v", ra.err, rb.err)
	}
	if rb.a.SYNs != n || ra.a.SYNACKs != n || rb.a.SYNACKs != 0 || ra.a.SYNs != 0 {
		t.Errorf("the server side answered %+v, the client side %+v; want %d SYNs and %d SYN-ACKs", rb.a, ra.a, n, n)
	}
}
