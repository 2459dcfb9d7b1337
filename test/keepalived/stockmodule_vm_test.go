//go:build vmtest

package keepalived

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
)

// TestStockModule: on Debian's own ip_vs (no IPVS_INFO_ATTR_FEATURES), our keepalived leaves out
// the FULLNAT and the SYNPROXY service with a log line naming what is missing and the module to
// load, and still sets up the NAT service of the same file.
func TestStockModule(t *testing.T) {
	tp := director(t, 1)
	d := tp.Director
	stockIPVS(t, d, "rr")

	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	cfg := `global_defs {
    router_id stockmodule
}

local_address_group laddr_g1 {
    198.51.100.101
}

virtual_server 203.0.113.10 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 198.51.100.11 80 {
        weight 1
    }
}

virtual_server 203.0.113.10 81 {
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g1
    real_server 198.51.100.11 80 {
        weight 1
    }
}

virtual_server 203.0.113.10 82 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    syn_proxy
    real_server 198.51.100.11 80 {
        weight 1
    }
}
`
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	k := startKeepalived(t, d, ourKeepalived, conf)
	wantLog := []string{
		"IPVS: virtual server [203.0.113.10]:tcp:81 needs FULLNAT (lb_kind FNAT), which the loaded ip_vs module does not have: load the fullnat ip_vs module - not adding the service",
		"IPVS: virtual server [203.0.113.10]:tcp:82 needs SYNPROXY (syn_proxy), which the loaded ip_vs module does not have: load the fullnat ip_vs module - not adding the service",
	}
	waitFor(t, 20*time.Second, "keepalived to set up the NAT service and log the other two", func() bool {
		ln, _ := d.Try(ipvsadm, "-Ln")
		logs := k.logs.String()
		return strings.Contains(ln, "203.0.113.10:80 rr") && strings.Contains(ln, "198.51.100.11:80             Masq") &&
			strings.Contains(logs, wantLog[0]) && strings.Contains(logs, wantLog[1])
	})
	time.Sleep(time.Second)
	if ln, _ := d.Try(ipvsadm, "-Ln"); strings.Contains(ln, ":81") || strings.Contains(ln, ":82") {
		t.Errorf("the FULLNAT or SYNPROXY service is on the stock module:\n%s", ln)
	}
}

// stockIPVS swaps our modules for Debian's own ip_vs and the schedulers named (rig/vm.sh keeps
// them at /opt/fullnat/stock) until the test ends, when ours are back. The table is empty.
func stockIPVS(t *testing.T, d vmnet.NS, scheds ...string) {
	t.Helper()
	// Every ip_vs module loaded, the core last: ip_vs_* use it.
	unload := func() {
		mods, _ := os.ReadFile("/proc/modules")
		for _, l := range strings.Split(string(mods), "\n") {
			if m, _, _ := strings.Cut(l, " "); strings.HasPrefix(m, "ip_vs_") {
				_, _ = d.Try("/sbin/rmmod", m)
			}
		}
		_, _ = d.Try("/sbin/rmmod", "ip_vs")
	}
	d.Run(t, ipvsadm, "-C")
	unload()
	t.Cleanup(func() {
		_, _ = d.Try(ipvsadm, "-C")
		unload()
		_, _ = d.Try("/sbin/modprobe", "ip_vs")
	})
	for _, m := range append([]string{"ip_vs"}, scheds...) {
		if !strings.HasPrefix(m, "ip_vs") {
			m = "ip_vs_" + m
		}
		d.Run(t, "/sbin/insmod", "/opt/fullnat/stock/"+m+".ko")
	}
}
