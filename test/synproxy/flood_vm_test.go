// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package synproxy

import (
	"net/netip"
	"time"

	"github.com/fullnat/fullnat/internal/flood"
	"github.com/fullnat/fullnat/internal/vmnet"
)

// TCP flags of flood packets.
const (
	flagFIN = flood.FIN
	flagSYN = flood.SYN
	flagACK = flood.ACK
)

// floodFrom sends count packets with TCP flags from namespace ns to vip (see package flood), with
// workers senders, for at most limit. It returns how many were sent and how long that took.
func floodFrom(ns string, vip netip.AddrPort, count int, flags byte, workers int, limit time.Duration) (int, time.Duration, error) {
	return floodOn(ns, flood.Config{Target: vip, Count: count, Flags: flags, Workers: workers, Limit: limit})
}

// floodOn sends the flood c from namespace ns.
func floodOn(ns string, c flood.Config) (int, time.Duration, error) {
	var r flood.Result
	err := vmnet.InNetns(ns, func() (err error) {
		r, err = flood.Run(c)
		return err
	})
	return r.Sent, r.Elapsed, err
}
