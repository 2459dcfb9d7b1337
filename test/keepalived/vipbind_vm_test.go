//go:build vmtest

package keepalived

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

// TestVipBindDev: with vip_bind_dev, the VIP is an address of that interface exactly while the
// virtual server has quorum: keepalived adds it at start, removes it when the only real server
// stops answering (quorum lost), adds it again when it answers, and removes it when keepalived
// stops. Traffic to the VIP works while it is there. Debian's keepalived ignores the word: the
// VIP never appears.
func TestVipBindDev(t *testing.T) {
	tp := director(t, 1)
	d := tp.Director
	d.Run(t, vmnet.IP, "link", "add", "vipdev", "type", "dummy")
	d.Run(t, vmnet.IP, "link", "set", "vipdev", "up")
	const vip = "203.0.113.30"
	rs1 := newServer(t, tp.Servers[0], "rs1", netip.AddrPortFrom(tp.ServerAddrs[0], 80).String())

	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	cfg := fmt.Sprintf(`global_defs {
    router_id vipbind
}

local_address_group laddr_g1 {
    198.51.100.101
}

virtual_server %s 80 {
    delay_loop 1
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g1
    vip_bind_dev vipdev

    real_server %s 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
`, vip, tp.ServerAddrs[0])
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	bound := func() bool {
		out, _ := d.Try(vmnet.IP, "-o", "addr", "show", "dev", "vipdev")
		return strings.Contains(out, " "+vip+"/32 ")
	}

	stock := startKeepalived(t, d, stockKeepalived, conf)
	waitFor(t, 20*time.Second, "Debian's keepalived to set up the service", func() bool {
		_, ds := service(d)
		return len(ds) == 1
	})
	time.Sleep(time.Second)
	if bound() {
		t.Errorf("Debian's keepalived bound the VIP too: this test proves nothing")
	}
	stock.stop()
	d.Run(t, ipvsadm, "-C")

	k := startKeepalived(t, d, ourKeepalived, conf)
	waitFor(t, 20*time.Second, "the VIP on vipdev at start", bound)
	dial := func(what string) {
		t.Helper()
		s := vmnet.Dial(t, tp.Client, "--addr", vip+":80", "--count", "4", "--parallel", "2")
		if s.OK != 4 || s.Servers["rs1"] != 4 {
			t.Errorf("%s: want 4 connections to rs1, got %+v", what, s)
		}
	}
	dial("at start")

	rs1.stop()
	took := waitFor(t, 20*time.Second, "the VIP to leave vipdev when quorum is lost", func() bool { return !bound() })
	if took > 7*time.Second {
		t.Errorf("quorum loss took %v to unbind the VIP, want within the check interval (7 s)", took)
	}

	rs1.start()
	took = waitFor(t, 20*time.Second, "the VIP back on vipdev when quorum is regained", bound)
	if took > 7*time.Second {
		t.Errorf("quorum gain took %v to bind the VIP, want within the check interval (7 s)", took)
	}
	dial("after quorum came back")

	k.stop()
	if bound() {
		t.Errorf("the VIP stayed on vipdev after keepalived stopped")
	}
}
