// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"io"
	"log"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape serves the exporter of e once and parses the answer with
// Prometheus' text parser.
func scrape(t *testing.T, e *env) map[string]*dto.MetricFamily {
	t.Helper()
	h, err := e.metricsHandler(log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	return parseMetrics(t, rec.Body.String())
}

func parseMetrics(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("text format: %v\n%s", err, text)
	}
	return mfs
}

// metricValue finds the sample of family name whose labels include want.
func metricValue(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	f := newFake()
	e := &env{stderr: io.Discard, proc: fakeProc(t), open: func() (backend, error) { return f, nil }}
	mfs := scrape(t, e)
	svc := map[string]string{"service": "tcp:203.0.113.10:80"}
	rs := map[string]string{"service": "tcp:203.0.113.10:80", "server": "198.51.100.11:8080"}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
		typ    dto.MetricType
	}{
		{"lvs_up", nil, 1, dto.MetricType_GAUGE},
		{"lvs_info", map[string]string{"version": "1.2.1", "features": "fullnat,synproxy,est-timeout"}, 1, dto.MetricType_GAUGE},
		{"lvs_service_info", map[string]string{"service": "tcp:203.0.113.10:80", "scheduler": "rr", "flags": "hashed,synproxy"}, 1, dto.MetricType_GAUGE},
		{"lvs_service_connections_total", svc, 100, dto.MetricType_COUNTER},
		{"lvs_service_bytes_total", map[string]string{"service": "tcp:203.0.113.10:80", "direction": "in"}, 1 << 40, dto.MetricType_COUNTER},
		{"lvs_service_packets_total", map[string]string{"service": "tcp:203.0.113.10:80", "direction": "out"}, 900, dto.MetricType_COUNTER},
		{"lvs_service_connections_per_second", svc, 3, dto.MetricType_GAUGE},
		{"lvs_service_bytes_per_second", map[string]string{"service": "tcp:203.0.113.10:80", "direction": "in"}, 7, dto.MetricType_GAUGE},
		{"lvs_service_connections_total", map[string]string{"service": "udp:[2001:db8:10::10]:53"}, 2, dto.MetricType_COUNTER},
		{"lvs_server_connections_total", rs, 60, dto.MetricType_COUNTER},
		{"lvs_server_packets_total", map[string]string{"server": "198.51.100.11:8080", "direction": "in"}, 600, dto.MetricType_COUNTER},
		{"lvs_server_active_connections", rs, 5, dto.MetricType_GAUGE},
		{"lvs_server_inactive_connections", rs, 1, dto.MetricType_GAUGE},
		{"lvs_server_weight", rs, 3, dto.MetricType_GAUGE},
		{"lvs_server_info", map[string]string{"server": "[2001:db8:2::11]:53", "forward_method": "tunnel"}, 1, dto.MetricType_GAUGE},
		{"lvs_local_address_connections", map[string]string{"address": "198.51.100.101"}, 4, dto.MetricType_GAUGE},
		{"lvs_local_address_port_conflicts_total", map[string]string{"address": "198.51.100.101"}, 2, dto.MetricType_COUNTER},
		{"lvs_fullnat_local_ports", nil, 60536, dto.MetricType_GAUGE},
		{"lvs_fullnat_lport_exhausted_total", nil, 5, dto.MetricType_COUNTER},
		{"lvs_synproxy_ack_resent_total", nil, 11, dto.MetricType_COUNTER},
		{"lvs_defence_tcp_drop_total", nil, 7, dto.MetricType_COUNTER},
		{"lvs_ext_stat_total", map[string]string{"name": "future_counter"}, 2, dto.MetricType_COUNTER},
	} {
		got, ok := metricValue(t, mfs, c.name, c.labels)
		if !ok {
			t.Errorf("no %s%v", c.name, c.labels)
			continue
		}
		if got != c.want || mfs[c.name].GetType() != c.typ {
			t.Errorf("%s%v = %v (%v), want %v (%v)", c.name, c.labels, got, mfs[c.name].GetType(), c.want, c.typ)
		}
	}
	if _, ok := mfs["go_goroutines"]; ok {
		t.Error("the exporter serves Go runtime metrics")
	}
}

// Without IPVS the scrape still answers, with lvs_up 0; without our module
// the extension's metrics are absent.
func TestMetricsDown(t *testing.T) {
	e := &env{stderr: io.Discard, proc: procFS{root: t.TempDir()}, open: func() (backend, error) { return nil, os.ErrNotExist }}
	mfs := scrape(t, e)
	if v, ok := metricValue(t, mfs, "lvs_up", nil); !ok || v != 0 {
		t.Errorf("lvs_up = %v, %v; want 0", v, ok)
	}
	for name := range mfs {
		if name != "lvs_up" {
			t.Errorf("unexpected %s without IPVS", name)
		}
	}
}
