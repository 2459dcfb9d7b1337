//go:build vmtest

package compat

import (
	"bufio"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
)

// syncMessages are sync messages of our module's master, recorded by test/synproxy's
// TestSyncRecord: one connection each to NAT 203.0.113.10:81, FULLNAT 203.0.113.10:80 and
// [2001:db8:10::10]:80 (local address 198.51.100.101, 2001:db8:2::101) and FULLNAT with
// SYNPROXY 203.0.113.10:82.
const syncMessages = "../../testdata/sync/messages.hex"

// TestSyncFromOurModule: a mixed cluster. A backup of the stock module gets our master's
// messages: it creates the NAT connection and drops the FULLNAT and SYNPROXY ones, whose
// options are mandatory and unknown to it, rather than create connections that would send
// with the wrong addresses. A backup of ours creates them all, the FULLNAT ones with the
// sender's local addresses.
func TestSyncFromOurModule(t *testing.T) {
	ours := os.Getenv("RIG_MODULES") == "ours"
	f, err := os.Open(syncMessages)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var msgs [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		b, err := hex.DecodeString(strings.TrimSpace(sc.Text()))
		if err != nil {
			t.Fatalf("%s: %v", syncMessages, err)
		}
		msgs = append(msgs, b)
	}
	if len(msgs) == 0 {
		t.Fatalf("%s has no message", syncMessages)
	}

	bk, snd := vmnet.Add(t, "bk"), vmnet.Add(t, "snd")
	vmnet.Veth(t, bk, "sync0", snd, "sync0")
	bk.Addr(t, "sync0", "10.254.0.2/24")
	snd.Addr(t, "sync0", "10.254.0.1/24")
	snd.Run(t, vmnet.IP, "route", "add", "224.0.0.0/4", "dev", "sync0")
	bk.Run(t, "/sbin/modprobe", "ip_vs")
	bk.Run(t, cipvsadm, "--start-daemon", "backup", "--mcast-interface", "sync0")
	t.Cleanup(func() { _, _ = bk.Try(cipvsadm, "--stop-daemon", "backup") })
	time.Sleep(500 * time.Millisecond) // the backup thread joins the group

	err = vmnet.InNetns(string(snd), func() error {
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 81), Port: 8848})
		if err != nil {
			return err
		}
		defer c.Close()
		for _, m := range msgs {
			if _, err := c.Write(m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("sending the messages: %v", err)
	}

	// by virtual port: 81 NAT, 80 FULLNAT (IPv4 and IPv6), 82 FULLNAT with SYNPROXY
	want := map[string]int{"0051": 1}
	if ours {
		want = map[string]int{"0051": 1, "0050": 2, "0052": 1}
	}
	var got map[string]int
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		got = map[string]int{}
		for _, line := range strings.Split(bk.Run(t, "/bin/cat", "/proc/net/ip_vs_conn"), "\n")[1:] {
			if fs := strings.Fields(line); len(fs) > 7 {
				got[fs[4]]++
			}
		}
		if len(got) == len(want) && got["0051"] == want["0051"] && got["0050"] == want["0050"] && got["0052"] == want["0052"] {
			break
		}
	}
	if len(got) != len(want) || got["0051"] != want["0051"] || got["0050"] != want["0050"] || got["0052"] != want["0052"] {
		t.Fatalf("the backup's connections by virtual port: %v, want %v (ours: %v)\n%s", got, want, ours,
			bk.Run(t, "/bin/cat", "/proc/net/ip_vs_conn"))
	}
	if !ours {
		return
	}
	fnat := bk.Run(t, "/bin/cat", "/proc/net/ip_vs_conn_fnat")
	for _, la := range []string{"C6336465", "2001:0db8:0002:0000:0000:0000:0000:0101"} {
		if !strings.Contains(fnat, la) {
			t.Errorf("no synced FULLNAT connection has the sender's local address %s:\n%s", la, fnat)
		}
	}
}
