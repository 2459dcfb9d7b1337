// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package keepalived

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEstTimeoutRemoved: with each build, a reload (SIGHUP) that removes est_timeout from a
// virtual server gives its service the global ESTABLISHED timeout again (`ipvsadm -Sn` shows no
// -V): the module keeps a service's timeout when an edit carries none, so the reload sends 0.
func TestEstTimeoutRemoved(t *testing.T) {
	forEachBuild(t, testEstTimeoutRemoved)
}

func testEstTimeoutRemoved(t *testing.T, b build) {
	tp := director(t, 1)
	d := tp.Director
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	write := func(est string) {
		t.Helper()
		cfg := fmt.Sprintf(`global_defs {
    router_id esttimeout
}

local_address_group laddr_g1 {
    198.51.100.101-102
}

virtual_server %s 80 {
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g1
    %s
    real_server %s 80 {
        weight 1
    }
}
`, tp.VIP, est, tp.ServerAddrs[0])
		if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// saveLine is the service's line of `ipvsadm -Sn`.
	saveLine := func() string {
		save, _ := d.Try(ipvsadm, "-Sn")
		for _, l := range strings.Split(save, "\n") {
			if strings.HasPrefix(l, fmt.Sprintf("-A -t %s:80 ", tp.VIP)) {
				return l
			}
		}
		return ""
	}

	write("est_timeout 100")
	k := startKeepalived(t, d, b.bin, conf)
	waitFor(t, 20*time.Second, "the service with est_timeout 100", func() bool {
		return strings.HasSuffix(saveLine(), " -V 100")
	})
	write("")
	if err := k.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var line string
	waitFor(t, 20*time.Second, "the reload that removes est_timeout", func() bool {
		line = saveLine()
		return line != "" && !strings.Contains(line, " -V ")
	})
	if strings.Contains(k.logs.String(), fmt.Sprintf("Removing Virtual Server [%s]:tcp:80", tp.VIP)) {
		t.Errorf("the reload removed the service instead of editing it")
	}
}
