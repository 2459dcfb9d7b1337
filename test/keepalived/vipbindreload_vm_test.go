//go:build vmtest

package keepalived

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
)

// TestVipBindDevReload: with each build, a reload (SIGHUP) that changes a virtual_server_group
// and what vip_bind_dev binds. The group's .30 and .31 bound to vipdev are reloaded as .30 and
// .32: .31 leaves vipdev and its service goes, .32 comes with its FULLNAT service, local
// address and real server on the real server's own port (8080, the VIPs use 80), and takes
// traffic; .30, in both configurations, stays on vipdev throughout (polled across the reload).
// A second reload without vip_bind_dev takes every VIP off vipdev and leaves the services.
// Before keepalived patch 0008 a reload only ever added VIPs (.31 stayed on vipdev); before
// 0009, 2.2.7 kept .31's service (upstream's bug, fixed after 2.2.7) and 2.3.3's checker died
// of a segmentation fault at the reload (no sorry server), which keepalived hides by starting
// it again.
func TestVipBindDevReload(t *testing.T) { forEachBuild(t, testVipBindDevReload) }

func testVipBindDevReload(t *testing.T, b build) {
	tp := director(t, 1)
	d := tp.Director
	d.Run(t, vmnet.IP, "link", "add", "vipdev", "type", "dummy")
	d.Run(t, vmnet.IP, "link", "set", "vipdev", "up")
	// The real server's port is not the VIPs': a FULLNAT real server keeps its own port, also
	// in the services a reload adds for new group entries.
	newServer(t, tp.Servers[0], "rs1", tp.ServerAddrs[0].String()+":8080")

	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	write := func(vips []string, bind string) {
		t.Helper()
		var entries strings.Builder
		for _, v := range vips {
			fmt.Fprintf(&entries, "    %s 80\n", v)
		}
		cfg := fmt.Sprintf(`global_defs {
    router_id vipbindreload
}

local_address_group laddr_g1 {
    198.51.100.101
}

virtual_server_group vsg1 {
%s}

virtual_server group vsg1 {
    delay_loop 1
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g1
%s
    real_server %s 8080 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`, entries.String(), bind, tp.ServerAddrs[0])
		if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bound := func() map[string]bool {
		out, _ := d.Try(vmnet.IP, "-o", "-4", "addr", "show", "dev", "vipdev")
		m := map[string]bool{}
		for _, f := range strings.Fields(out) {
			if a, ok := strings.CutSuffix(f, "/32"); ok {
				m[a] = true
			}
		}
		return m
	}
	// services: the VIPs with a FULLNAT service that has local address .101
	services := func() map[string]bool {
		g, _ := d.Try(ipvsadm, "-G")
		m := map[string]bool{}
		vip := ""
		for _, line := range strings.Split(g, "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && strings.HasSuffix(f[0], ":80"):
				vip = strings.TrimSuffix(f[0], ":80")
			case len(f) >= 1 && f[0] == "198.51.100.101" && vip != "":
				m[vip] = true
			}
		}
		return m
	}
	is := func(m map[string]bool, want ...string) bool {
		if len(m) != len(want) {
			return false
		}
		for _, w := range want {
			if !m[w] {
				return false
			}
		}
		return true
	}

	// wait is waitFor that shows the state it waited for when it times out.
	wait := func(what string, ok func() bool) {
		t.Helper()
		for start := time.Now(); !ok(); time.Sleep(100 * time.Millisecond) {
			if time.Since(start) > 20*time.Second {
				t.Fatalf("timed out after 20 s waiting for %s: vipdev has %v, services with the local address %v\n%s",
					what, bound(), services(), table(d))
			}
		}
	}

	write([]string{"203.0.113.30", "203.0.113.31"}, "    vip_bind_dev vipdev\n")
	k := startKeepalived(t, d, b.bin, conf)
	wait("VIPs .30 and .31 on vipdev, FULLNAT services with their local address", func() bool {
		return is(bound(), "203.0.113.30", "203.0.113.31") && is(services(), "203.0.113.30", "203.0.113.31")
	})

	// .30 must stay on vipdev across the reload: watch it.
	var gaps atomic.Int32
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if !bound()["203.0.113.30"] {
				gaps.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	write([]string{"203.0.113.30", "203.0.113.32"}, "    vip_bind_dev vipdev\n")
	if err := k.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wait("the reload: .31 off vipdev and its service gone, .32 on it with its service", func() bool {
		return is(bound(), "203.0.113.30", "203.0.113.32") && is(services(), "203.0.113.30", "203.0.113.32")
	})
	time.Sleep(2 * time.Second)
	close(stop)
	<-watched
	if n := gaps.Load(); n > 0 {
		t.Errorf("VIP .30, in both configurations, was missing from vipdev %d times across the reload", n)
	}
	if got := bound(); !is(got, "203.0.113.30", "203.0.113.32") {
		t.Errorf("2 s after the reload, vipdev has %v, want .30 and .32", got)
	}
	ln, _ := d.Try(ipvsadm, "-Ln")
	if n, all := strings.Count(ln, "-> "+tp.ServerAddrs[0].String()+":8080 "), strings.Count(ln, "  -> "+tp.ServerAddrs[0].String()); n != 2 || all != 2 {
		t.Errorf("after the reload, want the real server at port 8080 in both services and no other, got %d of %d:\n%s", n, all, ln)
	}
	for _, vip := range []string{"203.0.113.30", "203.0.113.32"} {
		s := vmnet.Dial(t, tp.Client, "--addr", vip+":80", "--count", "4", "--parallel", "2")
		if s.OK != 4 || s.Servers["rs1"] != 4 {
			t.Errorf("after the reload, %s: want 4 connections to rs1, got %+v", vip, s)
		}
	}

	write([]string{"203.0.113.30", "203.0.113.32"}, "")
	if err := k.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wait("the reload without vip_bind_dev: no VIP on vipdev", func() bool { return len(bound()) == 0 })
	time.Sleep(2 * time.Second)
	if got := services(); !is(got, "203.0.113.30", "203.0.113.32") {
		t.Errorf("after the reload without vip_bind_dev, FULLNAT services with local addresses %v, want .30 and .32", got)
	}
	if got := bound(); len(got) != 0 {
		t.Errorf("a VIP came back on vipdev: %v", got)
	}
	if t.Failed() {
		t.Logf("%s", table(d))
	}
}
