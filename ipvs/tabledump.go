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
//
// The dump is decoded while it is read: a goroutine reads the datagrams,
// and each read is where the kernel builds the next part of the dump, so
// decoding one part overlaps the kernel's work on the next, and no list
// of the whole dump's messages is kept. The dump is always read to its
// end, as exchange does, so that an interrupted dump is reported (and
// retried) even when its messages did not decode.
func (c *Client) tableOnce(ctx context.Context, req []byte) ([]ServiceDestinations, error) {
	batches := make(chan []genlMsg, 4)
	var recvErr error
	go func() {
		defer close(batches)
		batch := make([]genlMsg, 0, tableBatch)
		recvErr = c.call(ctx, func(nc *netlink.Conn) error {
			return exchangeFunc(nc, c.family, netlink.Dump, genlHeader(cmdGetTable, req), func(m genlMsg) bool {
				if batch = append(batch, m); len(batch) == cap(batch) {
					batches <- batch
					batch = make([]genlMsg, 0, tableBatch)
				}
				return true
			})
		})
		batches <- batch
	}()
	var d tableDecoder
	var decErr error
	for batch := range batches {
		for _, m := range batch {
			if decErr == nil {
				decErr = d.add(m)
			}
		}
	}
	if recvErr != nil {
		return nil, recvErr
	}
	if decErr != nil {
		return nil, decErr
	}
	return d.finish(), nil
}

// tableBatch is how many messages of a table dump the reading goroutine
// hands over at a time (a datagram of 32 KiB holds about 250).
const tableBatch = 256

// tableDecoder decodes the messages of a table dump in their order.
type tableDecoder struct {
	out   []ServiceDestinations
	dests destArena
	// open: out's last service is still taking destinations.
	open bool
	// ownerKey is the key nest that destination and local address messages
	// carry, as checked last: the kernel writes a service's key the same
	// way in each of its messages, so one decode and check per service
	// does.
	ownerKey []byte
}

func (d *tableDecoder) add(m genlMsg) error {
	switch m.cmd {
	case cmdNewService:
		s, ok, err := decodeServiceMsg(m.data)
		if err != nil {
			return err
		}
		d.close()
		if ok {
			d.out = append(d.out, ServiceDestinations{Service: s})
			d.open = true
		}
		d.ownerKey = nil // the next message's key is checked against this service
	case cmdNewDest:
		last, err := d.owner(m.data, "destination")
		if err != nil {
			return err
		}
		dst, ok, err := decodeDestMsg(m.data, last.Service.family())
		if err != nil {
			return fmt.Errorf("destination of %v: %w", last.Service, err)
		}
		if ok {
			d.dests.add(&dst)
		}
	case cmdNewLaddr:
		last, err := d.owner(m.data, "local address")
		if err != nil {
			return err
		}
		la, ok, err := decodeLaddrMsg(m.data, last.Service.family())
		if err != nil {
			return fmt.Errorf("local address of %v: %w", last.Service, err)
		}
		if ok {
			last.LocalAddresses = append(last.LocalAddresses, la)
		}
	}
	return nil
}

// owner is the service of a destination or local address message b
// (what): the open one, whose key b must carry.
func (d *tableDecoder) owner(b []byte, what string) (*ServiceDestinations, error) {
	key, ok, err := nestOf(b, cmdAttrService)
	if err == nil && ok && d.ownerKey != nil && bytes.Equal(key, d.ownerKey) {
		return &d.out[len(d.out)-1], nil // ownerKey is nil unless a service is open
	}
	s, ok, err := decodeServiceMsg(b)
	if err != nil {
		return nil, err
	}
	if !ok || !d.open || !s.SameKey(d.out[len(d.out)-1].Service) {
		return nil, fmt.Errorf("%s of %v out of its service's place in the table dump", what, s)
	}
	d.ownerKey = key
	return &d.out[len(d.out)-1], nil
}

// close gives the open service its destinations.
func (d *tableDecoder) close() {
	if d.open {
		d.out[len(d.out)-1].Destinations = d.dests.cut()
		d.open = false
	}
}

// finish is the listing: empty, not nil, for an empty table.
func (d *tableDecoder) finish() []ServiceDestinations {
	d.close()
	if d.out == nil {
		return []ServiceDestinations{}
	}
	return d.out
}

// destArena holds the destinations of a table dump, each service's in
// one run, in chunks of destChunk: no slice is grown by doubling and
// copied, and the runs waste no more than the tail of each chunk.
type destArena struct {
	chunk []Destination // up to its length, in use
	start int           // where the open run begins
}

const destChunk = 1024

func (a *destArena) add(d *Destination) {
	if len(a.chunk) == cap(a.chunk) {
		// a new chunk, with the open run moved to its start
		run := a.chunk[a.start:]
		c := make([]Destination, len(run), max(destChunk, 2*len(run)))
		copy(c, run)
		a.chunk, a.start = c, 0
	}
	a.chunk = append(a.chunk, *d)
}

// cut ends the open run and returns it (nil when empty), capped so that
// appending to it never writes over the next run.
func (a *destArena) cut() []Destination {
	n := len(a.chunk)
	if n == a.start {
		return nil
	}
	run := a.chunk[a.start:n:n]
	a.start = n
	return run
}
