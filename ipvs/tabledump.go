// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
)

// tableDumpAttempts is how often a listing is retried when the kernel
// reports that the table changed under it (NLM_F_DUMP_INTR).
const tableDumpAttempts = 5

// tableLocked lists every service with its destinations in one
// IPVS_CMD_GET_TABLE dump (FeatureTableDump), without their counters if
// noStats (FeatureTableNoStats), retrying when the kernel reports a change
// during the dump (client locked). After tableDumpAttempts interrupted
// dumps the error matches ErrDumpInterrupted.
func (c *Client) tableLocked(ctx context.Context, noStats bool) ([]ServiceDestinations, error) {
	req, err := tableRequest(noStats)
	if err != nil {
		return nil, wrapErr("list services with destinations", "", err)
	}
	for range tableDumpAttempts {
		var out []ServiceDestinations
		out, err = c.tableOnce(ctx, req)
		if !errors.Is(err, ErrDumpInterrupted) {
			if err != nil {
				return nil, wrapErr("list services with destinations", "", err)
			}
			return out, nil
		}
	}
	return nil, wrapErr("list services with destinations", "", fmt.Errorf("%d attempts: %w", tableDumpAttempts, err))
}

// tableRequest is the attributes of a GET_TABLE request: none, or
// IPVS_CMD_ATTR_TABLE_FLAGS with IPVS_TABLE_F_NO_STATS if noStats.
func tableRequest(noStats bool) ([]byte, error) {
	if !noStats {
		return nil, nil
	}
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(cmdAttrTableFlags, tableFlagNoStats)
	return ae.Encode()
}

// tableOnce is one IPVS_CMD_GET_TABLE dump of request attributes req:
// each service message is followed by its destinations and, with
// FeatureTableLaddrs, its local addresses, which carry their service's key.
func (c *Client) tableOnce(ctx context.Context, req []byte) ([]ServiceDestinations, error) {
	msgs, err := c.do(ctx, cmdGetTable, netlink.Dump, req)
	if err != nil {
		return nil, err
	}
	// Count first: the services, and each one's destinations, which all
	// share one array (each service's part capped, so that appending to one
	// never writes over the next), so that no slice grows while a table of
	// thousands is decoded.
	var nsvc, ndest int
	var perSvc []int
	for _, m := range msgs {
		switch m.cmd {
		case cmdNewService:
			nsvc++
			perSvc = append(perSvc, 0)
		case cmdNewDest:
			if nsvc > 0 {
				perSvc[nsvc-1]++
				ndest++
			}
		}
	}
	out := make([]ServiceDestinations, 0, nsvc)
	dests := make([]Destination, ndest)
	svc := 0
	// The key nest every destination and local address message carries,
	// as checked last: the kernel writes a service's key the same way in
	// each of its messages, so one decode and check per service does.
	var ownerKey []byte
	owner := func(b []byte, what string) (*ServiceDestinations, error) {
		if key, ok, err := nestOf(b, cmdAttrService); err == nil && ok && ownerKey != nil && bytes.Equal(key, ownerKey) {
			return &out[len(out)-1], nil
		}
		last, err := tableOwner(out, b, what)
		if err != nil {
			return nil, err
		}
		ownerKey, _, _ = nestOf(b, cmdAttrService)
		return last, nil
	}
	for _, m := range msgs {
		switch m.cmd {
		case cmdNewService:
			s, ok, err := decodeServiceMsg(m.data)
			if err != nil {
				return nil, err
			}
			n := perSvc[svc]
			svc++
			var ds []Destination
			if n > 0 {
				ds, dests = dests[:0:n], dests[n:]
			}
			if ok {
				out = append(out, ServiceDestinations{Service: s, Destinations: ds})
			}
			ownerKey = nil // the next message's key is checked against this service
		case cmdNewDest:
			last, err := owner(m.data, "destination")
			if err != nil {
				return nil, err
			}
			d, ok, err := decodeDestMsg(m.data, last.Service.family())
			if err != nil {
				return nil, fmt.Errorf("destination of %v: %w", last.Service, err)
			}
			if ok {
				last.Destinations = append(last.Destinations, d)
			}
		case cmdNewLaddr:
			last, err := owner(m.data, "local address")
			if err != nil {
				return nil, err
			}
			la, ok, err := decodeLaddrMsg(m.data, last.Service.family())
			if err != nil {
				return nil, fmt.Errorf("local address of %v: %w", last.Service, err)
			}
			if ok {
				last.LocalAddresses = append(last.LocalAddresses, la)
			}
		}
	}
	return out, nil
}

// tableOwner is the service that a destination or local address message
// (what) of the table dump belongs to: the one listed last, whose key the
// message carries.
func tableOwner(out []ServiceDestinations, b []byte, what string) (*ServiceDestinations, error) {
	key, ok, err := decodeServiceMsg(b)
	if err != nil {
		return nil, err
	}
	if !ok || len(out) == 0 || !key.SameKey(out[len(out)-1].Service) {
		return nil, fmt.Errorf("%s of %v out of its service's place in the table dump", what, key)
	}
	return &out[len(out)-1], nil
}
