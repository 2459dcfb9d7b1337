// Command lvs-peer is the traffic tool of the test rig and of `make demo`: a server that tells each
// client who it is and whom it sees, and a client that opens many connections through a virtual
// service and verifies every byte.
//
//	lvs-peer serve --name rs1 --listen 198.51.100.11:80 [--listen [2001:db8:2::11]:80] [--udp ...]
//	               [--banner 198.51.100.11:25 ...] [--proxy-listen ADDR ...] [--proxy-banner ADDR ...]
//	lvs-peer dial --addr 203.0.113.10:80 [--udp] [--count 1000] [--parallel 16]
//	              [--op hello|get|put|banner|pps] [--size 10485760] [--local-port 40000] [--human --tag NAME]
//	lvs-peer flood --addr 203.0.113.10:80 [--count 200000] [--kind syn|ack|fin] [--workers 2] [--first 0]
//	lvs-peer sniff --name rs1 --iface eth0 [--tag NAME]
//	lvs-peer http --url http://203.0.113.10/f [--size 1048576] [--seed 1]
//
// TCP protocol, one request line per connection:
//
//	hello        -> "<name> <remote addr:port>\n"
//	get N SEED   -> N bytes of the deterministic stream SEED
//	put N        -> reads N bytes, answers "<sha256 hex>\n"
//	opts         -> "<tcpi_options>\n": the TCP options the server's socket agreed (TCP_INFO,
//	                1 timestamps, 2 SACK, 4 window scaling)
//	GET or HEAD  -> an HTTP/1.0 request (keepalived's HTTP_GET checker): its headers are read
//	                and "HTTP/1.0 200 OK" comes back with "<name> <remote addr:port>\n" as the body
//
// A --banner listener speaks first, as SMTP, SSH or MySQL servers do: it writes
// "<name> <remote addr:port>\n" as soon as it accepts, without waiting for the client, then
// waits for the client to close. dial --op banner connects, sends nothing, and reads that line.
//
// --proxy-listen and --proxy-banner listeners serve the same, after the PROXY protocol header
// (version 1 or 2, haproxy's proxy-protocol.txt) that starts each connection: the remote address
// they report is the one the header gives. A connection without a good header is closed.
//
// UDP: any datagram is answered with "<name> <remote addr:port>".
//
// dial prints one JSON summary line and exits non-zero when any operation failed. With --human it
// prints sentences instead, and with --tag NAME also "result NAME key=value ..." lines that a
// script can check (rig/demo-check.sh).
//
// sniff counts the TCP segments an interface receives until SIGINT or SIGTERM, by source address
// and by the client address of their TOA option, and then prints what it saw (see sniff.go).
//
// http PUTs --size bytes of a deterministic stream to --url (a WebDAV server: nginx's dav
// module), GETs them back, prints a JSON summary and exits non-zero unless they match.
//
// flood sends spoofed TCP packets (see internal/flood) from the current network namespace and
// prints what it sent, as JSON or (--human) as a sentence.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fullnat/fullnat/internal/flood"
	"github.com/fullnat/fullnat/internal/tcpopt"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "dial":
		err = dial(os.Args[2:])
	case "flood":
		err = floodCmd(os.Args[2:])
	case "sniff":
		err = sniffCmd(os.Args[2:])
	case "http":
		err = httpCmd(os.Args[2:])
	case "-h", "--help", "help":
		usage()
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lvs-peer:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage:
  lvs-peer serve --name NAME --listen ADDR:PORT [--listen ...] [--udp ADDR:PORT ...]
                 [--banner ADDR:PORT ...] [--proxy-listen ADDR:PORT ...] [--proxy-banner ADDR:PORT ...]
  lvs-peer dial --addr ADDR:PORT [--udp] [--count N] [--parallel P] [--op hello|get|put|get-raw|put-raw|banner|pps]
                [--size BYTES] [--local-port PORT] [--timeout 10s] [--human [--tag NAME]]
  lvs-peer flood --addr ADDR:PORT [--count N] [--kind syn|ack|fin] [--workers W] [--first K]
                 [--limit 60s] [--human]
  lvs-peer sniff --name NAME --iface IFNAME [--tag NAME]
  lvs-peer http --url URL [--size BYTES] [--seed S] [--timeout 1m]`)
	os.Exit(2)
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// rawBuf is what get-raw and put-raw send, over and over: bytes that cost
// the peers nothing to make or check, so that a transfer measures the path
// between them rather than the peers (TCP checks the bytes on the way).
var rawBuf = func() []byte {
	b := make([]byte, 256*1024)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}()

// discard reads r to its end in reads as large as rawBuf (io.Copy to
// io.Discard would read 8 KB at a time) and counts the bytes.
func discard(r io.Reader) (int64, error) {
	buf := make([]byte, len(rawBuf))
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// stream writes n bytes of the deterministic stream seed to w (xorshift64*).
func stream(w io.Writer, n int64, seed uint64) error {
	x := seed*2654435761 + 0x9e3779b97f4a7c15
	buf := make([]byte, 64*1024)
	for n > 0 {
		chunk := int64(len(buf))
		if n < chunk {
			chunk = n
		}
		for i := int64(0); i < chunk; i += 8 {
			x ^= x >> 12
			x ^= x << 25
			x ^= x >> 27
			v := x * 0x2545f4914f6cdd1d
			for j := int64(0); j < 8 && i+j < chunk; j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := w.Write(buf[:chunk]); err != nil {
			return err
		}
		n -= chunk
	}
	return nil
}

func streamSum(n int64, seed uint64) string {
	h := sha256.New()
	_ = stream(h, n, seed)
	return hex.EncodeToString(h.Sum(nil))
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	name := fs.String("name", "", "name reported to clients")
	var tcp, udp, banner, ppTCP, ppBanner listFlag
	fs.Var(&tcp, "listen", "TCP address to listen on (repeatable)")
	fs.Var(&udp, "udp", "UDP address to listen on (repeatable)")
	fs.Var(&banner, "banner", "TCP address to listen on, speaking first (repeatable)")
	fs.Var(&ppTCP, "proxy-listen", "as --listen, each connection starting with a PROXY protocol header (repeatable)")
	fs.Var(&ppBanner, "proxy-banner", "as --banner, after the connection's PROXY protocol header (repeatable)")
	_ = fs.Parse(args)
	if *name == "" || len(tcp)+len(udp)+len(banner)+len(ppTCP)+len(ppBanner) == 0 {
		return errors.New("serve needs --name and at least one --listen, --udp, --banner, --proxy-listen or --proxy-banner")
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		_ = c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		})
		return serr
	}}
	for _, a := range tcp {
		l, err := lc.Listen(context.Background(), "tcp", a)
		if err != nil {
			return fmt.Errorf("listen tcp %s: %w", a, err)
		}
		go acceptLoop(l, *name, handle)
	}
	for _, lh := range []struct {
		addrs listFlag
		h     func(net.Conn, string)
	}{{banner, handleBanner}, {ppTCP, acceptProxy(handle)}, {ppBanner, acceptProxy(handleBanner)}} {
		for _, a := range lh.addrs {
			l, err := lc.Listen(context.Background(), "tcp", a)
			if err != nil {
				return fmt.Errorf("listen tcp %s: %w", a, err)
			}
			go acceptLoop(l, *name, lh.h)
		}
	}
	for _, a := range udp {
		c, err := lc.ListenPacket(context.Background(), "udp", a)
		if err != nil {
			return fmt.Errorf("listen udp %s: %w", a, err)
		}
		go udpLoop(c, *name)
	}
	fmt.Println("ready")
	select {}
}

func acceptLoop(l net.Listener, name string, h func(net.Conn, string)) {
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "accept:", err)
			return
		}
		go h(c, name)
	}
}

// handleBanner speaks first: the banner, then it waits for the client to close.
func handleBanner(c net.Conn, name string) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	if _, err := fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr()); err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, c)
}

func handle(c net.Conn, name string) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return
	}
	switch {
	case f[0] == "hello":
		fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr())
	case (f[0] == "GET" || f[0] == "HEAD") && len(f) == 3 && strings.HasPrefix(f[2], "HTTP/"):
		serveHTTP(c, r, f[0], name)
	case f[0] == "get" && len(f) == 3:
		n, _ := strconv.ParseInt(f[1], 10, 64)
		seed, _ := strconv.ParseUint(f[2], 10, 64)
		bw := bufio.NewWriterSize(c, 64*1024)
		if stream(bw, n, seed) == nil {
			_ = bw.Flush()
		}
	case f[0] == "rawget" && len(f) == 2:
		n, _ := strconv.ParseInt(f[1], 10, 64)
		for n > 0 {
			w, err := c.Write(rawBuf[:min(n, int64(len(rawBuf)))])
			if err != nil {
				return
			}
			n -= int64(w)
		}
	case f[0] == "rawput" && len(f) == 2:
		n, _ := strconv.ParseInt(f[1], 10, 64)
		got, _ := discard(io.LimitReader(r, n))
		fmt.Fprintf(c, "%d\n", got)
	case f[0] == "opts":
		o, err := tcpopt.Agreed(c)
		if err != nil {
			fmt.Fprintf(c, "error %v\n", err)
			return
		}
		fmt.Fprintf(c, "%d\n", uint8(o))
	case f[0] == "put" && len(f) == 2:
		n, _ := strconv.ParseInt(f[1], 10, 64)
		h := sha256.New()
		if _, err := io.CopyN(h, r, n); err != nil {
			fmt.Fprintf(c, "error %v\n", err)
			return
		}
		fmt.Fprintf(c, "%s\n", hex.EncodeToString(h.Sum(nil)))
	}
}

// serveHTTP answers an HTTP request whose request line was read: the rest of its header is
// read up to the blank line, and the answer is 200 with who we are and whom we see.
func serveHTTP(c net.Conn, r *bufio.Reader, method, name string) {
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.TrimRight(l, "\r\n") == "" {
			break
		}
	}
	body := fmt.Sprintf("%s %s\n", name, c.RemoteAddr())
	fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	if method == "GET" {
		_, _ = io.WriteString(c, body)
	}
}

func udpLoop(c net.PacketConn, name string) {
	buf := make([]byte, 65536)
	for {
		_, addr, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = c.WriteTo([]byte(fmt.Sprintf("%s %s", name, addr)), addr)
	}
}

type summary struct {
	OK     int `json:"ok"`
	Failed int `json:"failed"`
	// Lost is the datagrams of --op pps that got no answer.
	Lost    int            `json:"lost,omitempty"`
	Servers map[string]int `json:"servers"`
	Peers   map[string]int `json:"peers"`
	// Seen maps each server to the peer addresses (without port) it saw, with counts.
	Seen      map[string]map[string]int `json:"seen"`
	Bytes     int64                     `json:"bytes"`
	ElapsedMS int64                     `json:"elapsed_ms"`
	// SlowestMS is the longest successful operation, connection set-up included.
	SlowestMS int64    `json:"slowest_ms"`
	Errors    []string `json:"errors,omitempty"`
}

func dial(args []string) error {
	fs := flag.NewFlagSet("dial", flag.ExitOnError)
	addr := fs.String("addr", "", "virtual service address:port")
	udp := fs.Bool("udp", false, "use UDP (op hello only)")
	count := fs.Int("count", 1, "number of operations")
	par := fs.Int("parallel", 1, "operations in flight")
	op := fs.String("op", "hello", "hello, get, put, get-raw, put-raw, banner, or pps (UDP: --count datagrams on one flow, --parallel in flight)")
	size := fs.Int64("size", 1<<20, "bytes for get and put")
	lport := fs.Int("local-port", 0, "local port to bind (0: any)")
	timeout := fs.Duration("timeout", 20*time.Second, "timeout of one operation")
	human := fs.Bool("human", false, "print what each server saw, one line per server, instead of JSON")
	tag := fs.String("tag", "", "with --human, also print \"result TAG key=value ...\" lines")
	_ = fs.Parse(args)
	if *addr == "" {
		return errors.New("dial needs --addr")
	}
	if *op == "pps" {
		if !*udp {
			return errors.New("dial: --op pps needs --udp")
		}
		return pps(*addr, *count, *par, *timeout)
	}
	s := summary{Servers: map[string]int{}, Peers: map[string]int{}, Seen: map[string]map[string]int{}}
	var mu sync.Mutex
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				t0 := time.Now()
				server, peer, n, err := once(*addr, *udp, *op, *size, uint64(i+1), *lport, *timeout)
				took := time.Since(t0).Milliseconds()
				mu.Lock()
				if err != nil {
					s.Failed++
					if len(s.Errors) < 10 {
						s.Errors = append(s.Errors, err.Error())
					}
				} else {
					s.OK++
					s.Bytes += n
					s.SlowestMS = max(s.SlowestMS, took)
					if server != "" {
						s.Servers[server]++
						s.Peers[peer]++
						host, _, _ := net.SplitHostPort(peer)
						if s.Seen[server] == nil {
							s.Seen[server] = map[string]int{}
						}
						s.Seen[server][host]++
					}
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < *count; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	s.ElapsedMS = time.Since(start).Milliseconds()
	if *human {
		names := make([]string, 0, len(s.Seen))
		for n := range s.Seen {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Printf("%s answered %d connections; peers it saw:", n, s.Servers[n])
			hosts := make([]string, 0, len(s.Seen[n]))
			for h := range s.Seen[n] {
				hosts = append(hosts, h)
			}
			sort.Strings(hosts)
			for _, h := range hosts {
				fmt.Printf(" %s (%d)", h, s.Seen[n][h])
			}
			fmt.Println()
		}
		fmt.Printf("%d ok, %d failed, %d bytes verified in %d ms\n", s.OK, s.Failed, s.Bytes, s.ElapsedMS)
		for _, e := range s.Errors {
			fmt.Printf("failed: %s\n", e)
		}
		if *tag != "" {
			printResults(*tag, s, names)
		}
	} else {
		out, _ := json.Marshal(s)
		fmt.Println(string(out))
	}
	if s.Failed > 0 {
		return fmt.Errorf("%d of %d operations failed", s.Failed, *count)
	}
	return nil
}

// pps sends count small datagrams to addr from one socket, one flow through the director,
// keeping up to window of them unanswered, and prints the summary: OK is the datagrams the
// server answered, Lost those it did not within timeout (never a failure: a datagram may be
// dropped), ElapsedMS the time from the first to the last.
func pps(addr string, count, window int, timeout time.Duration) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer c.Close()
	window = max(window, 1)
	msg, buf := make([]byte, 18), make([]byte, 256) // a 64-byte Ethernet frame over IPv4, FCS included
	var s summary
	sent, inflight := 0, 0
	start := time.Now()
	for sent < count || inflight > 0 {
		for ; sent < count && inflight < window; sent, inflight = sent+1, inflight+1 {
			if _, err := c.Write(msg); err != nil {
				return fmt.Errorf("udp write: %w", err)
			}
		}
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return fmt.Errorf("udp read: %w", err)
			}
			// what is in flight will not come back
			s.Lost += inflight
			inflight = 0
			continue
		}
		s.OK++
		inflight--
	}
	s.ElapsedMS = time.Since(start).Milliseconds()
	out, _ := json.Marshal(s)
	fmt.Println(string(out))
	return nil
}

// printResults prints the summary as "result TAG key=value ..." lines: one for the whole run and
// one per server, with the peers it saw as ADDR(COUNT) separated by commas.
func printResults(tag string, s summary, names []string) {
	fmt.Printf("result %s ok=%d failed=%d bytes=%d servers=%d\n", tag, s.OK, s.Failed, s.Bytes, len(names))
	for _, n := range names {
		hosts := make([]string, 0, len(s.Seen[n]))
		for h := range s.Seen[n] {
			hosts = append(hosts, fmt.Sprintf("%s(%d)", h, s.Seen[n][h]))
		}
		sort.Strings(hosts)
		fmt.Printf("result %s server=%s answered=%d peers=%s\n", tag, n, s.Servers[n], strings.Join(hosts, ","))
	}
}

func once(addr string, udp bool, op string, size int64, seed uint64, lport int, timeout time.Duration) (server, peer string, n int64, err error) {
	d := net.Dialer{Timeout: timeout}
	network := "tcp"
	if udp {
		network = "udp"
	}
	if lport != 0 {
		if udp {
			d.LocalAddr = &net.UDPAddr{Port: lport}
		} else {
			d.LocalAddr = &net.TCPAddr{Port: lport}
		}
	}
	c, err := d.Dial(network, addr)
	if err != nil {
		return "", "", 0, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if udp {
		if _, err := c.Write([]byte("hello")); err != nil {
			return "", "", 0, fmt.Errorf("udp write: %w", err)
		}
		buf := make([]byte, 512)
		m, err := c.Read(buf)
		if err != nil {
			return "", "", 0, fmt.Errorf("udp read: %w", err)
		}
		f := strings.Fields(string(buf[:m]))
		if len(f) != 2 {
			return "", "", 0, fmt.Errorf("udp: bad reply %q", buf[:m])
		}
		return f[0], f[1], 0, nil
	}
	switch op {
	case "banner":
		// Nothing from the client: the server speaks first.
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return "", "", 0, fmt.Errorf("banner: %w", err)
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return "", "", 0, fmt.Errorf("banner: bad banner %q", line)
		}
		return f[0], f[1], 0, nil
	case "hello":
		if _, err := io.WriteString(c, "hello\n"); err != nil {
			return "", "", 0, err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return "", "", 0, fmt.Errorf("hello: %w", err)
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return "", "", 0, fmt.Errorf("hello: bad reply %q", line)
		}
		return f[0], f[1], 0, nil
	case "get":
		if _, err := fmt.Fprintf(c, "get %d %d\n", size, seed); err != nil {
			return "", "", 0, err
		}
		h := sha256.New()
		got, err := io.Copy(h, c)
		if err != nil {
			return "", "", got, fmt.Errorf("get: after %d bytes: %w", got, err)
		}
		if got != size || hex.EncodeToString(h.Sum(nil)) != streamSum(size, seed) {
			return "", "", got, fmt.Errorf("get: %d bytes received, %d expected, or content differs", got, size)
		}
		return "", "", got, nil
	case "get-raw":
		// as get, of a fixed buffer, only counted
		if _, err := fmt.Fprintf(c, "rawget %d\n", size); err != nil {
			return "", "", 0, err
		}
		got, err := discard(c)
		if err != nil {
			return "", "", got, fmt.Errorf("get-raw: after %d bytes: %w", got, err)
		}
		if got != size {
			return "", "", got, fmt.Errorf("get-raw: %d bytes received, %d expected", got, size)
		}
		return "", "", got, nil
	case "put-raw":
		// as put, of a fixed buffer; the server counts what it got
		if _, err := fmt.Fprintf(c, "rawput %d\n", size); err != nil {
			return "", "", 0, err
		}
		for n := size; n > 0; {
			w, err := c.Write(rawBuf[:min(n, int64(len(rawBuf)))])
			if err != nil {
				return "", "", size - n, fmt.Errorf("put-raw: %w", err)
			}
			n -= int64(w)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return "", "", 0, fmt.Errorf("put-raw: reading the count: %w", err)
		}
		if strings.TrimSpace(line) != strconv.FormatInt(size, 10) {
			return "", "", 0, fmt.Errorf("put-raw: the server counted %q of %d bytes", strings.TrimSpace(line), size)
		}
		return "", "", size, nil
	case "put":
		if _, err := fmt.Fprintf(c, "put %d\n", size); err != nil {
			return "", "", 0, err
		}
		bw := bufio.NewWriterSize(c, 64*1024)
		if err := stream(bw, size, seed); err != nil {
			return "", "", 0, fmt.Errorf("put: %w", err)
		}
		if err := bw.Flush(); err != nil {
			return "", "", 0, fmt.Errorf("put: %w", err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return "", "", 0, fmt.Errorf("put: reading digest: %w", err)
		}
		if strings.TrimSpace(line) != streamSum(size, seed) {
			return "", "", 0, fmt.Errorf("put: server digest %q differs", strings.TrimSpace(line))
		}
		return "", "", size, nil
	}
	return "", "", 0, fmt.Errorf("unknown op %q", op)
}

// floodKinds maps --kind to the TCP flags of the flood.
var floodKinds = map[string]byte{"syn": flood.SYN, "ack": flood.ACK, "fin": flood.FIN | flood.ACK}

func floodCmd(args []string) error {
	fs := flag.NewFlagSet("flood", flag.ExitOnError)
	addr := fs.String("addr", "", "virtual service address:port")
	count := fs.Int("count", 200000, "packets to send")
	kind := fs.String("kind", "syn", "syn, ack (bad cookies) or fin (no connection)")
	workers := fs.Int("workers", 2, "sending goroutines, one raw socket each")
	limit := fs.Duration("limit", time.Minute, "stop after this long")
	first := fs.Int("first", 0, "index of the first packet (a flood from --first N sends from other sources than one from 0)")
	human := fs.Bool("human", false, "print a sentence instead of JSON")
	tag := fs.String("tag", "", "with --human, also print \"result TAG sent=N ...\"")
	_ = fs.Parse(args)
	target, err := netip.ParseAddrPort(*addr)
	if err != nil {
		return fmt.Errorf("flood: --addr %q: %w", *addr, err)
	}
	flags, ok := floodKinds[*kind]
	if !ok {
		return fmt.Errorf("flood: --kind %q: want syn, ack or fin", *kind)
	}
	r, err := flood.Run(flood.Config{Target: target, Count: *count, Flags: flags, Workers: *workers, Limit: *limit, First: *first})
	if *human {
		fmt.Printf("sent %d spoofed %s packets to %v in %v (%.0f/s)\n", r.Sent, strings.ToUpper(*kind), target,
			r.Elapsed.Round(time.Millisecond), r.Rate())
		if *tag != "" {
			fmt.Printf("result %s sent=%d kind=%s elapsed_ms=%d\n", *tag, r.Sent, *kind, r.Elapsed.Milliseconds())
		}
	} else {
		out, _ := json.Marshal(map[string]any{"sent": r.Sent, "elapsed_ms": r.Elapsed.Milliseconds(), "rate": int(r.Rate())})
		fmt.Println(string(out))
	}
	return err
}
