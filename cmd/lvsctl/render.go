// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fullnat/fullnat/ipvs"
)

// schemaVersion is the "version" of every JSON document lvsctl prints; the
// schema is schema/v1.json. A change that removes or retypes a field makes
// a new version; new optional fields do not.
const schemaVersion = 1

// The JSON documents (schema/v1.json). Field names are snake_case; absent
// optional fields are omitted, never null.

type jsonStats struct {
	Connections uint64 `json:"connections"`
	PacketsIn   uint64 `json:"packets_in"`
	PacketsOut  uint64 `json:"packets_out"`
	BytesIn     uint64 `json:"bytes_in"`
	BytesOut    uint64 `json:"bytes_out"`
	CPS         uint64 `json:"cps"`
	PPSIn       uint64 `json:"pps_in"`
	PPSOut      uint64 `json:"pps_out"`
	BPSIn       uint64 `json:"bps_in"`
	BPSOut      uint64 `json:"bps_out"`
}

type jsonService struct {
	ID                 string             `json:"id"`
	Family             string             `json:"family"`
	Protocol           string             `json:"protocol,omitempty"`
	Address            string             `json:"address,omitempty"`
	Port               *uint16            `json:"port,omitempty"`
	FWMark             uint32             `json:"fwmark,omitempty"`
	Scheduler          string             `json:"scheduler"`
	Flags              []string           `json:"flags"`
	PersistenceTimeout uint32             `json:"persistence_timeout"`
	Netmask            uint32             `json:"netmask"`
	PEName             string             `json:"pe_name,omitempty"`
	EstablishedTimeout uint32             `json:"established_timeout"`
	ProxyProtocol      string             `json:"proxy_protocol"`
	Stats              jsonStats          `json:"stats"`
	Destinations       []jsonDestination  `json:"destinations,omitempty"`
	LocalAddresses     []jsonLocalAddress `json:"local_addresses,omitempty"`
}

type jsonTunnel struct {
	Type  string   `json:"type"`
	Port  uint16   `json:"port"`
	Flags []string `json:"flags"`
}

type jsonDestination struct {
	Address             string      `json:"address"`
	Port                uint16      `json:"port"`
	ForwardMethod       string      `json:"forward_method"`
	Weight              int32       `json:"weight"`
	UpperThreshold      uint32      `json:"upper_threshold"`
	LowerThreshold      uint32      `json:"lower_threshold"`
	ActiveConnections   uint32      `json:"active_connections"`
	InactiveConnections uint32      `json:"inactive_connections"`
	PersistConnections  uint32      `json:"persistent_connections"`
	Tunnel              *jsonTunnel `json:"tunnel,omitempty"`
	Stats               jsonStats   `json:"stats"`
}

type jsonLocalAddress struct {
	Address       string `json:"address"`
	Connections   uint32 `json:"connections"`
	PortConflicts uint64 `json:"port_conflicts"`
}

type jsonConnection struct {
	Protocol    string `json:"protocol"`
	Client      string `json:"client"`
	Virtual     string `json:"virtual"`
	Local       string `json:"local,omitempty"`
	Destination string `json:"destination"`
	State       string `json:"state"`
	Expires     int64  `json:"expires"`
	PEName      string `json:"pe_name,omitempty"`
	PEData      string `json:"pe_data,omitempty"`
	// From the module's connection dump only (omitted from /proc):
	Forward  string   `json:"forward,omitempty"`
	Flags    []string `json:"flags,omitempty"`
	FWMark   uint32   `json:"fwmark,omitempty"`
	Timeout  int64    `json:"timeout,omitempty"`
	SynProxy string   `json:"synproxy,omitempty"`
}

type jsonInfo struct {
	Version       string   `json:"version"`
	ConnTableSize uint32   `json:"conn_table_size"`
	Features      []string `json:"features"`
}

// pickStats takes the 64-bit counters when the kernel sent them.
func pickStats(s32, s64 ipvs.Stats) jsonStats {
	s := s64
	if s64 == (ipvs.Stats{}) {
		s = s32
	}
	return jsonStats(s)
}

func toJSONService(s ipvs.Service) jsonService {
	j := jsonService{
		ID:                 serviceID(s),
		Family:             s.Family.String(),
		FWMark:             s.FWMark,
		Scheduler:          s.Scheduler,
		Flags:              flagList(s.Flags),
		PersistenceTimeout: s.Timeout,
		Netmask:            s.Netmask,
		PEName:             s.PEName,
		EstablishedTimeout: s.EstablishedTimeout,
		ProxyProtocol:      s.ProxyProtocol.String(),
		Stats:              pickStats(s.Stats, s.Stats64),
	}
	if s.FWMark == 0 {
		j.Protocol = strings.ToLower(s.Protocol.String())
		j.Address = s.Address.String()
		p := s.Port
		j.Port = &p
	}
	return j
}

func toJSONDestination(d ipvs.Destination) jsonDestination {
	j := jsonDestination{
		Address:             d.Address.String(),
		Port:                d.Port,
		ForwardMethod:       methodName(d.ForwardMethod),
		Weight:              d.Weight,
		UpperThreshold:      d.UpperThreshold,
		LowerThreshold:      d.LowerThreshold,
		ActiveConnections:   d.ActiveConns,
		InactiveConnections: d.InactiveConns,
		PersistConnections:  d.PersistConns,
		Stats:               pickStats(d.Stats, d.Stats64),
	}
	if d.ForwardMethod == ipvs.Tunnel {
		t := &jsonTunnel{Type: d.TunnelType.String(), Port: d.TunnelPort, Flags: []string{}}
		if d.TunnelFlags&ipvs.TunnelChecksum != 0 {
			t.Flags = append(t.Flags, "checksum")
		}
		if d.TunnelFlags&ipvs.TunnelRemoteChecksum != 0 {
			t.Flags = append(t.Flags, "remote-checksum")
		}
		j.Tunnel = t
	}
	return j
}

func toJSONLocalAddress(l ipvs.LocalAddress) jsonLocalAddress {
	return jsonLocalAddress{Address: l.Address.String(), Connections: l.Connections, PortConflicts: l.PortConflicts}
}

func toJSONConnection(c ipvs.Connection) jsonConnection {
	j := jsonConnection{
		Protocol:    c.Protocol,
		Client:      c.Client.String(),
		Virtual:     c.Virtual.String(),
		Destination: c.Destination.String(),
		State:       c.State,
		Expires:     int64(c.Expires / time.Second),
		PEName:      c.PEName,
		PEData:      c.PEData,
	}
	if c.Local.IsValid() {
		j.Local = c.Local.String()
	}
	if c.Family == ipvs.FamilyUnspec {
		return j // from /proc
	}
	j.Forward = c.Flags.ForwardMethod().String()
	for _, f := range connFlagNames {
		if c.Flags&f.flag != 0 {
			j.Flags = append(j.Flags, f.name)
		}
	}
	j.FWMark = c.FWMark
	j.Timeout = int64(c.Timeout / time.Second)
	if c.Flags&ipvs.ConnSynProxy != 0 {
		j.SynProxy = "waiting"
		if c.SynProxyAnswered {
			j.SynProxy = "answered"
		}
	}
	return j
}

// connFlagNames name the connection flags in JSON.
var connFlagNames = []struct {
	flag ipvs.ConnFlags
	name string
}{
	{ipvs.ConnTemplate, "template"},
	{ipvs.ConnSynced, "synced"},
	{ipvs.ConnInactive, "inactive"},
	{ipvs.ConnNoCPort, "no-cport"},
	{ipvs.ConnNoOutput, "no-output"},
	{ipvs.ConnOnePacket, "one-packet"},
	{ipvs.ConnSynProxy, "synproxy"},
}

func toJSONInfo(i ipvs.Info) jsonInfo {
	j := jsonInfo{Version: i.Version.String(), ConnTableSize: i.ConnTableSize, Features: []string{}}
	if i.Features != 0 {
		j.Features = strings.Split(i.Features.String(), "|")
	}
	return j
}

// writeDoc prints one JSON document: {"version":1,"kind":kind, ...fields}.
func writeDoc(w io.Writer, kind string, fields map[string]any) error {
	doc := map[string]any{"version": schemaVersion, "kind": kind}
	for k, v := range fields {
		doc[k] = v
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode %s: %w", kind, err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// Text output.

func newTab(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0) }

func addrPort(a netip.Addr, p uint16) string { return netip.AddrPortFrom(a, p).String() }

func writeServicesText(w io.Writer, svcs []jsonService) error {
	tw := newTab(w)
	fmt.Fprintln(tw, "SERVICE\tSCHED\tFLAGS\tSERVER\tMETHOD\tWEIGHT\tACTIVE\tINACTIVE")
	for _, s := range svcs {
		flags := strings.Join(s.Flags, ",")
		if flags == "" {
			flags = "-"
		}
		extra := ""
		if s.PersistenceTimeout != 0 {
			extra = fmt.Sprintf(" persistent %ds", s.PersistenceTimeout)
		}
		if s.EstablishedTimeout != 0 {
			extra += fmt.Sprintf(" est-timeout %ds", s.EstablishedTimeout)
		}
		if s.ProxyProtocol != ipvs.ProxyProtocolOff.String() {
			extra += " proxy-protocol " + s.ProxyProtocol
		}
		fmt.Fprintf(tw, "%s\t%s\t%s%s\t\t\t\t\t\n", s.ID, s.Scheduler, flags, extra)
		for _, d := range s.Destinations {
			fmt.Fprintf(tw, "\t\t\t%s\t%s\t%d\t%d\t%d\n", joinHostPort(d.Address, d.Port), d.ForwardMethod, d.Weight,
				d.ActiveConnections, d.InactiveConnections)
		}
		for _, l := range s.LocalAddresses {
			fmt.Fprintf(tw, "\t\t\tladdr %s\t\tconns %d\tconflicts %d\t\n", l.Address, l.Connections, l.PortConflicts)
		}
	}
	return tw.Flush()
}

func joinHostPort(a string, p uint16) string {
	if ad, err := netip.ParseAddr(a); err == nil {
		return addrPort(ad, p)
	}
	return fmt.Sprintf("%s:%d", a, p)
}

func writeDestinationsText(w io.Writer, ds []jsonDestination) error {
	tw := newTab(w)
	fmt.Fprintln(tw, "SERVER\tMETHOD\tWEIGHT\tUPPER\tLOWER\tACTIVE\tINACTIVE\tPERSIST")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", joinHostPort(d.Address, d.Port), d.ForwardMethod, d.Weight,
			d.UpperThreshold, d.LowerThreshold, d.ActiveConnections, d.InactiveConnections, d.PersistConnections)
	}
	return tw.Flush()
}

func writeLocalAddressesText(w io.Writer, ls []jsonLocalAddress) error {
	tw := newTab(w)
	fmt.Fprintln(tw, "ADDRESS\tCONNECTIONS\tPORT_CONFLICTS")
	for _, l := range ls {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", l.Address, l.Connections, l.PortConflicts)
	}
	return tw.Flush()
}

func writeConnectionText(tw io.Writer, c jsonConnection) {
	local := c.Local
	if local == "" {
		local = "-"
	}
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", c.Protocol, c.Client, c.Virtual, local, c.Destination, c.State, c.Expires)
}

func writeStatsText(w io.Writer, svcs []jsonService, ext []extStat) error {
	tw := newTab(w)
	fmt.Fprintln(tw, "SERVICE/SERVER\tCONNS\tPKTS_IN\tPKTS_OUT\tBYTES_IN\tBYTES_OUT\tCPS\tPPS_IN\tPPS_OUT\tBPS_IN\tBPS_OUT")
	row := func(name string, s jsonStats) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", name, s.Connections, s.PacketsIn, s.PacketsOut,
			s.BytesIn, s.BytesOut, s.CPS, s.PPSIn, s.PPSOut, s.BPSIn, s.BPSOut)
	}
	for _, s := range svcs {
		row(s.ID, s.Stats)
		for _, d := range s.Destinations {
			row("  -> "+joinHostPort(d.Address, d.Port), d.Stats)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(ext) > 0 {
		fmt.Fprintln(w)
		tw = newTab(w)
		for _, e := range ext {
			fmt.Fprintf(tw, "%s\t%d\n", e.Name, e.Value)
		}
		return tw.Flush()
	}
	return nil
}

// schemaV1 is schema/v1.json, printed by "lvsctl schema".
//
//go:embed schema/v1.json
var schemaV1 string
