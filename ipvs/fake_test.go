// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

const testFamilyID = 0x23

// genlReq is a decoded request the fake kernel received.
type genlReq struct {
	cmd   uint8
	flags netlink.HeaderFlags
	attrs []byte
}

// reply is one generic netlink reply of the fake kernel.
type reply struct {
	cmd   uint8
	attrs []byte
}

// familyReply answers nlctrl's GETFAMILY for "IPVS".
func familyReply(t testing.TB, req netlink.Message) []netlink.Message {
	t.Helper()
	ad, err := netlink.NewAttributeDecoder(req.Data[4:])
	if err != nil {
		t.Fatalf("decode getfamily: %v", err)
	}
	for ad.Next() {
		if ad.Type() == unix.CTRL_ATTR_FAMILY_NAME && ad.String() != familyName {
			t.Fatalf("getfamily for %q", ad.String())
		}
	}
	ae := netlink.NewAttributeEncoder()
	ae.Uint16(unix.CTRL_ATTR_FAMILY_ID, testFamilyID)
	ae.String(unix.CTRL_ATTR_FAMILY_NAME, familyName)
	ae.Uint32(unix.CTRL_ATTR_VERSION, 1)
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return []netlink.Message{{
		Header: netlink.Header{Type: unix.GENL_ID_CTRL, Sequence: req.Header.Sequence, PID: req.Header.PID},
		Data:   append([]byte{unix.CTRL_CMD_NEWFAMILY, 2, 0, 0}, b...),
	}}
}

// testClient returns a Client over nltest whose IPVS requests go to fn.
// fn returns the replies (one per message; more than one makes a dump) or
// an errno (non-zero) that is sent back as a netlink error (EINTR: none
// at all, see testClientFlags).
func testClient(t testing.TB, fn func(req genlReq) ([]reply, unix.Errno)) *Client {
	t.Helper()
	return testClientFlags(t, func(req genlReq) ([]reply, []netlink.HeaderFlags, unix.Errno) {
		reps, errno := fn(req)
		return reps, nil, errno
	})
}

// errNoAnswer is the fake kernel's answer to a read when no answer is
// queued: a real socket would wait forever.
var errNoAnswer = errors.New("fake kernel: read with no answer queued (a kernel's socket would wait forever)")

// testClientFlags is testClient whose fn also returns netlink header flags
// for its replies (flags[i] for reply i, e.g. NLM_F_DUMP_INTR).
//
// As the kernel does, it handles the requests of one sendmsg in order and
// answers each in its own datagram (a dump in one), and it does not
// answer a request that fails with EINTR (netlink_rcv_skb's exception).
// A read with nothing queued fails with errNoAnswer.
func testClientFlags(t testing.TB, fn func(req genlReq) ([]reply, []netlink.HeaderFlags, unix.Errno)) *Client {
	t.Helper()
	var queue [][]netlink.Message // datagrams not yet read
	nc := nltest.Dial(func(reqs []netlink.Message) ([]netlink.Message, error) {
		for _, req := range reqs {
			dg, err := fakeAnswer(t, req, fn)
			if err != nil {
				return nil, err
			}
			if len(dg) > 0 {
				queue = append(queue, dg)
			}
		}
		if len(queue) == 0 {
			if len(reqs) > 0 {
				return nil, nil // read later: errNoAnswer
			}
			return nil, errNoAnswer
		}
		dg := queue[0]
		queue = queue[1:]
		return dg, nil
	})
	c, err := newClient(nc)
	if err != nil {
		t.Fatalf("newClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// fakeAnswer is testClientFlags' answer to one request (nil for none).
func fakeAnswer(t testing.TB, req netlink.Message, fn func(req genlReq) ([]reply, []netlink.HeaderFlags, unix.Errno)) ([]netlink.Message, error) {
	if req.Header.Type == unix.GENL_ID_CTRL {
		return familyReply(t, req), nil
	}
	if req.Header.Type != testFamilyID {
		return nil, fmt.Errorf("request to family %d", req.Header.Type)
	}
	if len(req.Data) < 4 || req.Data[1] != familyVersion {
		return nil, fmt.Errorf("bad genetlink header % x", req.Data)
	}
	reps, flags, errno := fn(genlReq{cmd: req.Data[0], flags: req.Header.Flags, attrs: req.Data[4:]})
	if errno == unix.EINTR {
		return nil, nil
	}
	if errno != 0 {
		return nltest.Error(int(errno), []netlink.Message{req})
	}
	var msgs []netlink.Message
	for i, r := range reps {
		msgs = append(msgs, netlink.Message{
			Header: netlink.Header{Type: testFamilyID, Sequence: req.Header.Sequence, PID: req.Header.PID},
			Data:   genlHeader(r.cmd, r.attrs),
		})
		if i < len(flags) {
			msgs[i].Header.Flags |= flags[i]
		}
	}
	if req.Header.Flags&netlink.Dump != 0 {
		msgs = append(msgs, netlink.Message{Header: netlink.Header{Type: netlink.Done, Sequence: req.Header.Sequence, PID: req.Header.PID}})
		return nltest.Multipart(msgs)
	}
	if req.Header.Flags&netlink.Acknowledge != 0 {
		msgs = append(msgs, ackMsg(req, 0))
	}
	return msgs, nil
}

// ackMsg builds a netlink ack (errno 0) or error for req, as the kernel
// does with NETLINK_CAP_ACK (only the request header is echoed).
func ackMsg(req netlink.Message, errno unix.Errno) netlink.Message {
	b := make([]byte, 4+16)
	binary.NativeEndian.PutUint32(b[0:4], uint32(-int32(errno)))
	binary.NativeEndian.PutUint32(b[4:8], req.Header.Length)
	binary.NativeEndian.PutUint16(b[8:10], uint16(req.Header.Type))
	binary.NativeEndian.PutUint16(b[10:12], uint16(req.Header.Flags))
	binary.NativeEndian.PutUint32(b[12:16], req.Header.Sequence)
	binary.NativeEndian.PutUint32(b[16:20], req.Header.PID)
	return netlink.Message{
		Header: netlink.Header{Type: netlink.Error, Sequence: req.Header.Sequence, PID: req.Header.PID},
		Data:   b,
	}
}

// flatten turns attributes into path → payload ("1/3" = attribute 3 in
// nest 1). Only attributes with NLA_F_NESTED are descended into, so a
// nest sent without the flag shows up as a mismatch.
func flatten(t testing.TB, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	var walk func(prefix string, b []byte)
	walk = func(prefix string, b []byte) {
		attrs, err := netlink.UnmarshalAttributes(b)
		if err != nil {
			t.Fatalf("unmarshal attributes at %q: %v", prefix, err)
		}
		for _, a := range attrs {
			p := fmt.Sprint(a.Type & ^uint16(unix.NLA_F_NESTED|unix.NLA_F_NET_BYTEORDER))
			if prefix != "" {
				p = prefix + "/" + p
			}
			if a.Type&unix.NLA_F_NESTED != 0 {
				out[p+"/"] = nil
				walk(p, a.Data)
				continue
			}
			out[p] = a.Data
		}
	}
	walk("", b)
	return out
}

// checkAttrs compares a request's attributes with want (see flatten; a
// nest appears as "path/" with a nil value).
func checkAttrs(t testing.TB, got []byte, want map[string][]byte) {
	t.Helper()
	g := flatten(t, got)
	var diffs []string
	keys := map[string]bool{}
	for k := range g {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		gv, gok := g[k]
		wv, wok := want[k]
		switch {
		case !gok:
			diffs = append(diffs, fmt.Sprintf("missing %s = % x", k, wv))
		case !wok:
			diffs = append(diffs, fmt.Sprintf("unexpected %s = % x", k, gv))
		case string(gv) != string(wv):
			diffs = append(diffs, fmt.Sprintf("%s = % x, want % x", k, gv, wv))
		}
	}
	if len(diffs) > 0 {
		t.Errorf("request attributes differ:\n%s", strings.Join(diffs, "\n"))
	}
}

// Little helpers to write expected wire values.
func le16(v uint16) []byte { return binary.NativeEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func bebytes16(v uint16) []byte {
	return binary.BigEndian.AppendUint16(nil, v)
}
func cstr(s string) []byte { return append([]byte(s), 0) }
func ip(s string) []byte {
	a := netip.MustParseAddr(s)
	if a.Is4() {
		b := a.As4()
		return b[:]
	}
	b := a.As16()
	return b[:]
}

// ip16 is the kernel's 16-byte union nf_inet_addr form of an address.
func ip16(s string) []byte {
	b := make([]byte, 16)
	copy(b, ip(s))
	return b
}

// attrs encodes attributes for fake replies.
func attrs(t testing.TB, fn func(ae *netlink.AttributeEncoder)) []byte {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	fn(ae)
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kernelNest writes a nest the way the kernel does: without NLA_F_NESTED.
func kernelNest(ae *netlink.AttributeEncoder, typ uint16, fn func(ae *netlink.AttributeEncoder)) {
	nae := netlink.NewAttributeEncoder()
	fn(nae)
	b, err := nae.Encode()
	if err != nil {
		panic(err)
	}
	ae.Bytes(typ, b)
}

// batchSocket is a netlink.Socket that behaves like the kernel for
// pipelined requests: each answer (an ack when asked for, or an error) is
// its own datagram.
type batchSocket struct {
	mu      sync.Mutex
	t       testing.TB
	queue   [][]netlink.Message
	sends   int
	handled []genlReq
	errnoOf func(i int, req genlReq) unix.Errno
}

func (s *batchSocket) Close() error { return nil }

func (s *batchSocket) Send(m netlink.Message) error { return s.SendMessages([]netlink.Message{m}) }

func (s *batchSocket) SendMessages(ms []netlink.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sends++
	for _, m := range ms {
		if m.Header.Type == unix.GENL_ID_CTRL {
			s.queue = append(s.queue, familyReply(s.t, m))
			continue
		}
		req := genlReq{cmd: m.Data[0], flags: m.Header.Flags, attrs: m.Data[4:]}
		var errno unix.Errno
		if s.errnoOf != nil {
			errno = s.errnoOf(len(s.handled), req)
		}
		s.handled = append(s.handled, req)
		// like netlink_rcv_skb: answer on failure or when asked to
		if errno != 0 || m.Header.Flags&netlink.Acknowledge != 0 {
			s.queue = append(s.queue, []netlink.Message{ackMsg(m, errno)})
		}
	}
	return nil
}

func (s *batchSocket) Receive() ([]netlink.Message, error) { return receiveAll(s.ReceiveIter()) }

func (s *batchSocket) ReceiveIter() iter.Seq2[netlink.Message, error] {
	return func(yield func(netlink.Message, error) bool) {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			s.t.Errorf("receive with nothing queued")
			yield(netlink.Message{}, unix.EAGAIN)
			return
		}
		dg := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		for _, m := range dg {
			if !yield(m, nil) {
				return
			}
		}
	}
}

// receiveAll is a fake socket's Receive: one datagram's messages.
func receiveAll(seq iter.Seq2[netlink.Message, error]) ([]netlink.Message, error) {
	var out []netlink.Message
	for m, err := range seq {
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}
