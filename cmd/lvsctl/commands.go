// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/fullnat/fullnat/ipvs"
	"github.com/urfave/cli/v2"
)

func serviceFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "scheduler", Aliases: []string{"s"}, Value: "wlc", Usage: "scheduler: " + strings.Join(schedulers, ", ")},
		&cli.StringSliceFlag{Name: "flag", Aliases: []string{"f"}, Usage: "service flag, repeatable or comma-separated: " +
			strings.Join(settableFlags, ", ") + " (edit: the given list replaces the flags; --flag '' clears them)"},
		&cli.Int64Flag{Name: "persistent", Aliases: []string{"p"}, Usage: "persistence timeout in seconds (0: not persistent)"},
		&cli.Int64Flag{Name: "netmask", Usage: "persistence granularity: IPv4 prefix length 1-32 or IPv6 1-128 (default: full)"},
		&cli.StringFlag{Name: "pe", Usage: "persistence engine (sip)"},
		&cli.Int64Flag{Name: "est-timeout", Usage: "ESTABLISHED timeout in seconds for this service (0: the global one; extension)"},
		&cli.StringFlag{Name: "proxy-protocol", Value: "off", Usage: "PROXY protocol header with the client's address to the real servers: " +
			"off, v1 or v2 (a TCP or fwmark service with fullnat real servers; extension)"},
	}
}

func serverFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "method", Aliases: []string{"m"}, Value: "nat", Usage: "forwarding method: nat, dr, tunnel, local, fullnat"},
		&cli.Int64Flag{Name: "weight", Aliases: []string{"w"}, Value: 1, Usage: "weight, 0 quiesces the server"},
		&cli.Int64Flag{Name: "upper-threshold", Aliases: []string{"x"}, Usage: "most connections (0: no limit)"},
		&cli.Int64Flag{Name: "lower-threshold", Aliases: []string{"y"}, Usage: "connections below which an overloaded server takes new ones again"},
		&cli.StringFlag{Name: "tunnel-type", Value: "ipip", Usage: "with --method tunnel: ipip, gue or gre"},
		&cli.Int64Flag{Name: "tunnel-port", Usage: "with --tunnel-type gue: the UDP port"},
	}
}

// inRange checks an integer flag against [lo, hi].
func inRange(c *cli.Context, name string, lo, hi int64) (int64, error) {
	v := c.Int64(name)
	if v < lo || v > hi {
		return 0, usagef("--%s %d is out of range %d..%d", name, v, lo, hi)
	}
	return v, nil
}

// applyServiceFlags sets the fields of s whose flags were given (all of
// them when all is true, as for add).
func applyServiceFlags(c *cli.Context, s *ipvs.Service, all bool) error {
	set := func(n string) bool { return all || c.IsSet(n) }
	if set("scheduler") {
		if err := checkScheduler(c.String("scheduler")); err != nil {
			return err
		}
		s.Scheduler = c.String("scheduler")
	}
	if set("flag") {
		f, err := parseServiceFlags(c.StringSlice("flag"))
		if err != nil {
			return err
		}
		s.Flags = s.Flags&(ipvs.FlagPersistent) | f
	}
	if set("persistent") {
		v, err := inRange(c, "persistent", 0, math.MaxUint32)
		if err != nil {
			return err
		}
		s.Timeout = uint32(v)
		s.Flags &^= ipvs.FlagPersistent
		if v > 0 {
			s.Flags |= ipvs.FlagPersistent
		}
	}
	if set("netmask") {
		hi := int64(32)
		if s.Family == ipvs.INET6 {
			hi = 128
		}
		v := c.Int64("netmask")
		switch {
		case v == 0:
			s.Netmask = 0
		case v < 1 || v > hi:
			return usagef("--netmask %d is out of range 1..%d for an %s service", v, hi, s.Family)
		case s.Family == ipvs.INET6:
			s.Netmask = uint32(v)
		default:
			s.Netmask = ^uint32(0) << (32 - v)
		}
	}
	if set("pe") {
		s.PEName = c.String("pe")
		if s.PEName != "" && s.PEName != "sip" {
			return usagef("unknown persistence engine %q (want sip)", s.PEName)
		}
	}
	if set("est-timeout") {
		v, err := inRange(c, "est-timeout", 0, math.MaxInt32/1000)
		if err != nil {
			return err
		}
		s.EstablishedTimeout = uint32(v)
	}
	if set("proxy-protocol") {
		p, err := parseProxyProtocol(c.String("proxy-protocol"))
		if err != nil {
			return err
		}
		s.ProxyProtocol = p
	}
	s.Flags &^= ipvs.FlagHashed
	return nil
}

func (e *env) serviceList(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	return e.withBackend(func(b backend) error {
		svcs, err := listServices(c.Context, b)
		if err != nil {
			return err
		}
		if c.Bool("json") {
			return writeDoc(e.stdout, "services", map[string]any{"services": svcs})
		}
		return writeServicesText(e.stdout, svcs)
	})
}

// listServices reads the whole table, with local addresses when the
// module has them.
func listServices(ctx context.Context, b backend) ([]jsonService, error) {
	info, err := b.Info(ctx)
	if err != nil {
		return nil, err
	}
	table, err := b.Table(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]jsonService, 0, len(table))
	for _, sd := range table {
		js := toJSONService(sd.Service)
		for _, d := range sd.Destinations {
			js.Destinations = append(js.Destinations, toJSONDestination(d))
		}
		if info.Features.Has(ipvs.FeatureFullNAT) {
			las, err := b.LocalAddresses(ctx, sd.Service)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			for _, l := range las {
				js.LocalAddresses = append(js.LocalAddresses, toJSONLocalAddress(l))
			}
		}
		out = append(out, js)
	}
	return out, nil
}

func (e *env) serviceShow(c *cli.Context) error {
	if err := wantArgs(c, false, "SERVICE"); err != nil {
		return err
	}
	key, err := parseService(c.Args().First())
	if err != nil {
		return err
	}
	return e.withBackend(func(b backend) error {
		s, err := b.Service(c.Context, key)
		if err != nil {
			return err
		}
		ds, err := b.Destinations(c.Context, key)
		if err != nil {
			return err
		}
		js := toJSONService(s)
		for _, d := range ds {
			js.Destinations = append(js.Destinations, toJSONDestination(d))
		}
		if info, err := b.Info(c.Context); err == nil && info.Features.Has(ipvs.FeatureFullNAT) {
			las, err := b.LocalAddresses(c.Context, key)
			if err != nil {
				return err
			}
			for _, l := range las {
				js.LocalAddresses = append(js.LocalAddresses, toJSONLocalAddress(l))
			}
		}
		if c.Bool("json") {
			return writeDoc(e.stdout, "services", map[string]any{"services": []jsonService{js}})
		}
		return writeServicesText(e.stdout, []jsonService{js})
	})
}

func (e *env) serviceAdd(c *cli.Context) error {
	if err := wantArgs(c, false, "SERVICE"); err != nil {
		return err
	}
	s, err := parseService(c.Args().First())
	if err != nil {
		return err
	}
	if err := applyServiceFlags(c, &s, true); err != nil {
		return err
	}
	return e.withBackend(func(b backend) error { return b.CreateService(c.Context, s) })
}

func (e *env) serviceEdit(c *cli.Context) error {
	if err := wantArgs(c, false, "SERVICE"); err != nil {
		return err
	}
	key, err := parseService(c.Args().First())
	if err != nil {
		return err
	}
	if c.NumFlags() == 0 {
		return usagef("%s: nothing to change (give --scheduler, --flag, --persistent, --netmask, --pe, --est-timeout or --proxy-protocol)", cmdName(c))
	}
	return e.withBackend(func(b backend) error {
		s, err := b.Service(c.Context, key)
		if err != nil {
			return err
		}
		s.Stats, s.Stats64 = ipvs.Stats{}, ipvs.Stats{}
		if err := applyServiceFlags(c, &s, false); err != nil {
			return err
		}
		return b.UpdateService(c.Context, s)
	})
}

func (e *env) serviceDelete(c *cli.Context) error {
	if err := wantArgs(c, false, "SERVICE"); err != nil {
		return err
	}
	s, err := parseService(c.Args().First())
	if err != nil {
		return err
	}
	return e.withBackend(func(b backend) error { return b.DeleteService(c.Context, s) })
}

// svcAndServer parses the SERVICE ADDR:PORT arguments.
func svcAndServer(c *cli.Context) (ipvs.Service, ipvs.Destination, error) {
	if err := wantArgs(c, false, "SERVICE", "ADDR:PORT"); err != nil {
		return ipvs.Service{}, ipvs.Destination{}, err
	}
	s, err := parseService(c.Args().Get(0))
	if err != nil {
		return s, ipvs.Destination{}, err
	}
	ap, err := parseAddrPort(c.Args().Get(1), s.FWMark == 0)
	if err != nil {
		return s, ipvs.Destination{}, usagef("real server: %v", err)
	}
	return s, ipvs.Destination{Address: ap.Addr(), Port: ap.Port()}, nil
}

func applyServerFlags(c *cli.Context, d *ipvs.Destination, all bool) error {
	set := func(n string) bool { return all || c.IsSet(n) }
	if set("method") {
		m, err := parseForwardMethod(c.String("method"))
		if err != nil {
			return err
		}
		d.ForwardMethod = m
	}
	if set("weight") {
		v, err := inRange(c, "weight", 0, math.MaxInt32)
		if err != nil {
			return err
		}
		d.Weight = int32(v)
	}
	if set("upper-threshold") {
		v, err := inRange(c, "upper-threshold", 0, math.MaxUint32)
		if err != nil {
			return err
		}
		d.UpperThreshold = uint32(v)
	}
	if set("lower-threshold") {
		v, err := inRange(c, "lower-threshold", 0, math.MaxUint32)
		if err != nil {
			return err
		}
		d.LowerThreshold = uint32(v)
	}
	if set("tunnel-type") {
		switch c.String("tunnel-type") {
		case "ipip":
			d.TunnelType = ipvs.TunnelIPIP
		case "gue":
			d.TunnelType = ipvs.TunnelGUE
		case "gre":
			d.TunnelType = ipvs.TunnelGRE
		default:
			return usagef("unknown tunnel type %q (want ipip, gue or gre)", c.String("tunnel-type"))
		}
	}
	if set("tunnel-port") {
		v, err := inRange(c, "tunnel-port", 0, math.MaxUint16)
		if err != nil {
			return err
		}
		d.TunnelPort = uint16(v)
	}
	if d.TunnelType == ipvs.TunnelGUE && d.ForwardMethod == ipvs.Tunnel && d.TunnelPort == 0 {
		return usagef("--tunnel-type gue needs --tunnel-port")
	}
	return nil
}

func (e *env) serverList(c *cli.Context) error {
	if err := wantArgs(c, false, "SERVICE"); err != nil {
		return err
	}
	s, err := parseService(c.Args().First())
	if err != nil {
		return err
	}
	return e.withBackend(func(b backend) error {
		if _, err := b.Service(c.Context, s); err != nil {
			return err
		}
		ds, err := b.Destinations(c.Context, s)
		if err != nil {
			return err
		}
		out := make([]jsonDestination, 0, len(ds))
		for _, d := range ds {
			out = append(out, toJSONDestination(d))
		}
		if c.Bool("json") {
			return writeDoc(e.stdout, "destinations", map[string]any{"service": serviceID(s), "destinations": out})
		}
		return writeDestinationsText(e.stdout, out)
	})
}

func (e *env) serverAdd(c *cli.Context) error {
	s, d, err := svcAndServer(c)
	if err != nil {
		return err
	}
	if err := applyServerFlags(c, &d, true); err != nil {
		return err
	}
	return e.withBackend(func(b backend) error { return b.CreateDestination(c.Context, s, d) })
}

func (e *env) serverEdit(c *cli.Context) error {
	s, key, err := svcAndServer(c)
	if err != nil {
		return err
	}
	if c.NumFlags() == 0 {
		return usagef("%s: nothing to change (give --method, --weight, --upper-threshold, --lower-threshold or --tunnel-*)", cmdName(c))
	}
	return e.withBackend(func(b backend) error {
		if _, err := b.Service(c.Context, s); err != nil {
			return err
		}
		ds, err := b.Destinations(c.Context, s)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if d.Address == key.Address && d.Port == key.Port {
				d.Stats, d.Stats64 = ipvs.Stats{}, ipvs.Stats{}
				if err := applyServerFlags(c, &d, false); err != nil {
					return err
				}
				return b.UpdateDestination(c.Context, s, d)
			}
		}
		return fmt.Errorf("real server %s of %s: %w", key, serviceID(s), os.ErrNotExist)
	})
}

func (e *env) serverDelete(c *cli.Context) error {
	s, d, err := svcAndServer(c)
	if err != nil {
		return err
	}
	return e.withBackend(func(b backend) error { return b.DeleteDestination(c.Context, s, d) })
}

func (e *env) laddrList(c *cli.Context) error {
	if err := wantArgs(c, false, "SERVICE"); err != nil {
		return err
	}
	s, err := parseService(c.Args().First())
	if err != nil {
		return err
	}
	return e.withBackend(func(b backend) error {
		las, err := b.LocalAddresses(c.Context, s)
		if err != nil {
			return err
		}
		out := make([]jsonLocalAddress, 0, len(las))
		for _, l := range las {
			out = append(out, toJSONLocalAddress(l))
		}
		if c.Bool("json") {
			return writeDoc(e.stdout, "local_addresses", map[string]any{"service": serviceID(s), "local_addresses": out})
		}
		return writeLocalAddressesText(e.stdout, out)
	})
}

// laddrArgs parses SERVICE ADDR...
func laddrArgs(c *cli.Context) (ipvs.Service, []ipvs.LocalAddress, error) {
	if err := wantArgs(c, true, "SERVICE", "ADDR"); err != nil {
		return ipvs.Service{}, nil, err
	}
	s, err := parseService(c.Args().First())
	if err != nil {
		return s, nil, err
	}
	var las []ipvs.LocalAddress
	for _, a := range c.Args().Tail() {
		addr, err := parseAddr(a)
		if err != nil {
			return s, nil, usagef("local address: %v", err)
		}
		las = append(las, ipvs.LocalAddress{Address: addr})
	}
	return s, las, nil
}

func (e *env) laddrAdd(c *cli.Context) error {
	s, las, err := laddrArgs(c)
	if err != nil {
		return err
	}
	return e.withBackend(func(b backend) error {
		for _, la := range las {
			if err := b.CreateLocalAddress(c.Context, s, la); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *env) laddrDelete(c *cli.Context) error {
	s, las, err := laddrArgs(c)
	if err != nil {
		return err
	}
	return e.withBackend(func(b backend) error {
		for _, la := range las {
			if err := b.DeleteLocalAddress(c.Context, s, la); err != nil {
				return err
			}
		}
		return nil
	})
}

// connList streams the table: a million connections never sit in memory,
// in JSON either (the document is written as the entries come).
func (e *env) connList(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	var filter *ipvs.Service
	if c.IsSet("service") {
		s, err := parseService(c.String("service"))
		if err != nil {
			return err
		}
		filter = &s
	}
	fullnat := c.Bool("fullnat")
	asJSON := c.Bool("json")
	var tw io.Writer = e.stdout
	var flush func() error
	if asJSON {
		if _, err := fmt.Fprintf(e.stdout, `{"version":%d,"kind":"connections","connections":[`, schemaVersion); err != nil {
			return err
		}
	} else {
		t := newTab(e.stdout)
		fmt.Fprintln(t, "PRO\tCLIENT\tVIRTUAL\tLOCAL\tSERVER\tSTATE\tEXPIRES")
		tw, flush = t, t.Flush
	}
	n := 0
	return e.withBackend(func(b backend) error {
		for conn, err := range b.Connections(c.Context, filter) {
			if err != nil {
				return err
			}
			if fullnat && !conn.Local.IsValid() {
				continue
			}
			j := toJSONConnection(conn)
			if asJSON {
				line, err := json.Marshal(j)
				if err != nil {
					return err
				}
				sep := ","
				if n == 0 {
					sep = ""
				}
				if _, err := fmt.Fprintf(e.stdout, "%s%s", sep, line); err != nil {
					return err
				}
			} else {
				writeConnectionText(tw, j)
			}
			n++
		}
		if asJSON {
			_, err := io.WriteString(e.stdout, "]}\n")
			return err
		}
		return flush()
	})
}

func (e *env) stats(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	if c.Duration("interval") <= 0 {
		return usagef("--interval %v must be positive", c.Duration("interval"))
	}
	if c.Int("count") < 0 {
		return usagef("--count %d must not be negative", c.Int("count"))
	}
	return e.withBackend(func(b backend) error {
		once := func() error {
			svcs, err := listServices(c.Context, b)
			if err != nil {
				return err
			}
			ext, err := e.proc.ExtStats()
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if c.Bool("json") {
				m := map[string]uint64{}
				for _, x := range ext {
					m[x.Name] = x.Value
				}
				return writeDoc(e.stdout, "stats", map[string]any{
					"time": time.Now().UTC().Format(time.RFC3339Nano), "services": svcs, "ext_stats": m})
			}
			return writeStatsText(e.stdout, svcs, ext)
		}
		if !c.Bool("watch") {
			return once()
		}
		t := time.NewTicker(c.Duration("interval"))
		defer t.Stop()
		for i := 1; ; i++ {
			if !c.Bool("json") {
				fmt.Fprintf(e.stdout, "%s\n", time.Now().Format(time.RFC3339))
			}
			if err := once(); err != nil {
				return err
			}
			if n := c.Int("count"); n > 0 && i >= n {
				return nil
			}
			if !c.Bool("json") {
				fmt.Fprintln(e.stdout)
			}
			select {
			case <-c.Context.Done():
				return nil
			case <-t.C:
			}
		}
	})
}

func (e *env) sysctlList(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	ss, err := e.proc.Sysctls()
	if err != nil {
		return err
	}
	if c.Bool("json") {
		m := map[string]int64{}
		for _, s := range ss {
			m[s.Name] = s.Value
		}
		return writeDoc(e.stdout, "sysctls", map[string]any{"sysctls": m})
	}
	tw := newTab(e.stdout)
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%d\n", s.Name, s.Value)
	}
	return tw.Flush()
}

func (e *env) sysctlGet(c *cli.Context) error {
	if err := wantArgs(c, false, "NAME"); err != nil {
		return err
	}
	v, err := e.proc.Sysctl(c.Args().First())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, v)
	return err
}

func (e *env) sysctlSet(c *cli.Context) error {
	if err := wantArgs(c, false, "NAME", "VALUE"); err != nil {
		return err
	}
	return e.proc.SetSysctl(c.Args().Get(0), c.Args().Get(1))
}

func (e *env) info(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	return e.withBackend(func(b backend) error {
		i, err := b.Info(c.Context)
		if err != nil {
			return err
		}
		j := toJSONInfo(i)
		if c.Bool("json") {
			return writeDoc(e.stdout, "info", map[string]any{"info": j})
		}
		_, err = fmt.Fprintf(e.stdout, "IPVS %s, connection table %d buckets, features %s\n", j.Version, j.ConnTableSize,
			strings.Join(append([]string{}, j.Features...), ","))
		return err
	})
}

// errUnhealthy is health's failure: a service without a real server that
// takes new connections.
var errUnhealthy = errors.New("unhealthy")

// health is the check a cluster's announcement follows (keepalived's
// vrrp_script, kmod/CLUSTER.md): healthy when there is at least one service
// and every service given (all of them when none is) has a real server of
// weight above 0. A director that lost its table must not attract traffic.
func (e *env) health(c *cli.Context) error {
	var keys []ipvs.Service
	for _, a := range c.Args().Slice() {
		k, err := parseService(a)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	return e.withBackend(func(b backend) error {
		table, err := b.Table(c.Context)
		if err != nil {
			return err
		}
		live := map[string]int{}
		have := map[string]bool{}
		var order []string
		for _, sd := range table {
			id := serviceID(sd.Service)
			order = append(order, id)
			have[id] = true
			for _, d := range sd.Destinations {
				if d.Weight > 0 {
					live[id]++
				}
			}
		}
		if len(keys) > 0 {
			order = order[:0]
			for _, k := range keys {
				id := serviceID(k)
				if !have[id] {
					return fmt.Errorf("%w: %s: no such service", errUnhealthy, id)
				}
				order = append(order, id)
			}
		}
		if len(order) == 0 {
			return fmt.Errorf("%w: no virtual service", errUnhealthy)
		}
		var bad []string
		servers := 0
		for _, id := range order {
			if live[id] == 0 {
				bad = append(bad, id)
			}
			servers += live[id]
		}
		if len(bad) > 0 {
			return fmt.Errorf("%w: no real server with weight above 0 in %s", errUnhealthy, strings.Join(bad, ", "))
		}
		_, err = fmt.Fprintf(e.stdout, "healthy: %d services, %d real servers with weight above 0\n", len(order), servers)
		return err
	})
}
