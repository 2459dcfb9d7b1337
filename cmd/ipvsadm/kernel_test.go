// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fullnat/fullnat/ipvs/ipvstest"
)

// TestKernelBackendProxyProtocol runs ipvsadm's PROXY protocol commands through the library
// backend (kernel.go) on ipvstest, which answers as our module does: the version goes to the
// kernel and comes back in -S and -L, -E keeps it alone and batched in -R, and the kernel's
// refusals (EOPNOTSUPP) and a module without the feature read as ipvsadm's messages.
func TestKernelBackendProxyProtocol(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts ipvstest.Options
		cmds []struct{ args, stdin, stdout, stderr string }
	}{
		{"ours", ipvstest.Options{}, []struct{ args, stdin, stdout, stderr string }{
			{"-A -t 192.0.2.1:80 -s rr --proxy-protocol v2", "", "", ""},
			{"-a -t 192.0.2.1:80 -r 198.51.100.1:8080 -b", "", "", ""},
			{"-E -t 192.0.2.1:80 -s wlc", "", "", ""},
			{"-S -n", "", "-A -t 192.0.2.1:80 -s wlc --proxy-protocol v2\n-a -t 192.0.2.1:80 -r 198.51.100.1:8080 -b -w 1\n", ""},
			{"-a -t 192.0.2.1:80 -r 198.51.100.2:8080 -m", "", "", proxyDestText + "\n"},
			{"-A -u 192.0.2.1:53 --proxy-protocol v1", "", "", proxyServiceText + "\n"},
			{"-R", "-E -t 192.0.2.1:80 -s rr\n-A -f 7 --proxy-protocol v1\n-A -t 192.0.2.2:80\n-a -t 192.0.2.2:80 -r 198.51.100.3 -g\n" +
				"-E -t 192.0.2.2:80 --proxy-protocol v1\n", "", proxyServiceText + "\n"},
			{"-Ln", "", "IP Virtual Server version 1.2.1 (size=4096)\n" +
				"Prot LocalAddress:Port Scheduler Flags\n" +
				"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
				"TCP  192.0.2.1:80 rr proxy-protocol v2\n" +
				"  -> 198.51.100.1:8080            FullNat 1      0          0         \n" +
				"TCP  192.0.2.2:80 wlc\n" +
				"  -> 198.51.100.3:80              Route   1      0          0         \n" +
				"FWM  7 wlc proxy-protocol v1\n", ""},
			{"-E -t 192.0.2.1:80 -s rr --proxy-protocol disable", "", "", ""},
			{"-S -n", "", "-A -t 192.0.2.1:80 -s rr\n-a -t 192.0.2.1:80 -r 198.51.100.1:8080 -b -w 1\n" +
				"-A -t 192.0.2.2:80 -s wlc\n-a -t 192.0.2.2:80 -r 198.51.100.3:80 -g -w 1\n-A -f 7 -s wlc --proxy-protocol v1\n", ""},
		}},
		{"stock", ipvstest.Options{Stock: true}, []struct{ args, stdin, stdout, stderr string }{
			{"-A -t 192.0.2.1:80 --proxy-protocol v1", "", "",
				"the PROXY protocol (--proxy-protocol) needs the fullnat ip_vs module (kmod/): the running ip_vs module does not provide it\n"},
			{"-A -t 192.0.2.1:80 --proxy-protocol disable", "", "", ""},
			{"-E -t 192.0.2.1:80 -s rr", "", "", ""},
			{"-S -n", "", "-A -t 192.0.2.1:80 -s rr\n", ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := ipvstest.New(tc.opts)
			e := env{
				open: func() (backend, error) {
					c, err := k.Client()
					return &kernel{c: c}, err
				},
				res: &resolver{hostsPath: filepath.Join(testdataDir, "hosts"),
					servicesPath: filepath.Join(testdataDir, "services")},
				connPath: filepath.Join(t.TempDir(), "ip_vs_conn"),
			}
			for _, cmd := range tc.cmds {
				var o, eb bytes.Buffer
				run(append([]string{"ipvsadm"}, strings.Fields(cmd.args)...), strings.NewReader(cmd.stdin), &o, &eb, e)
				if o.String() != cmd.stdout || eb.String() != cmd.stderr {
					t.Errorf("ipvsadm %s\n--- stdout\n%s--- want\n%s--- stderr\n%s--- want\n%s", cmd.args, o.String(), cmd.stdout, eb.String(), cmd.stderr)
				}
			}
		})
	}
}
