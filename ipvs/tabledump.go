// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"context"
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
)

// tableDumpAttempts is how often a listing is retried when the kernel
// reports that the table changed under it (NLM_F_DUMP_INTR).
const tableDumpAttempts = 5

// tableLocked lists every service with its destinations in one
// IPVS_CMD_GET_TABLE dump (FeatureTableDump), retrying when the kernel
// reports a change during the dump (client locked). After
// tableDumpAttempts interrupted dumps the error matches ErrDumpInterrupted.
func (c *Client) tableLocked(ctx context.Context) ([]ServiceDestinations, error) {
	var err error
	for range tableDumpAttempts {
		var out []ServiceDestinations
		out, err = c.tableOnce(ctx)
		if !errors.Is(err, ErrDumpInterrupted) {
			if err != nil {
				return nil, wrapErr("list services with destinations", "", err)
			}
			return out, nil
		}
	}
	return nil, wrapErr("list services with destinations", "", fmt.Errorf("%d attempts: %w", tableDumpAttempts, err))
}

// tableOnce is one IPVS_CMD_GET_TABLE dump: each service message is
// followed by its destinations, which carry their service's key.
func (c *Client) tableOnce(ctx context.Context) ([]ServiceDestinations, error) {
	msgs, err := c.do(ctx, cmdGetTable, netlink.Dump, nil)
	if err != nil {
		return nil, err
	}
	var out []ServiceDestinations
	for _, m := range msgs {
		switch m.cmd {
		case cmdNewService:
			s, ok, err := decodeServiceMsg(m.data)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, ServiceDestinations{Service: s})
			}
		case cmdNewDest:
			key, ok, err := decodeServiceMsg(m.data)
			if err != nil {
				return nil, err
			}
			if !ok || len(out) == 0 || !key.SameKey(out[len(out)-1].Service) {
				return nil, fmt.Errorf("destination of %v out of its service's place in the table dump", key)
			}
			last := &out[len(out)-1]
			d, ok, err := decodeDestMsg(m.data, last.Service.family())
			if err != nil {
				return nil, fmt.Errorf("destination of %v: %w", last.Service, err)
			}
			if ok {
				last.Destinations = append(last.Destinations, d)
			}
		}
	}
	if out == nil {
		out = []ServiceDestinations{}
	}
	return out, nil
}
