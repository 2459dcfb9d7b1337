// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"
)

// Metric names (README.md lists them with their labels).
const metricPrefix = "lvs_"

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(metricPrefix+name, help, labels, nil)
}

// statDescs are the counters and rates of a service or a destination.
type statDescs struct {
	conns, packets, bytes, cps, pps, bps *prometheus.Desc
}

func newStatDescs(what string, labels ...string) statDescs {
	dir := append(append([]string{}, labels...), "direction")
	return statDescs{
		conns:   desc(what+"_connections_total", "Connections scheduled to the "+what+".", labels...),
		packets: desc(what+"_packets_total", "Packets of the "+what+"'s connections, direction in (from clients) or out (to clients).", dir...),
		bytes:   desc(what+"_bytes_total", "Bytes of the "+what+"'s connections, direction in (from clients) or out (to clients).", dir...),
		cps:     desc(what+"_connections_per_second", "The kernel's estimate of new connections per second (2 s average).", labels...),
		pps:     desc(what+"_packets_per_second", "The kernel's estimate of packets per second.", dir...),
		bps:     desc(what+"_bytes_per_second", "The kernel's estimate of bytes per second.", dir...),
	}
}

func (d statDescs) describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{d.conns, d.packets, d.bytes, d.cps, d.pps, d.bps} {
		ch <- x
	}
}

func (d statDescs) collect(ch chan<- prometheus.Metric, s jsonStats, labels ...string) {
	in := append(append([]string{}, labels...), "in")
	out := append(append([]string{}, labels...), "out")
	c, g := prometheus.CounterValue, prometheus.GaugeValue
	ch <- prometheus.MustNewConstMetric(d.conns, c, float64(s.Connections), labels...)
	ch <- prometheus.MustNewConstMetric(d.packets, c, float64(s.PacketsIn), in...)
	ch <- prometheus.MustNewConstMetric(d.packets, c, float64(s.PacketsOut), out...)
	ch <- prometheus.MustNewConstMetric(d.bytes, c, float64(s.BytesIn), in...)
	ch <- prometheus.MustNewConstMetric(d.bytes, c, float64(s.BytesOut), out...)
	ch <- prometheus.MustNewConstMetric(d.cps, g, float64(s.CPS), labels...)
	ch <- prometheus.MustNewConstMetric(d.pps, g, float64(s.PPSIn), in...)
	ch <- prometheus.MustNewConstMetric(d.pps, g, float64(s.PPSOut), out...)
	ch <- prometheus.MustNewConstMetric(d.bps, g, float64(s.BPSIn), in...)
	ch <- prometheus.MustNewConstMetric(d.bps, g, float64(s.BPSOut), out...)
}

// extStatNames are the counters of /proc/net/ip_vs_ext_stats
// (kmod/ip_vs_fnat.c, kmod/ip_vs_synproxy.c, the PROXY protocol's from
// kmod/ip_vs_pp.c, the sync's from kmod/ip_vs_fnat_sync.c); each is exported as
// lvs_<name>_total. Counters the module adds later come out as
// lvs_ext_stat_total{name="..."} until they are listed here.
var extStatNames = []string{
	"fullnat_add_toa_ok", "fullnat_add_toa_fail_len", "fullnat_add_toa_head_full", "fullnat_add_toa_fail_mem",
	"fullnat_add_toa_fail_proto", "fullnat_conn_reused", "fullnat_conn_reused_close", "fullnat_conn_reused_timewait",
	"fullnat_conn_reused_finwait", "fullnat_conn_reused_closewait", "fullnat_conn_reused_lastack",
	"fullnat_conn_reused_estab", "fullnat_no_laddr", "fullnat_lport_exhausted", "fullnat_add_pp_ok", "fullnat_add_pp_fail",
	"fullnat_sync_conn", "fullnat_sync_refused",
	"synproxy_rs_error", "synproxy_null_ack", "synproxy_bad_ack", "synproxy_ok_ack", "synproxy_syn_cnt",
	"synproxy_ackstorm", "synproxy_synsend_qlen", "synproxy_conn_reused", "synproxy_conn_reused_close",
	"synproxy_conn_reused_timewait", "synproxy_conn_reused_finwait", "synproxy_conn_reused_closewait",
	"synproxy_conn_reused_lastack", "defence_ip_frag_drop", "defence_tcp_drop", "defence_udp_drop",
	"synproxy_no_dest", "synproxy_ack_resent",
}

// collector reads IPVS on every scrape: nothing is cached between scrapes,
// so a service added a second ago is in the next scrape.
type collector struct {
	open func() (backend, error)
	proc procFS
	log  *log.Logger

	up, info, serviceInfo, destInfo                   *prometheus.Desc
	destWeight, destActive, destInactive, destPersist *prometheus.Desc
	laddrConns, laddrConflicts, lportRange            *prometheus.Desc
	extUnknown                                        *prometheus.Desc
	ext                                               map[string]*prometheus.Desc
	svc, dest                                         statDescs
}

func newCollector(open func() (backend, error), proc procFS, logger *log.Logger) *collector {
	sd := []string{"service", "server"}
	c := &collector{
		open: open, proc: proc, log: logger,
		up:           desc("up", "1 when the IPVS table could be read, else 0."),
		info:         desc("info", "IPVS version and the extension features of the running module.", "version", "features"),
		serviceInfo:  desc("service_info", "A virtual service, its scheduler and flags.", "service", "scheduler", "flags"),
		destInfo:     desc("server_info", "A real server and its forwarding method.", "service", "server", "forward_method"),
		destWeight:   desc("server_weight", "Weight of the real server (0: quiesced).", sd...),
		destActive:   desc("server_active_connections", "Active connections of the real server.", sd...),
		destInactive: desc("server_inactive_connections", "Inactive connections of the real server.", sd...),
		destPersist:  desc("server_persistent_connections", "Persistence templates pointing at the real server.", sd...),
		laddrConns: desc("local_address_connections", "Connections of the service using the FULLNAT local address, "+
			"i.e. its local ports in use (one address has lvs_fullnat_local_ports ports per protocol, shared by its services).",
			"service", "address"),
		laddrConflicts: desc("local_address_port_conflicts_total", "Local ports of the address found taken while allocating.",
			"service", "address"),
		lportRange: desc("fullnat_local_ports", "Size of the FULLNAT local port range (fullnat_lport_max - fullnat_lport_min + 1)."),
		extUnknown: desc("ext_stat_total", "A counter of /proc/net/ip_vs_ext_stats this lvsctl has no name for.", "name"),
		ext:        map[string]*prometheus.Desc{},
		svc:        newStatDescs("service", "service"),
		dest:       newStatDescs("server", sd...),
	}
	for _, n := range extStatNames {
		c.ext[n] = desc(n+"_total", "/proc/net/ip_vs_ext_stats counter "+n+", summed over the CPUs.")
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.info, c.serviceInfo, c.destInfo, c.destWeight, c.destActive, c.destInactive,
		c.destPersist, c.laddrConns, c.laddrConflicts, c.lportRange, c.extUnknown} {
		ch <- d
	}
	for _, n := range extStatNames {
		ch <- c.ext[n]
	}
	c.svc.describe(ch)
	c.dest.describe(ch)
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	up := 1.0
	if err := c.collectTable(ch); err != nil {
		c.log.Printf("scrape: %v", err)
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	if err := c.collectExt(ch); err != nil {
		c.log.Printf("scrape: %v", err)
	}
}

func (c *collector) collectTable(ch chan<- prometheus.Metric) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := c.open()
	if err != nil {
		return err
	}
	defer b.Close()
	info, err := b.Info(ctx)
	if err != nil {
		return err
	}
	ji := toJSONInfo(info)
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, ji.Version, strings.Join(ji.Features, ","))
	svcs, err := listServices(ctx, b)
	if err != nil {
		return err
	}
	g := prometheus.GaugeValue
	for _, s := range svcs {
		ch <- prometheus.MustNewConstMetric(c.serviceInfo, g, 1, s.ID, s.Scheduler, strings.Join(s.Flags, ","))
		c.svc.collect(ch, s.Stats, s.ID)
		for _, d := range s.Destinations {
			server := joinHostPort(d.Address, d.Port)
			ch <- prometheus.MustNewConstMetric(c.destInfo, g, 1, s.ID, server, d.ForwardMethod)
			ch <- prometheus.MustNewConstMetric(c.destWeight, g, float64(d.Weight), s.ID, server)
			ch <- prometheus.MustNewConstMetric(c.destActive, g, float64(d.ActiveConnections), s.ID, server)
			ch <- prometheus.MustNewConstMetric(c.destInactive, g, float64(d.InactiveConnections), s.ID, server)
			ch <- prometheus.MustNewConstMetric(c.destPersist, g, float64(d.PersistConnections), s.ID, server)
			c.dest.collect(ch, d.Stats, s.ID, server)
		}
		for _, l := range s.LocalAddresses {
			ch <- prometheus.MustNewConstMetric(c.laddrConns, g, float64(l.Connections), s.ID, l.Address)
			ch <- prometheus.MustNewConstMetric(c.laddrConflicts, prometheus.CounterValue, float64(l.PortConflicts), s.ID, l.Address)
		}
	}
	return nil
}

// collectExt exports the module's counters and port range; the stock
// module has neither, which is not an error.
func (c *collector) collectExt(ch chan<- prometheus.Metric) error {
	lo, errLo := c.proc.Sysctl("fullnat_lport_min")
	hi, errHi := c.proc.Sysctl("fullnat_lport_max")
	if errLo == nil && errHi == nil && hi >= lo {
		ch <- prometheus.MustNewConstMetric(c.lportRange, prometheus.GaugeValue, float64(hi-lo+1))
	}
	st, err := c.proc.ExtStats()
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, s := range st {
		if d, ok := c.ext[s.Name]; ok {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(s.Value))
		} else {
			ch <- prometheus.MustNewConstMetric(c.extUnknown, prometheus.CounterValue, float64(s.Value), s.Name)
		}
	}
	return nil
}

// metricsHandler serves the collector's metrics (and nothing else: no Go
// runtime metrics, they are not the director's).
func (e *env) metricsHandler(logger *log.Logger) (http.Handler, error) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(newCollector(e.open, e.proc, logger)); err != nil {
		return nil, fmt.Errorf("register collector: %w", err)
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: logger, ErrorHandling: promhttp.ContinueOnError}), nil
}

func (e *env) metrics(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	path := c.String("path")
	if !strings.HasPrefix(path, "/") {
		return usagef("--path %q must start with /", path)
	}
	if _, _, err := net.SplitHostPort(c.String("listen")); err != nil {
		return usagef("--listen %q is not HOST:PORT (e.g. :9577, 127.0.0.1:9577)", c.String("listen"))
	}
	logger := log.New(e.stderr, "lvsctl metrics: ", log.LstdFlags)
	h, err := e.metricsHandler(logger)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(path, h)
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	logger.Printf("serving %s on %s", path, ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-c.Context.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
