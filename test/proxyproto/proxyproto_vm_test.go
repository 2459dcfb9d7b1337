// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package proxyproto

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fullnat/fullnat/internal/vmnet"
)

// The services on the VIPs, each FULLNAT to the same port of rs1.
const (
	portNginx   = 81 // nginx, http with proxy_protocol and WebDAV PUT
	portHAProxy = 82 // haproxy accept-proxy, in front of lvs-peer (send-proxy-v2)
	portBanner  = 83 // lvs-peer --proxy-banner: the server speaks first
	portPeer    = 84 // lvs-peer --proxy-listen: get and put
)

var ports = []int{portNginx, portHAProxy, portBanner, portPeer}

// rig is the standard topology with one real server running nginx, haproxy and lvs-peer, and a
// FULLNAT service per port and family on the director.
type rig struct {
	tp   *vmnet.Topology
	dir  string // rs1's files: configurations, logs, nginx's documents
	logs struct{ nginx, haproxy string }
}

func ipvsadm(t *testing.T, ns vmnet.NS, args ...string) string {
	t.Helper()
	return ns.Run(t, append([]string{vmnet.Bin + "/ipvsadm"}, args...)...)
}

func newRig(t *testing.T) *rig {
	t.Helper()
	if os.Getenv("RIG_MODULES") != "ours" {
		t.Fatalf("FULLNAT needs our modules (RIG_MODULES=ours), got %q", os.Getenv("RIG_MODULES"))
	}
	r := &rig{tp: vmnet.New(t, vmnet.Options{Servers: 1}), dir: t.TempDir()}
	d, rs := r.tp.Director, r.tp.Servers[0]
	d.Run(t, "/sbin/modprobe", "ip_vs")
	d.Run(t, "/sbin/modprobe", "ip_vs_rr")
	d.Addr(t, "br0", "198.51.100.201/24")
	d.Addr(t, "br0", "2001:db8:2::201/64")
	rs4, rs6 := r.tp.ServerAddrs[0], r.tp.ServerAddrs6[0]
	t.Cleanup(func() { _, _ = d.Try(vmnet.Bin+"/ipvsadm", "-C") })
	for _, p := range ports {
		for _, fam := range []struct{ vip, rs, laddr string }{
			{r.tp.VIP.String(), rs4.String(), "198.51.100.201"},
			{"[" + r.tp.VIP6.String() + "]", "[" + rs6.String() + "]", "2001:db8:2::201"},
		} {
			svc := fmt.Sprintf("%s:%d", fam.vip, p)
			ipvsadm(t, d, "-A", "-t", svc, "-s", "rr", "--proxy-protocol", "v1")
			ipvsadm(t, d, "-P", "-t", svc, "-z", fam.laddr)
			ipvsadm(t, d, "-a", "-t", svc, "-r", fmt.Sprintf("%s:%d", fam.rs, p), "-b")
		}
	}

	// nginx: the client from the PROXY protocol header in its access log; PUT stores a file.
	for _, sub := range []string{"www", "tmp"} {
		if err := os.MkdirAll(filepath.Join(r.dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r.logs.nginx = filepath.Join(r.dir, "nginx-access.log")
	nginxConf := fmt.Sprintf(`user root;
worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log info;
events { worker_connections 64; }
http {
	client_body_temp_path %[1]s/tmp/body;
	proxy_temp_path %[1]s/tmp/proxy;
	fastcgi_temp_path %[1]s/tmp/fastcgi;
	uwsgi_temp_path %[1]s/tmp/uwsgi;
	scgi_temp_path %[1]s/tmp/scgi;
	log_format pp '$proxy_protocol_addr $proxy_protocol_port $remote_addr "$request" $status';
	access_log %[2]s pp;
	server {
		listen %[3]s:%[5]d proxy_protocol;
		listen [%[4]s]:%[5]d proxy_protocol;
		root %[1]s/www;
		client_max_body_size 16m;
		dav_methods PUT;
	}
}
`, r.dir, r.logs.nginx, rs4, rs6, portNginx)
	r.start(t, rs, "nginx.conf", nginxConf, "/usr/sbin/nginx", "-e", filepath.Join(r.dir, "nginx-error.log"), "-c", filepath.Join(r.dir, "nginx.conf"))

	// haproxy: accept-proxy in front, the client passed on with send-proxy-v2; its log line per
	// connection names the client it found in the header.
	r.logs.haproxy = filepath.Join(r.dir, "haproxy.log")
	haproxyConf := fmt.Sprintf(`global
	log stdout format raw local0
defaults
	mode tcp
	log global
	timeout connect 5s
	timeout client 2m
	timeout server 2m
frontend pp
	bind %[1]s:%[3]d accept-proxy
	bind [%[2]s]:%[3]d accept-proxy
	log-format "haproxy-client %%ci %%cp %%B"
	default_backend peer
backend peer
	server peer 127.0.0.1:9000 send-proxy-v2
`, rs4, rs6, portHAProxy)
	r.start(t, rs, "haproxy.cfg", haproxyConf, "/usr/sbin/haproxy", "-db", "-f", filepath.Join(r.dir, "haproxy.cfg"))

	args := []string{"--name", "rs1", "--proxy-listen", "127.0.0.1:9000"}
	for _, a := range []netip.Addr{rs4, rs6} {
		args = append(args,
			"--proxy-banner", netip.AddrPortFrom(a, portBanner).String(),
			"--proxy-listen", netip.AddrPortFrom(a, portPeer).String())
	}
	vmnet.ServeArgs(t, rs, args...)
	r.waitListening(t, rs, portNginx, portHAProxy)
	return r
}

// start writes conf into the rig's directory and runs argv in ns until the test ends; its
// output goes to NAME.out (haproxy's log lines among it).
func (r *rig) start(t *testing.T, ns vmnet.NS, name, conf string, argv ...string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, name), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(r.dir, strings.TrimSuffix(name, filepath.Ext(name))+".out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command(argv...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", argv[0], err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("%s output:\n%s", argv[0], b)
		}
	})
}

// waitListening waits until something listens on each TCP port in ns.
func (r *rig) waitListening(t *testing.T, ns vmnet.NS, ports ...int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range ports {
		want := fmt.Sprintf(":%04X ", p)
		for {
			out := ns.Run(t, "/bin/cat", "/proc/net/tcp")
			if strings.Contains(out, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("nothing listens on port %d in %s:\n%s", p, ns, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// setMode gives every service the PROXY protocol version and SYNPROXY switch of a round.
func (r *rig) setMode(t *testing.T, pp string, synproxy bool) {
	t.Helper()
	sp := "disable"
	if synproxy {
		sp = "enable"
	}
	for _, p := range ports {
		for _, vip := range []string{r.tp.VIP.String(), "[" + r.tp.VIP6.String() + "]"} {
			ipvsadm(t, r.tp.Director, "-E", "-t", fmt.Sprintf("%s:%d", vip, p), "-s", "rr", "-j", sp, "--proxy-protocol", pp)
		}
	}
	want := fmt.Sprintf("--proxy-protocol %s", pp)
	if out := ipvsadm(t, r.tp.Director, "-S", "-n"); strings.Count(out, want) != 2*len(ports) {
		t.Fatalf("ipvsadm -S does not show %q on every service:\n%s", want, out)
	}
}

// seenClient checks that rs1 (lvs-peer) saw only the client.
func seenClient(t *testing.T, s vmnet.Summary, client netip.Addr) {
	t.Helper()
	seen := s.Seen["rs1"]
	if len(seen) != 1 || seen[client.String()] == 0 {
		t.Errorf("rs1 saw %v, want only the client %s", seen, client)
	}
}

func TestProxyProtocol(t *testing.T) {
	r := newRig(t)
	c := r.tp.Client
	rounds := []struct {
		pp       string
		synproxy bool
	}{{"v1", false}, {"v2", false}, {"v2", true}, {"v1", true}}
	for _, rd := range rounds {
		r.setMode(t, rd.pp, rd.synproxy)
		for _, fam := range []struct {
			name   string
			vip    netip.Addr
			client netip.Addr
		}{{"IPv4", r.tp.VIP, r.tp.ClientAddr}, {"IPv6", r.tp.VIP6, r.tp.ClientAddr6}} {
			name := fmt.Sprintf("%s/SYNPROXY=%v/%s", rd.pp, rd.synproxy, fam.name)
			t.Run(name, func(t *testing.T) {
				vip := func(p int) string { return netip.AddrPortFrom(fam.vip, uint16(p)).String() }

				// nginx: 1 MB each way, and the client in its log.
				url := fmt.Sprintf("http://%s/%s-%s-%v", vip(portNginx), rd.pp, fam.name, rd.synproxy)
				if out, err := c.Try(vmnet.Bin+"/lvs-peer", "http", "--url", url, "--size", strconv.Itoa(1<<20)); err != nil {
					t.Fatalf("nginx PUT and GET of 1 MB: %v\n%s", err, out)
				}
				log, _ := os.ReadFile(r.logs.nginx)
				var lines []string
				path := url[strings.Index(url[len("http://"):], "/")+len("http://"):]
				for _, l := range strings.Split(string(log), "\n") {
					if strings.Contains(l, " "+path+" ") {
						lines = append(lines, l)
					}
				}
				if len(lines) != 2 {
					t.Fatalf("nginx logged %d requests for %s, want PUT and GET:\n%s", len(lines), path, log)
				}
				for _, l := range lines {
					if f := strings.Fields(l); f[0] != fam.client.String() {
						t.Errorf("nginx's $proxy_protocol_addr is %q, want the client %s: %q", f[0], fam.client, l)
					}
				}

				// haproxy: the client it found, passed on to lvs-peer; 1 MB each way.
				seenClient(t, vmnet.Dial(t, c, "--addr", vip(portHAProxy), "--count", "4", "--op", "hello"), fam.client)
				vmnet.Dial(t, c, "--addr", vip(portHAProxy), "--op", "get", "--size", strconv.Itoa(1<<20))
				vmnet.Dial(t, c, "--addr", vip(portHAProxy), "--op", "put", "--size", strconv.Itoa(1<<20))
				hlog, _ := os.ReadFile(filepath.Join(r.dir, "haproxy.out"))
				if !strings.Contains(string(hlog), "haproxy-client "+fam.client.String()+" ") {
					t.Errorf("haproxy never logged the client %s:\n%s", fam.client, hlog)
				}

				// a server that speaks first: it has the header before it writes.
				seenClient(t, vmnet.Dial(t, c, "--addr", vip(portBanner), "--count", "4", "--op", "banner"), fam.client)
			})
		}
	}
	ext := r.tp.Director.Run(t, "/bin/cat", "/proc/net/ip_vs_ext_stats")
	if !strings.Contains(ext, "fullnat_add_pp_ok") {
		t.Errorf("no fullnat_add_pp_ok counter:\n%s", ext)
	}
}

// TestProxyProtocolLoss: 1 MB each way through the header under 3% loss in both directions
// (netem on the client and on the director's side towards it), so the header's packet, the
// client's first data and their acknowledgements are lost at times and sent again.
func TestProxyProtocolLoss(t *testing.T) {
	r := newRig(t)
	c, d := r.tp.Client, r.tp.Director
	c.Run(t, "/usr/sbin/tc", "qdisc", "add", "dev", "eth0", "root", "netem", "loss", "3%")
	d.Run(t, "/usr/sbin/tc", "qdisc", "add", "dev", "c0", "root", "netem", "loss", "3%")
	for _, pp := range []string{"v1", "v2"} {
		for _, synproxy := range []bool{false, true} {
			r.setMode(t, pp, synproxy)
			for _, vip := range []netip.Addr{r.tp.VIP, r.tp.VIP6} {
				t.Run(fmt.Sprintf("%s/SYNPROXY=%v/%s", pp, synproxy, vip), func(t *testing.T) {
					addr := netip.AddrPortFrom(vip, portPeer).String()
					for _, op := range []string{"put", "get"} {
						vmnet.Dial(t, c, "--addr", addr, "--op", op, "--count", "4", "--parallel", "2",
							"--size", strconv.Itoa(1<<20), "--timeout", "60s")
					}
				})
			}
		}
	}
}

// TestProxyProtocolGRO: the director's interfaces aggregate what they receive (GRO, then also
// fraglist GRO) and the client segments in software (TSO off), so the client's first bytes may
// reach the header's insertion as one aggregated packet of many segments: 4 MB each way, intact.
func TestProxyProtocolGRO(t *testing.T) {
	const ethtool = "/usr/sbin/ethtool"
	r := newRig(t)
	c, d := r.tp.Client, r.tp.Director
	c.Run(t, ethtool, "-K", "eth0", "tso", "off")
	r.tp.Servers[0].Run(t, ethtool, "-K", "eth0", "tso", "off")
	r.setMode(t, "v2", false)
	for _, fraglist := range []string{"off", "on"} {
		for _, dev := range []string{"c0", "r1"} {
			d.Run(t, ethtool, "-K", dev, "gro", "on", "rx-gro-list", fraglist, "tx-gso-list", "off")
			if out := d.Run(t, ethtool, "-k", dev); !strings.Contains(out, "generic-receive-offload: on") ||
				!strings.Contains(out, "rx-gro-list: "+fraglist) {
				t.Fatalf("%s: GRO on with rx-gro-list %s did not take:\n%s", dev, fraglist, out)
			}
		}
		for _, vip := range []netip.Addr{r.tp.VIP, r.tp.VIP6} {
			t.Run(fmt.Sprintf("rx-gro-list=%s/%s", fraglist, vip), func(t *testing.T) {
				addr := netip.AddrPortFrom(vip, portPeer).String()
				for _, op := range []string{"put", "get"} {
					vmnet.Dial(t, c, "--addr", addr, "--op", op, "--count", "2", "--size", strconv.Itoa(4<<20), "--timeout", "60s")
				}
				seenClient(t, vmnet.Dial(t, c, "--addr", netip.AddrPortFrom(vip, portBanner).String(), "--op", "banner"), map[bool]netip.Addr{true: r.tp.ClientAddr, false: r.tp.ClientAddr6}[vip.Is4()])
			})
		}
	}
}
