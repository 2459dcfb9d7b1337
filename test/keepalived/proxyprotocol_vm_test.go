// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package keepalived

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// TestProxyProtocol: with each build, `proxy_protocol v2` on a FNAT TCP virtual server gives the
// service IPVS_SVC_ATTR_PROXY_PROTOCOL 2, read back from the kernel's service dump and with
// `ipvsadm -Sn`; a reload (SIGHUP) to v1 makes it 1 and a reload without the keyword turns it off
// (the kernel reports no attribute), each time by editing the service, which keeps its connection
// counter; the same file's UDP virtual server with proxy_protocol is left out with a log line
// saying why.
func TestProxyProtocol(t *testing.T) {
	forEachBuild(t, testProxyProtocol)
}

func testProxyProtocol(t *testing.T, b build) {
	tp := director(t, 1)
	d := tp.Director
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	write := func(pp string) {
		t.Helper()
		if pp != "" {
			pp = "proxy_protocol " + pp
		}
		cfg := fmt.Sprintf(`global_defs {
    router_id proxyprotocol
}

local_address_group laddr_g1 {
    198.51.100.101-102
}

virtual_server %[1]s 80 {
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g1
    %[2]s
    real_server %[3]s 80 {
        weight 1
    }
}

virtual_server %[1]s 53 {
    lb_algo rr
    lb_kind FNAT
    protocol UDP
    laddr_group_name laddr_g1
    proxy_protocol v2
    real_server %[3]s 53 {
        weight 1
    }
}
`, tp.VIP, pp, tp.ServerAddrs[0])
		if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const tcp = "tcp:80"
	// want waits for the TCP service with PROXY protocol version pp (0: no attribute) and
	// returns its connection counter.
	want := func(what string, pp int) uint32 {
		t.Helper()
		var svcs map[string]ppService
		var err error
		waitFor(t, 20*time.Second, what, func() bool {
			svcs, err = dumpServices(string(d))
			return err == nil && svcs[tcp].present && svcs[tcp].pp == pp
		})
		// Our ipvsadm -S says the same.
		save, _ := d.Try(ipvsadm, "-Sn")
		line := ""
		for _, l := range strings.Split(save, "\n") {
			if strings.HasPrefix(l, fmt.Sprintf("-A -t %s:80 ", tp.VIP)) {
				line = l
			}
		}
		ok := line != "" && !strings.Contains(line, "--proxy-protocol")
		if pp != 0 {
			ok = strings.HasSuffix(line, fmt.Sprintf(" --proxy-protocol v%d", pp))
		}
		if !ok {
			t.Errorf("%s: ipvsadm -Sn says %q", what, line)
		}
		if s, ok := svcs["udp:53"]; ok {
			t.Errorf("%s: the UDP service with proxy_protocol is in the kernel: %+v", what, s)
		}
		return svcs[tcp].conns
	}

	write("v2")
	k := startKeepalived(t, d, b.bin, conf)
	want("the service with proxy_protocol v2", 2)
	refused := fmt.Sprintf("Virtual server [%s]:udp:53: proxy_protocol needs protocol TCP - removing virtual server", tp.VIP)
	waitFor(t, 5*time.Second, "the log line refusing the UDP service", func() bool {
		return strings.Contains(k.logs.String(), refused)
	})

	// One connection, so that the counter shows the service is edited, not made anew.
	vip := netip.AddrPortFrom(tp.VIP, 80).String()
	if err := vmnet.InNetns(string(tp.Client), func() error {
		c, err := net.DialTimeout("tcp", vip, 3*time.Second)
		if err == nil {
			_ = c.Close()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var conns uint32
	waitFor(t, 5*time.Second, "the connection counted", func() bool {
		svcs, err := dumpServices(string(d))
		conns = svcs[tcp].conns
		return err == nil && conns >= 1
	})

	for _, step := range []struct {
		pp   string
		want int
	}{{"v1", 1}, {"", 0}} {
		write(step.pp)
		if err := k.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		what := fmt.Sprintf("the reload to proxy_protocol %q", step.pp)
		if got := want(what, step.want); got < conns {
			t.Errorf("%s: the service's connection counter went from %d to %d: it was made anew, not edited", what, conns, got)
		}
	}
	if strings.Contains(k.logs.String(), fmt.Sprintf("Removing Virtual Server [%s]:tcp:80", tp.VIP)) {
		t.Errorf("a reload removed the TCP service")
	}
	if t.Failed() {
		t.Logf("tables:\n%s", table(d))
	}
}

// ppService is what the kernel's service dump says about one service.
type ppService struct {
	present bool
	pp      int // IPVS_SVC_ATTR_PROXY_PROTOCOL, 0 when absent
	conns   uint32
}

// Numbers of the IPVS generic netlink family and our extension.
const (
	ipvsCmdGetService        = 4
	ipvsCmdAttrService       = 1
	ipvsSvcAttrProtocol      = 2
	ipvsSvcAttrPort          = 4
	ipvsSvcAttrStats         = 10
	ipvsSvcAttrProxyProtocol = 14
	ipvsStatsAttrConns       = 1
)

// dumpServices reads every service of ns from the kernel (IPVS_CMD_GET_SERVICE), keyed by
// "tcp:PORT" or "udp:PORT": our ipvsadm may not show the PROXY protocol attribute.
func dumpServices(ns string) (map[string]ppService, error) {
	svcs := map[string]ppService{}
	err := vmnet.InNetns(ns, func() error {
		c, err := genetlink.Dial(nil)
		if err != nil {
			return fmt.Errorf("genetlink: %w", err)
		}
		defer c.Close()
		fam, err := c.GetFamily("IPVS")
		if err != nil {
			return fmt.Errorf("IPVS family: %w", err)
		}
		msgs, err := c.Execute(genetlink.Message{Header: genetlink.Header{Command: ipvsCmdGetService, Version: fam.Version}},
			fam.ID, netlink.Request|netlink.Dump)
		if err != nil {
			return fmt.Errorf("service dump: %w", err)
		}
		for _, m := range msgs {
			ad, err := netlink.NewAttributeDecoder(m.Data)
			if err != nil {
				return fmt.Errorf("service dump: %w", err)
			}
			for ad.Next() {
				if ad.Type() != ipvsCmdAttrService {
					continue
				}
				ad.Nested(func(nd *netlink.AttributeDecoder) error {
					s := ppService{present: true}
					var proto uint16
					var port uint16
					for nd.Next() {
						switch nd.Type() {
						case ipvsSvcAttrProtocol:
							proto = nd.Uint16()
						case ipvsSvcAttrPort:
							if b := nd.Bytes(); len(b) == 2 {
								port = binary.BigEndian.Uint16(b)
							}
						case ipvsSvcAttrProxyProtocol:
							s.pp = int(nd.Uint8())
						case ipvsSvcAttrStats:
							nd.Nested(func(sd *netlink.AttributeDecoder) error {
								for sd.Next() {
									if sd.Type() == ipvsStatsAttrConns {
										s.conns = sd.Uint32()
									}
								}
								return nil
							})
						}
					}
					name := map[uint16]string{syscall.IPPROTO_TCP: "tcp", syscall.IPPROTO_UDP: "udp"}[proto]
					svcs[fmt.Sprintf("%s:%d", name, port)] = s
					return nil
				})
			}
			if err := ad.Err(); err != nil {
				return fmt.Errorf("service dump: %w", err)
			}
		}
		return nil
	})
	return svcs, err
}
