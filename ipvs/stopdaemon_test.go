// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// daemonKernel is a fake IPVS with sync daemons and services. A stop
// that finds the daemon's thread not yet run (unran) stops it and fails
// with EINTR, as upstream's stop_sync_thread does, which the fake (like
// netlink_rcv_skb) leaves unanswered.
type daemonKernel struct {
	running  map[uint32]bool
	unran    bool
	services int
	errno    unix.Errno // for every stop, when set
}

func (k *daemonKernel) handle(t testing.TB) func(req genlReq) ([]reply, unix.Errno) {
	return func(req genlReq) ([]reply, unix.Errno) {
		switch req.cmd {
		case cmdGetInfo:
			return []reply{{cmdSetInfo, attrs(t, func(ae *netlink.AttributeEncoder) {
				ae.Uint32(infoAttrVersion, 0x010201)
				ae.Uint32(infoAttrConnTabSize, 4096)
			})}}, 0
		case cmdGetDaemon:
			var reps []reply
			for st := range k.running {
				reps = append(reps, reply{cmdNewDaemon, attrs(t, func(ae *netlink.AttributeEncoder) {
					kernelNest(ae, cmdAttrDaemon, func(ae *netlink.AttributeEncoder) {
						ae.Uint32(daemonAttrState, st)
						ae.String(daemonAttrMcastIfn, "sync0")
						ae.Uint32(daemonAttrSyncID, 5)
					})
				})})
			}
			return reps, 0
		case cmdNewService:
			k.services++
			return nil, 0
		case cmdNewDaemon, cmdDelDaemon:
			ad, err := netlink.NewAttributeDecoder(req.attrs)
			if err != nil || !ad.Next() || ad.Type() != cmdAttrDaemon {
				t.Errorf("daemon request without a daemon: % x", req.attrs)
				return nil, unix.EINVAL
			}
			st := flatten(t, ad.Bytes())["1"]
			if len(st) != 4 {
				t.Errorf("daemon request without a state: % x", req.attrs)
				return nil, unix.EINVAL
			}
			state := binary.NativeEndian.Uint32(st)
			if req.cmd == cmdNewDaemon {
				if k.running[state] {
					return nil, unix.EEXIST
				}
				k.running[state] = true
				return nil, 0
			}
			if k.errno != 0 {
				return nil, k.errno
			}
			if !k.running[state] {
				return nil, unix.ESRCH
			}
			delete(k.running, state)
			if k.unran {
				return nil, unix.EINTR
			}
			return nil, 0
		}
		t.Errorf("unexpected command %d", req.cmd)
		return nil, unix.EINVAL
	}
}

func daemonClient(t *testing.T) (*Client, *daemonKernel) {
	t.Helper()
	k := &daemonKernel{running: map[uint32]bool{}}
	return testClient(t, k.handle(t)), k
}

// shortCtx bounds a call, so that a wait for an answer that never comes
// fails the test.
func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestStopDaemonUnanswered: a kernel that stops the daemon but leaves the
// stop unanswered (upstream, a daemon whose thread has not run yet) gets a
// successful StopDaemon, and the client stays in step with the socket.
func TestStopDaemonUnanswered(t *testing.T) {
	c, k := daemonClient(t)
	k.unran = true
	m := Daemon{State: DaemonMaster, Interface: "sync0", SyncID: 5}
	b := Daemon{State: DaemonBackup, Interface: "sync0", SyncID: 5}
	for _, d := range []Daemon{m, b} {
		if err := c.StartDaemon(shortCtx(t), d); err != nil {
			t.Fatalf("StartDaemon(%v): %v", d.State, err)
		}
	}
	if err := c.StopDaemon(shortCtx(t), m); err != nil {
		t.Fatalf("StopDaemon(master), unanswered: %v, want nil", err)
	}
	if k.running[uint32(DaemonMaster)] || !k.running[uint32(DaemonBackup)] {
		t.Fatalf("kernel's daemons after the stop: %v, want the backup only", k.running)
	}
	// the next calls on the client get their own answers
	ds, err := c.Daemons(shortCtx(t))
	if err != nil || len(ds) != 1 || ds[0].State != DaemonBackup {
		t.Fatalf("Daemons() after the unanswered stop = %+v, %v; want the backup", ds, err)
	}
	if err := c.StopDaemon(shortCtx(t), m); !errors.Is(err, os.ErrNotExist) || !errors.Is(err, ErrNotFound) {
		t.Errorf("StopDaemon(master) again = %v, want os.ErrNotExist", err)
	}
	if err := c.StopDaemon(shortCtx(t), b); err != nil {
		t.Fatalf("StopDaemon(backup), unanswered: %v, want nil", err)
	}
	if err := c.StartDaemon(shortCtx(t), m); err != nil {
		t.Fatalf("StartDaemon(master) after the stops: %v", err)
	}
	if _, err := c.Info(shortCtx(t)); err != nil {
		t.Fatalf("Info() after the stops: %v", err)
	}
}

// TestStopDaemonAnswered: a kernel that answers the stop gives the results
// it always gave.
func TestStopDaemonAnswered(t *testing.T) {
	c, k := daemonClient(t)
	m := Daemon{State: DaemonMaster, Interface: "sync0", SyncID: 5}
	if err := c.StopDaemon(shortCtx(t), m); !errors.Is(err, os.ErrNotExist) || !errors.Is(err, ErrNotFound) {
		t.Errorf("StopDaemon with none running = %v, want os.ErrNotExist", err)
	}
	if err := c.StartDaemon(shortCtx(t), m); err != nil {
		t.Fatal(err)
	}
	if err := c.StopDaemon(shortCtx(t), m); err != nil {
		t.Errorf("StopDaemon = %v, want nil", err)
	}
	if len(k.running) != 0 {
		t.Errorf("kernel's daemons after the stop: %v", k.running)
	}
	k.errno = unix.EPERM
	err := c.StopDaemon(shortCtx(t), m)
	var ie *Error
	if !errors.Is(err, ErrPermission) || !errors.As(err, &ie) || ie.Op != "stop daemon" || ie.Object != "master" {
		t.Errorf("StopDaemon refused = %v, want an *Error stop daemon master matching ErrPermission", err)
	}
	k.errno = 0
	if ds, err := c.Daemons(shortCtx(t)); err != nil || len(ds) != 0 {
		t.Errorf("Daemons() after the stops = %+v, %v", ds, err)
	}
}

// TestApplyStopDaemonUnanswered: in a batch too, an unanswered stop is a
// stop that did not fail, wherever it is in its window.
func TestApplyStopDaemonUnanswered(t *testing.T) {
	c, k := daemonClient(t)
	k.unran = true
	m := Daemon{State: DaemonMaster, Interface: "sync0", SyncID: 5}
	b := Daemon{State: DaemonBackup, Interface: "sync0", SyncID: 5}
	svc := Service{Protocol: TCP, Address: netip.MustParseAddr("198.18.0.1"), Port: 80, Scheduler: "rr"}

	// the stop last in its window
	if err := c.Apply(shortCtx(t), &Batch{Ops: []Op{
		{Kind: OpStartDaemon, Daemon: m},
		{Kind: OpStopDaemon, Daemon: m},
	}}); err != nil {
		t.Fatalf("start and stop, unanswered: %v", err)
	}
	// the stop before others, and a failing stop last
	err := c.Apply(shortCtx(t), &Batch{Ops: []Op{
		{Kind: OpStartDaemon, Daemon: b},
		{Kind: OpStopDaemon, Daemon: b},
		{Kind: OpCreateService, Service: svc},
		{Kind: OpStopDaemon, Daemon: m},
	}})
	var be *BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0].Index != 3 || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("batch = %v, want operation 3 failed with os.ErrNotExist", err)
	}
	if len(k.running) != 0 || k.services != 1 {
		t.Errorf("kernel after the batches: daemons %v, %d services; want none and 1", k.running, k.services)
	}
	if ds, err := c.Daemons(shortCtx(t)); err != nil || len(ds) != 0 {
		t.Errorf("Daemons() after the batches = %+v, %v", ds, err)
	}
}
