// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/fullnat/fullnat/ipvs"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Bad input exits 2 with a message naming what is wrong, before IPVS is
// opened.
func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"service", "add", "tcp:192.0.2.300:80"}, `address "192.0.2.300" is not an IPv4 or IPv6 address`},
		{[]string{"service", "add", "tcp:192.0.2.1"}, `"192.0.2.1" has no port`},
		{[]string{"service", "add", "tcp:192.0.2.1:http"}, `port "http" is not a number`},
		{[]string{"service", "add", "tcp:192.0.2.1:65536"}, `port "65536" is not a number from 0 to 65535`},
		{[]string{"service", "add", "icmp:192.0.2.1:80"}, `unknown protocol "icmp"`},
		{[]string{"service", "add", "192.0.2.1:80"}, `unknown protocol "192.0.2.1"`},
		{[]string{"service", "add", "fwm:0"}, `firewall mark "0" is not a number from 1`},
		{[]string{"service", "add", "tcp:192.0.2.1:80", "--scheduler", "wrrr"}, `unknown scheduler "wrrr"`},
		{[]string{"service", "add", "tcp:192.0.2.1:80", "--flag", "synproxy,fast"}, `unknown service flag "fast"`},
		{[]string{"service", "add", "tcp:192.0.2.1:80", "--netmask", "33"}, `--netmask 33 is out of range 1..32`},
		{[]string{"service", "add", "tcp:192.0.2.1:80", "--persistent", "-1"}, `--persistent -1 is out of range`},
		{[]string{"service", "add", "tcp:192.0.2.1:80", "--pe", "http"}, `unknown persistence engine "http"`},
		{[]string{"service", "add", "tcp:192.0.2.1:80", "--proxy-protocol", "v3"}, `unknown PROXY protocol version "v3" (want off, v1 or v2)`},
		{[]string{"service", "add", "tcp:192.0.2.1:80", "extra"}, `unexpected argument "extra"`},
		{[]string{"service", "add"}, `service add: missing SERVICE`},
		{[]string{"service", "edit", "tcp:192.0.2.1:80"}, `nothing to change`},
		{[]string{"service", "list", "--bogus"}, `flag provided but not defined: -bogus`},
		{[]string{"service", "frobnicate"}, `service: unknown command "frobnicate"`},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"server", "add", "tcp:192.0.2.1:80", "198.51.100.11:99999"}, `real server: port "99999" is not a number from 0 to 65535`},
		{[]string{"server", "add", "tcp:192.0.2.1:80", "198.51.100.11"}, `real server: "198.51.100.11" has no port`},
		{[]string{"server", "add", "tcp:192.0.2.1:80", "198.51.100.11:80", "--method", "snat"}, `unknown forwarding method "snat"`},
		{[]string{"server", "add", "tcp:192.0.2.1:80", "198.51.100.11:80", "--weight", "-1"}, `--weight -1 is out of range 0..2147483647`},
		{[]string{"server", "add", "tcp:192.0.2.1:80", "198.51.100.11:80", "--weight", "x"}, `invalid value "x" for flag -weight`},
		{[]string{"server", "add", "tcp:192.0.2.1:80", "198.51.100.11:80", "-m", "tunnel", "--tunnel-type", "gue"}, `--tunnel-type gue needs --tunnel-port`},
		{[]string{"server", "add", "tcp:192.0.2.1:80"}, `server add: missing ADDR:PORT`},
		{[]string{"laddr", "add", "tcp:192.0.2.1:80"}, `laddr add: missing ADDR`},
		{[]string{"laddr", "add", "tcp:192.0.2.1:80", "198.51.100.101", "198.51.100.1o2"}, `local address: address "198.51.100.1o2"`},
		{[]string{"conn", "--service", "tcp:x:80"}, `address "x" is not an IPv4 or IPv6 address`},
		{[]string{"stats", "--watch", "--interval", "0s"}, `--interval 0s must be positive`},
		{[]string{"stats", "--interval", "soon"}, `invalid value "soon" for flag -interval`},
		{[]string{"sysctl", "set", "am_droprate", "5"}, `"am_droprate" is not an extension sysctl`},
		{[]string{"sysctl", "set", "fullnat_../../x", "5"}, `is not an extension sysctl`},
		{[]string{"sysctl", "set", "fullnat_lport_min", "lots"}, `value "lots" is not an integer`},
		{[]string{"sysctl", "get"}, `sysctl get: missing NAME`},
		{[]string{"metrics", "--listen", "9577"}, `--listen "9577" is not HOST:PORT`},
		{[]string{"completion", "zsh"}, `want the shell name, bash`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, code := runCmd(t, nil, fakeProc(t), tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stdout %q, stderr %q)", code, out, errOut)
			}
			if !strings.HasPrefix(errOut, "lvsctl: ") || !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q, want it to contain %q", errOut, tc.want)
			}
		})
	}
}

// A failure of the operation itself exits 1 with the library's error.
func TestOperationError(t *testing.T) {
	f := newFake()
	_, errOut, code := runCmd(t, f, procFS{}, "server", "list", "tcp:192.0.2.99:80")
	if code != 1 || !strings.Contains(errOut, "get service TCP 192.0.2.99:80") {
		t.Errorf("missing service: exit %d, stderr %q", code, errOut)
	}
	f.err = &ipvs.Error{Op: "create service", Object: "TCP 192.0.2.1:80", Err: os.ErrExist}
	_, errOut, code = runCmd(t, f, procFS{}, "service", "add", "tcp:192.0.2.1:80")
	if code != 1 || !strings.Contains(errOut, "create service TCP 192.0.2.1:80: file already exists") {
		t.Errorf("existing service: exit %d, stderr %q", code, errOut)
	}
	f.err = &ipvs.Error{Op: "create destination", Object: "198.51.100.13:80 of TCP 192.0.2.1:80", Err: syscall.EPROTONOSUPPORT}
	_, errOut, code = runCmd(t, f, procFS{}, "server", "add", "tcp:192.0.2.1:80", "198.51.100.13:80", "-m", "dr")
	if code != 1 || !strings.HasSuffix(errOut, "protocol not supported (SYNPROXY needs a TCP service with NAT or FULLNAT real servers)\n") {
		t.Errorf("SYNPROXY refusal: exit %d, stderr %q", code, errOut)
	}
	f.err = &ipvs.Error{Op: "create destination", Object: "198.51.100.13:80 of TCP 192.0.2.1:80", Err: syscall.EOPNOTSUPP}
	_, errOut, code = runCmd(t, f, procFS{}, "server", "add", "tcp:192.0.2.1:80", "198.51.100.13:80", "-m", "nat")
	if code != 1 || !strings.HasSuffix(errOut, "(the PROXY protocol needs a TCP service whose real servers are all FULLNAT)\n") {
		t.Errorf("PROXY protocol refusal: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = runCmd(t, f, fakeProc(t), "sysctl", "get", "fullnat_nonesuch")
	if code != 1 || !strings.Contains(errOut, "sysctl fullnat_nonesuch") || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing sysctl: exit %d, stderr %q", code, errOut)
	}
}

func TestServiceAddEdit(t *testing.T) {
	f := newFake()
	// Flags may follow the arguments.
	_, errOut, code := runCmd(t, f, procFS{}, "service", "add", "tcp:[2001:db8::1]:443", "-s", "rr", "--flag", "synproxy",
		"--flag=sched1", "--persistent", "60", "--netmask", "64", "--est-timeout", "300", "--proxy-protocol", "v1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := ipvs.Service{Family: ipvs.INET6, Protocol: ipvs.TCP, Address: netip.MustParseAddr("2001:db8::1"), Port: 443,
		Scheduler: "rr", Flags: ipvs.FlagSynProxy | ipvs.FlagSched1 | ipvs.FlagPersistent, Timeout: 60, Netmask: 64,
		EstablishedTimeout: 300, ProxyProtocol: ipvs.ProxyProtocolV1}
	if f.last != want {
		t.Errorf("CreateService(%+v), want %+v", f.last, want)
	}
	// An IPv4 netmask is a prefix length on the command line, the mask as a number in the kernel.
	runCmd(t, f, procFS{}, "service", "add", "udp:192.0.2.1:53", "--netmask", "24")
	if s := f.last.(ipvs.Service); s.Netmask != 0xffffff00 || s.Scheduler != "wlc" {
		t.Errorf("CreateService(%+v), want netmask 0xffffff00 and scheduler wlc", s)
	}
	// edit changes what it is given and keeps the rest (est-timeout, SYNPROXY, PROXY protocol).
	_, errOut, code = runCmd(t, f, procFS{}, "service", "edit", "tcp:203.0.113.10:80", "--scheduler", "wrr")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want = fnatSvc
	want.Stats64 = ipvs.Stats{}
	want.Flags &^= ipvs.FlagHashed
	want.Scheduler = "wrr"
	if f.last != want {
		t.Errorf("UpdateService(%+v), want %+v", f.last, want)
	}
	runCmd(t, f, procFS{}, "service", "edit", "tcp:203.0.113.10:80", "--flag", "")
	if s := f.last.(ipvs.Service); s.Flags != 0 || s.EstablishedTimeout != 300 || s.ProxyProtocol != ipvs.ProxyProtocolV2 {
		t.Errorf("edit --flag '': %+v, want no flags, est-timeout and PROXY protocol kept", s)
	}
	runCmd(t, f, procFS{}, "service", "edit", "tcp:203.0.113.10:80", "--proxy-protocol", "off")
	if s := f.last.(ipvs.Service); s.ProxyProtocol != ipvs.ProxyProtocolOff || s.Scheduler != "rr" {
		t.Errorf("edit --proxy-protocol off: %+v, want it off and the rest kept", s)
	}
}

func TestServerAndLaddrChanges(t *testing.T) {
	f := newFake()
	if _, e, code := runCmd(t, f, procFS{}, "server", "add", "tcp:203.0.113.10:80", "198.51.100.13:8080", "-m", "fullnat", "-w", "0"); code != 0 {
		t.Fatal(e)
	}
	want := ipvs.Destination{Address: netip.MustParseAddr("198.51.100.13"), Port: 8080, ForwardMethod: ipvs.FullNAT}
	if f.last != want {
		t.Errorf("CreateDestination(%+v), want %+v", f.last, want)
	}
	if _, e, code := runCmd(t, f, procFS{}, "rs", "edit", "tcp:203.0.113.10:80", "198.51.100.12:8080", "--weight", "7"); code != 0 {
		t.Fatal(e)
	}
	d := f.last.(ipvs.Destination)
	if d.Weight != 7 || d.ForwardMethod != ipvs.FullNAT || d.UpperThreshold != 100 || d.LowerThreshold != 50 {
		t.Errorf("UpdateDestination(%+v): want weight 7 and the rest kept", d)
	}
	if _, e, code := runCmd(t, f, procFS{}, "rs", "edit", "tcp:203.0.113.10:80", "198.51.100.99:8080", "--weight", "7"); code != 1 ||
		!strings.Contains(e, "real server 198.51.100.99:8080 of tcp:203.0.113.10:80: file does not exist") {
		t.Errorf("edit of a missing server: exit %d, %q", code, e)
	}
	f.calls = nil
	if _, e, code := runCmd(t, f, procFS{}, "laddr", "add", "tcp:203.0.113.10:80", "198.51.100.103", "2001:db8:2::103"); code != 0 {
		t.Fatal(e)
	}
	if !slices.Equal(f.calls, []string{"CreateLocalAddress", "CreateLocalAddress"}) ||
		f.last != (ipvs.LocalAddress{Address: netip.MustParseAddr("2001:db8:2::103")}) {
		t.Errorf("calls %v, last %+v", f.calls, f.last)
	}
	if _, e, code := runCmd(t, f, procFS{}, "server", "delete", "fwm:7", "198.51.100.11"); code != 0 ||
		f.last != (ipvs.Destination{Address: netip.MustParseAddr("198.51.100.11")}) {
		t.Errorf("delete of a fwmark service's server without port: exit %d %s, %+v", code, e, f.last)
	}
}

// jsonPath walks a decoded document: keys and indices.
func jsonPath(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not an object at %q", path, k)
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("%v: no index %d", path, k)
			}
			v = a[k]
		}
	}
	if n, ok := v.(json.Number); ok {
		return n.String()
	}
	return v
}

func TestJSONServices(t *testing.T) {
	out, e, code := runCmd(t, newFake(), procFS{}, "service", "list", "--json")
	if code != 0 {
		t.Fatal(e)
	}
	doc := validate(t, out)[0]
	for _, c := range []struct {
		path []any
		want any
	}{
		{[]any{"version"}, "1"},
		{[]any{"kind"}, "services"},
		{[]any{"services", 0, "id"}, "tcp:203.0.113.10:80"},
		{[]any{"services", 0, "flags"}, []any{"hashed", "synproxy"}},
		{[]any{"services", 0, "established_timeout"}, "300"},
		{[]any{"services", 0, "proxy_protocol"}, "v2"},
		{[]any{"services", 1, "proxy_protocol"}, "off"},
		{[]any{"services", 0, "stats", "bytes_in"}, "1099511627776"},
		{[]any{"services", 0, "destinations", 0, "forward_method"}, "fullnat"},
		{[]any{"services", 0, "destinations", 0, "active_connections"}, "5"},
		{[]any{"services", 0, "destinations", 1, "upper_threshold"}, "100"},
		{[]any{"services", 0, "local_addresses", 0, "address"}, "198.51.100.101"},
		{[]any{"services", 0, "local_addresses", 0, "port_conflicts"}, "2"},
		{[]any{"services", 1, "id"}, "udp:[2001:db8:10::10]:53"},
		{[]any{"services", 1, "persistence_timeout"}, "360"},
		{[]any{"services", 1, "stats", "connections"}, "2"},
		{[]any{"services", 1, "destinations", 0, "tunnel", "type"}, "gue"},
		{[]any{"services", 1, "destinations", 0, "tunnel", "flags"}, []any{"checksum"}},
		{[]any{"services", 2, "id"}, "fwm:7"},
		{[]any{"services", 2, "fwmark"}, "7"},
		{[]any{"services", 2, "port"}, nil},
	} {
		if got := jsonPath(t, doc, c.path...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v = %#v, want %#v", c.path, got, c.want)
		}
	}
	// The ids are what the commands take.
	for _, s := range doc["services"].([]any) {
		id := s.(map[string]any)["id"].(string)
		if _, err := parseService(id); err != nil {
			t.Errorf("id %q does not parse: %v", id, err)
		}
	}
}

func TestJSONListings(t *testing.T) {
	f, proc := newFake(), fakeProc(t)
	for _, tc := range []struct {
		args []string
		path []any
		want any
	}{
		{[]string{"service", "show", "tcp:203.0.113.10:80", "--json"}, []any{"services", 0, "local_addresses", 1, "connections"}, "1"},
		{[]string{"server", "list", "udp:[2001:db8:10::10]:53", "--json"}, []any{"destinations", 0, "address"}, "2001:db8:2::11"},
		{[]string{"server", "list", "fwm:7", "--json"}, []any{"destinations"}, []any{}},
		{[]string{"laddr", "list", "tcp:203.0.113.10:80", "--json"}, []any{"local_addresses", 0, "connections"}, "4"},
		{[]string{"conn", "--json"}, []any{"connections", 0, "local"}, "198.51.100.101:5001"},
		{[]string{"conn", "--json"}, []any{"connections", 1, "client"}, "[2001:db8:1::2]:5353"},
		{[]string{"conn", "--json", "--service", "udp:[2001:db8:10::10]:53"}, []any{"connections", 0, "expires"}, "290"},
		{[]string{"conn", "--json"}, []any{"connections", 0, "forward"}, "FullNat"},
		{[]string{"conn", "--json"}, []any{"connections", 0, "synproxy"}, "answered"},
		{[]string{"conn", "--json"}, []any{"connections", 0, "flags", 0}, "synproxy"},
		{[]string{"conn", "--json"}, []any{"connections", 0, "timeout"}, "900"},
		{[]string{"conn", "--json", "--fullnat"}, []any{"connections", 0, "local"}, "198.51.100.101:5001"},
		{[]string{"stats", "--json"}, []any{"ext_stats", "fullnat_lport_exhausted"}, "5"},
		{[]string{"stats", "--json"}, []any{"services", 0, "destinations", 0, "stats", "packets_in"}, "600"},
		{[]string{"sysctl", "list", "--json"}, []any{"sysctls", "fullnat_lport_min"}, "5000"},
		{[]string{"sysctl", "list", "--json"}, []any{"sysctls", "am_droprate"}, nil},
		{[]string{"info", "--json"}, []any{"info", "features"}, []any{"fullnat", "synproxy", "est-timeout"}},
	} {
		out, e, code := runCmd(t, f, proc, tc.args...)
		if code != 0 {
			t.Errorf("%v: exit %d: %s", tc.args, code, e)
			continue
		}
		doc := validate(t, out)[0]
		if got := jsonPath(t, doc, tc.path...); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: %v = %#v, want %#v", tc.args, tc.path, got, tc.want)
		}
	}
	out, _, _ := runCmd(t, f, proc, "conn", "--json", "--service", "tcp:192.0.2.99:80")
	if strings.TrimSpace(out) != `{"version":1,"kind":"connections","connections":[]}` {
		t.Errorf("no connection: %q", out)
	}
}

// The validator finds what the schema forbids: the tests above would
// pass vacuously otherwise.
func TestSchemaRejects(t *testing.T) {
	sch := schema(t)
	for _, bad := range []string{
		`{"version":2,"kind":"info","info":{"version":"1.2.1","conn_table_size":1,"features":[]}}`,
		`{"version":1,"kind":"info"}`,
		`{"version":1,"kind":"local_addresses","service":"tcp:1.2.3.4:80","local_addresses":[{"address":"1.2.3.400","connections":0,"port_conflicts":0}]}`,
		`{"version":1,"kind":"local_addresses","service":"tcp:1.2.3.4:80","local_addresses":[{"address":"1.2.3.4","connections":-1,"port_conflicts":0}]}`,
		`{"version":1,"kind":"destinations","service":"tcp:1.2.3.4","destinations":[]}`,
		`{"version":1,"kind":"sysctls","sysctls":{"am_droprate":1}}`,
		`{"version":1,"kind":"connections","connections":[{"protocol":"TCP","client":"1.2.3.4","virtual":"1.2.3.4:80","destination":"1.2.3.5:80","state":"X","expires":1}]}`,
	} {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); err == nil {
			t.Errorf("schema accepts %s", bad)
		}
	}
}

func TestTextOutput(t *testing.T) {
	f, proc := newFake(), fakeProc(t)
	out, _, _ := runCmd(t, f, proc, "service", "list")
	for _, want := range []string{"tcp:203.0.113.10:80", "hashed,synproxy est-timeout 300s proxy-protocol v2", "198.51.100.11:8080", "fullnat",
		"laddr 198.51.100.101", "[2001:db8:2::11]:53", "fwm:7"} {
		if !strings.Contains(out, want) {
			t.Errorf("service list lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = runCmd(t, f, proc, "stats")
	if !strings.Contains(out, "synproxy_ack_resent") || !strings.Contains(out, "1099511627776") {
		t.Errorf("stats:\n%s", out)
	}
	out, _, _ = runCmd(t, f, proc, "sysctl", "get", "synproxy_syn_retry")
	if out != "3\n" {
		t.Errorf("sysctl get = %q", out)
	}
}

func TestStatsWatch(t *testing.T) {
	out, e, code := runCmd(t, newFake(), fakeProc(t), "stats", "--json", "--watch", "--interval", "10ms", "--count", "3")
	if code != 0 {
		t.Fatal(e)
	}
	docs := validate(t, out)
	if len(docs) != 3 {
		t.Fatalf("%d documents, want 3:\n%s", len(docs), out)
	}
	if docs[0]["time"] == docs[2]["time"] {
		t.Errorf("the same time in the first and last print: %v", docs[0]["time"])
	}
}

func TestSysctlSet(t *testing.T) {
	proc := fakeProc(t)
	if _, e, code := runCmd(t, nil, proc, "sysctl", "set", "synproxy_syn_retry", "5"); code != 0 {
		t.Fatal(e)
	}
	if v, err := proc.Sysctl("synproxy_syn_retry"); err != nil || v != 5 {
		t.Errorf("after set: %d, %v", v, err)
	}
}

func TestCompletion(t *testing.T) {
	// urfave/cli looks at os.Args for what is being completed.
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	os.Args = []string{"lvsctl", "service", "--generate-bash-completion"}
	out, _, code := runCmd(t, nil, procFS{}, os.Args[1:]...)
	if code != 0 || !slices.Equal(strings.Fields(out), []string{"list", "ls", "show", "add", "edit", "delete", "rm", "help", "h"}) {
		t.Errorf("completion of service: exit %d %q", code, out)
	}
	os.Args = []string{"lvsctl", "server", "add", "--we", "--generate-bash-completion"}
	out, _, _ = runCmd(t, nil, procFS{}, os.Args[1:]...)
	if strings.TrimSpace(out) != "--weight" {
		t.Errorf("completion of server add --we: %q", out)
	}
	out, _, _ = runCmd(t, nil, procFS{}, "completion", "bash")
	if !strings.Contains(out, "complete -o default -F _lvsctl lvsctl") {
		t.Errorf("completion bash:\n%s", out)
	}
}

func TestInterspersed(t *testing.T) {
	app := (&env{}).app()
	for _, tc := range []struct{ in, want string }{
		{"lvsctl service add tcp:1.2.3.4:80 -s rr --flag=synproxy -p 60", "lvsctl service add -s rr --flag=synproxy -p 60 -- tcp:1.2.3.4:80"},
		{"lvsctl rs add S A --weight -1", "lvsctl rs add --weight -1 -- S A"},
		{"lvsctl stats --json", "lvsctl stats --json"},
		{"lvsctl conn --fullnat --json", "lvsctl conn --fullnat --json"},
		{"lvsctl service add S -- -x", "lvsctl service add S -- -x"},
		{"lvsctl service", "lvsctl service"},
		{"lvsctl --timeout 2s service add S -s rr", "lvsctl --timeout 2s service add -s rr -- S"},
		{"lvsctl --timeout=2s rs rm S A", "lvsctl --timeout=2s rs rm S A"},
	} {
		if got := strings.Join(interspersed(app, strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("%s -> %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestUsageErrorIs(t *testing.T) {
	if err := usagef("x"); !errors.Is(err, errUsage) {
		t.Error("usagef does not match errUsage")
	}
}

// --timeout puts a deadline on the kernel requests; a command without it
// has none.
func TestTimeout(t *testing.T) {
	f := newFake()
	if _, e, code := runCmd(t, f, procFS{}, "--timeout", "5s", "service", "list"); code != 0 || !f.deadline {
		t.Errorf("--timeout 5s: exit %d %s, deadline %v", code, e, f.deadline)
	}
	if _, e, code := runCmd(t, f, procFS{}, "service", "list"); code != 0 || f.deadline {
		t.Errorf("no --timeout: exit %d %s, deadline %v", code, e, f.deadline)
	}
	if _, e, code := runCmd(t, f, procFS{}, "--timeout", "1ns", "service", "list"); code != 1 || !strings.Contains(e, "context deadline exceeded") {
		t.Errorf("--timeout 1ns: exit %d %q", code, e)
	}
	if _, e, code := runCmd(t, nil, procFS{}, "--timeout", "-1s", "service", "list"); code != 2 || !strings.Contains(e, "--timeout -1s must not be negative") {
		t.Errorf("--timeout -1s: exit %d %q", code, e)
	}
}

// health passes only while every service (or each one named) has a real
// server that takes new connections; a director without services fails too.
func TestHealth(t *testing.T) {
	f := newFake()
	for _, tc := range []struct {
		name   string
		change func(f *fake)
		args   []string
		code   int
		want   string
	}{
		{"named services with live servers", nil, []string{"tcp:203.0.113.10:80", "udp:[2001:db8:10::10]:53"}, 0,
			"healthy: 2 services, 3 real servers with weight above 0"},
		{"fwmark service without servers", nil, nil, 1, "unhealthy: no real server with weight above 0 in fwm:7"},
		{"unknown service", nil, []string{"tcp:203.0.113.99:80"}, 1, "unhealthy: tcp:203.0.113.99:80: no such service"},
		{"bad argument", nil, []string{"tcp:203.0.113.999:80"}, 2, `address "203.0.113.999"`},
		{"every server quiesced", func(f *fake) {
			for i := range f.table[0].Destinations {
				f.table[0].Destinations[i].Weight = 0
			}
		}, []string{"tcp:203.0.113.10:80"}, 1, "no real server with weight above 0 in tcp:203.0.113.10:80"},
		{"no services", func(f *fake) { f.table = nil }, nil, 1, "unhealthy: no virtual service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.change != nil {
				tc.change(f)
			}
			out, errOut, code := runCmd(t, f, procFS{}, append([]string{"health"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out+errOut, tc.want) {
				t.Errorf("health %v: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
			}
		})
	}
}
