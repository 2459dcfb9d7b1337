// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"errors"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The transport is exercised here against the host kernel's generic
// netlink controller (nlctrl), which every Linux kernel has; the IPVS
// side of it runs in the VM tests.

func dialCtrl(t *testing.T) *netlink.Conn {
	t.Helper()
	nc, err := dialConn(&netlink.Config{MessageBufferSize: recvBufferSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return nc
}

func getFamilyMsg(t *testing.T, name string) []byte {
	var w attrWriter
	w.b = []byte{unix.CTRL_CMD_GETFAMILY, 1, 0, 0}
	w.String(unix.CTRL_ATTR_FAMILY_NAME, name)
	return w.b
}

func ctrlFamilyName(t *testing.T, m genlMsg) string {
	t.Helper()
	it := newAttrIter(m.data)
	for it.Next() {
		if it.Type() == unix.CTRL_ATTR_FAMILY_NAME {
			return cstring(it.Bytes())
		}
	}
	t.Fatalf("reply without family name (err %v)", it.Err())
	return ""
}

func TestExchange(t *testing.T) {
	r := dialCtrl(t)
	// doit: one reply
	msgs, err := exchange(r, unix.GENL_ID_CTRL, 0, getFamilyMsg(t, "nlctrl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].cmd != unix.CTRL_CMD_NEWFAMILY || ctrlFamilyName(t, msgs[0]) != "nlctrl" {
		t.Fatalf("getfamily nlctrl: %+v", msgs)
	}
	// doit with ack: reply, then the ack ends the exchange
	msgs, err = exchange(r, unix.GENL_ID_CTRL, netlink.Acknowledge, getFamilyMsg(t, "nlctrl"))
	if err != nil || len(msgs) != 1 {
		t.Fatalf("getfamily with ack: %d replies, %v", len(msgs), err)
	}
	// dump: every family, until NLMSG_DONE, across datagrams
	msgs, err = exchange(r, unix.GENL_ID_CTRL, netlink.Dump, []byte{unix.CTRL_CMD_GETFAMILY, 1, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range msgs {
		names[ctrlFamilyName(t, m)] = true
	}
	if !names["nlctrl"] || len(names) != len(msgs) {
		t.Errorf("dump listed %v", names)
	}
	// errors carry the errno, and the exchange after them is clean
	_, err = exchange(r, unix.GENL_ID_CTRL, 0, getFamilyMsg(t, "no-such-family"))
	var oe *netlink.OpError
	if !errors.Is(err, unix.ENOENT) || !errors.As(err, &oe) || oe.Sequence == 0 {
		t.Errorf("missing family: %v, want ENOENT with the request's sequence", err)
	}
	if msgs, err := exchange(r, unix.GENL_ID_CTRL, 0, getFamilyMsg(t, "nlctrl")); err != nil || len(msgs) != 1 {
		t.Errorf("after an error: %v, %v", msgs, err)
	}
}

func TestSendWindow(t *testing.T) {
	r := dialCtrl(t)
	var msgs [][]byte
	// GETFAMILY answers successes too (IPVS changes do not); keep the
	// batch small enough for those answers to fit the receive buffer
	for i := range 40 {
		name := "nlctrl"
		if i%7 == 3 {
			name = "no-such-family"
		}
		msgs = append(msgs, getFamilyMsg(t, name))
	}
	// the last one fails too: its error ends the batch
	msgs = append(msgs, getFamilyMsg(t, "no-such-family"))
	var buf []byte
	var offs []int
	for _, m := range msgs {
		offs = append(offs, len(buf))
		buf = append(buf, make([]byte, nlHdrLen)...)
		buf = append(buf, m...)
	}
	offs = append(offs, len(buf))
	var failed []int
	if err := sendWindow(r, unix.GENL_ID_CTRL, buf, offs, func(i int, err error) {
		if !errors.Is(err, unix.ENOENT) {
			t.Errorf("request %d: %v", i, err)
		}
		failed = append(failed, i)
	}); err != nil {
		t.Fatal(err)
	}
	want := 0
	for i := range msgs {
		if i%7 == 3 || i == len(msgs)-1 {
			if want >= len(failed) || failed[want] != i {
				t.Fatalf("failures %v, missing %d", failed, i)
			}
			want++
		}
	}
	if want != len(failed) {
		t.Errorf("failures %v, want %d of them", failed, want)
	}
	// the socket is clean afterwards
	if msgs, err := exchange(r, unix.GENL_ID_CTRL, 0, getFamilyMsg(t, "nlctrl")); err != nil || len(msgs) != 1 {
		t.Errorf("after a batch: %v, %v", msgs, err)
	}
}
