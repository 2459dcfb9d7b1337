//go:build vmtest

package compat

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
)

// lanClient puts the client on the real servers' segment too, as DR and TUN need: the real servers
// answer from the VIP straight to the client, which a director owning the VIP would drop as a
// martian. The client reaches the VIP through the director and is 198.51.100.2 / 2001:db8:2::2.
func lanClient(t *testing.T, tp *vmnet.Topology) (v4, v6 netip.Addr) {
	c, d := tp.Client, tp.Director
	vmnet.Veth(t, c, "lan0", d, "cl0")
	d.Run(t, vmnet.IP, "link", "set", "cl0", "master", "br0")
	c.Addr(t, "lan0", "198.51.100.2/24")
	c.Addr(t, "lan0", "2001:db8:2::2/64")
	c.Run(t, vmnet.IP, "route", "add", tp.VIP.String()+"/32", "via", tp.DirectorRS.String(), "src", "198.51.100.2")
	c.Run(t, vmnet.IP, "-6", "route", "add", tp.VIP6.String()+"/128", "via", tp.DirectorRS6.String(), "src", "2001:db8:2::2")
	return netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("2001:db8:2::2")
}

// TestDirectRouting: the real servers own the VIP on lo (not answering ARP for it) and reply to
// the client directly.
func TestDirectRouting(t *testing.T) {
	tp := vmnet.New(t, vmnet.Options{Servers: 2})
	d := tp.Director
	lanClient(t, tp)
	for i, rs := range tp.Servers {
		rs.Sysctl(t, "net.ipv4.conf.all.arp_ignore", "1")
		rs.Sysctl(t, "net.ipv4.conf.all.arp_announce", "2")
		rs.Addr(t, "lo", tp.VIP.String()+"/32")
		rs.Addr(t, "lo", tp.VIP6.String()+"/128")
		rs.Sysctl(t, "net.ipv6.conf.all.accept_dad", "0")
		vmnet.Serve(t, rs, fmt.Sprintf("rs%d", i+1), 80, tp.VIP, tp.VIP6)
	}
	for _, fam := range []struct {
		name string
		vip  netip.Addr
		rss  []netip.Addr
	}{{"IPv4", tp.VIP, tp.ServerAddrs}, {"IPv6", tp.VIP6, tp.ServerAddrs6}} {
		t.Run(fam.name, func(t *testing.T) {
			vip := netip.AddrPortFrom(fam.vip, 80).String()
			d.Run(t, cipvsadm, "-A", "-t", vip, "-s", "wrr")
			for i, rs := range fam.rss {
				d.Run(t, cipvsadm, "-a", "-t", vip, "-r", rs.String(), "-g", "-w", fmt.Sprint(i+1))
			}
			t.Cleanup(func() { d.Run(t, cipvsadm, "-C") })
			s := vmnet.Dial(t, tp.Client, "--addr", vip, "--count", "90", "--parallel", "3", "--timeout", "5s")
			// wrr with weights 1 and 2 sends one connection in three to rs1. The director
			// sees only the client's half of a DR connection, so its entry may still be
			// ESTABLISHED when the client reuses that port for a new connection: IPVS then
			// sends the SYN down the old entry without scheduling (stock behaviour, and the likely
			// cause of a 31/59 split seen once in CI). One connection off 30/60 is allowed.
			if r1, r2 := s.Servers["rs1"], s.Servers["rs2"]; s.OK != 90 || r1+r2 != 90 || r1 < 29 || r1 > 31 {
				t.Errorf("want 90 connections split 30/60 by weight (one either way), got %d ok, %+v", s.OK, s.Servers)
			}
			g := vmnet.Dial(t, tp.Client, "--addr", vip, "--op", "get", "--size", "2097152", "--count", "2")
			if g.Bytes != 2*2097152 {
				t.Errorf("bulk download through DR: %d bytes", g.Bytes)
			}
			if out := d.Run(t, cipvsadm, "-Ln"); !strings.Contains(out, "Route") {
				t.Errorf("-Ln does not show Route forwarding:\n%s", out)
			}
		})
	}
}

// TestTunnel: IPIP to real servers that decapsulate on tunl0 and own the VIP there.
func TestTunnel(t *testing.T) {
	tp := vmnet.New(t, vmnet.Options{Servers: 2})
	d := tp.Director
	client, _ := lanClient(t, tp)
	for i, rs := range tp.Servers {
		rs.Run(t, "/sbin/modprobe", "ipip")
		rs.Run(t, vmnet.IP, "link", "set", "tunl0", "up")
		rs.Addr(t, "tunl0", tp.VIP.String()+"/32")
		rs.Sysctl(t, "net.ipv4.conf.all.rp_filter", "0")
		rs.Sysctl(t, "net.ipv4.conf.tunl0.rp_filter", "0")
		rs.Sysctl(t, "net.ipv4.conf.all.arp_ignore", "1")
		vmnet.Serve(t, rs, fmt.Sprintf("rs%d", i+1), 80, tp.VIP)
	}
	vip := netip.AddrPortFrom(tp.VIP, 80).String()
	d.Run(t, cipvsadm, "-A", "-t", vip, "-s", "rr")
	for _, rs := range tp.ServerAddrs {
		d.Run(t, cipvsadm, "-a", "-t", vip, "-r", rs.String(), "-i")
	}
	t.Cleanup(func() { d.Run(t, cipvsadm, "-C") })
	s := vmnet.Dial(t, tp.Client, "--addr", vip, "--count", "40", "--parallel", "4", "--timeout", "5s")
	if s.OK != 40 || s.Servers["rs1"] != 20 || s.Servers["rs2"] != 20 {
		t.Errorf("want 40 connections split 20/20, got %+v", s.Servers)
	}
	for peer := range s.Peers {
		if ap := netip.MustParseAddrPort(peer); ap.Addr() != client {
			t.Errorf("tunnelled real server saw %s, want the client %s", ap, client)
		}
	}
	if out := d.Run(t, cipvsadm, "-Ln"); !strings.Contains(out, "Tunnel") {
		t.Errorf("-Ln does not show Tunnel forwarding:\n%s", out)
	}
}

// TestKeepalived: stock keepalived builds a NAT service with TCP health checks, and takes a real
// server out when it stops answering.
func TestKeepalived(t *testing.T) {
	tp := vmnet.New(t, vmnet.Options{Servers: 2, RouteBack: true})
	d := tp.Director
	vmnet.Serve(t, tp.Servers[0], "rs1", 80, tp.ServerAddrs[0])
	// rs2 answers on 80 until it is stopped below: run it in its own process we can kill.
	rs2 := tp.Servers[1].Command(vmnet.Bin+"/lvs-peer", "serve", "--name", "rs2", "--listen", netip.AddrPortFrom(tp.ServerAddrs[1], 80).String())
	if err := rs2.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs2.Process.Kill(); _ = rs2.Wait() })

	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	cfg := fmt.Sprintf(`global_defs {
    router_id rig
}
virtual_server %s 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server %s 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server %s 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
`, tp.VIP, tp.ServerAddrs[0], tp.ServerAddrs[1])
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ka := d.Command("/usr/sbin/keepalived", "-n", "-C", "-f", conf,
		"-p", filepath.Join(dir, "ka.pid"), "-c", filepath.Join(dir, "ka-check.pid"))
	var logs strings.Builder
	ka.Stdout, ka.Stderr = &logs, &logs
	if err := ka.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ka.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = ka.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = ka.Process.Kill()
		}
		if t.Failed() {
			t.Logf("keepalived log:\n%s", logs.String())
		}
	})
	vip := netip.AddrPortFrom(tp.VIP, 80).String()
	rs2addr := netip.AddrPortFrom(tp.ServerAddrs[1], 80).String()
	waitFor(t, 20*time.Second, "keepalived to install both real servers", func() bool {
		out, _ := d.Try(cipvsadm, "-Ln")
		return strings.Contains(out, rs2addr) && strings.Contains(out, netip.AddrPortFrom(tp.ServerAddrs[0], 80).String())
	})
	s := vmnet.Dial(t, tp.Client, "--addr", vip, "--count", "20", "--parallel", "2")
	if s.Servers["rs1"] != 10 || s.Servers["rs2"] != 10 {
		t.Errorf("want 20 connections split 10/10, got %+v", s.Servers)
	}
	_ = rs2.Process.Kill()
	waitFor(t, 20*time.Second, "keepalived to remove the dead real server", func() bool {
		out, _ := d.Try(cipvsadm, "-Ln")
		return !strings.Contains(out, rs2addr)
	})
	s = vmnet.Dial(t, tp.Client, "--addr", vip, "--count", "10", "--parallel", "2")
	if s.Servers["rs1"] != 10 {
		t.Errorf("after rs2 died, want all 10 connections on rs1, got %+v", s.Servers)
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
