// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"errors"

	"github.com/mdlayher/netlink"
)

// The transport of a Client is mdlayher/netlink's Conn, for the kernel's
// sockets and for fakes alike, so that framing, sequence numbers, acks
// and extended acks go through one exchange path whatever is on the other
// end. On a real socket netlink.Conn makes ordinary (not raw) system
// calls on a non-blocking descriptor and waits in the runtime's network
// poller: the IPVS handlers that run inside sendmsg and recvmsg (mutex
// waits, module loading, long dumps) never hold up the Go scheduler or a
// garbage collection's stop-the-world, and a read can be interrupted by
// closing the socket (see Client's context handling).

// recvBufferSize is netlink.Conn's fixed receive buffer (no peek before
// each read). The kernel sizes dump datagrams by the largest buffer a
// socket has read with (max_recvmsg_len, capped a little under 32 KiB)
// and other replies by NLMSG_GOODSIZE, so no datagram exceeds it; a
// truncated one is reported as an error by netlink.Conn. 32 KiB, the
// cap, makes each part of a dump as large as the kernel makes them: a
// table of 2000 services with 5 destinations each is 12,000 messages,
// and each part is a round trip (with 8 KiB the table dump took 0.70 s
// under TCG).
const recvBufferSize = 32768

// nlHdrLen is the size of struct nlmsghdr.
const nlHdrLen = 16

// exchange sends one request on nc and collects the replies of the IPVS
// family: for a dump until NLMSG_DONE, with Acknowledge until the ack,
// else the first reply. A reply flagged NLM_F_DUMP_INTR makes the result
// an ErrDumpInterrupted error, after the dump has been read to its end.
//
// Messages with another sequence number are skipped (they can only be
// left over from an earlier exchange). An error that is not a kernel
// answer (see kernelAnswer) leaves the socket in an unknown state.
func exchange(nc *netlink.Conn, family uint16, flags netlink.HeaderFlags, msg []byte) ([]genlMsg, error) {
	var out []genlMsg
	err := exchangeFunc(nc, family, flags, msg, func(m genlMsg) bool {
		out = append(out, m)
		return true
	})
	return out, err
}

// exchangeFunc is exchange handing each reply to fn as it is read,
// without keeping it. m.data is in the memory of its datagram, which
// netlink.Conn reads into a buffer of its own, so fn may keep it (as
// exchange and tableOnce do). When fn
// returns false the exchange ends at once with errStopped and nc is
// closed: netlink.Conn would otherwise read the rest of a multi-part dump
// to its end before returning (a million entries to throw away).
func exchangeFunc(nc *netlink.Conn, family uint16, flags netlink.HeaderFlags, msg []byte, fn func(m genlMsg) bool) error {
	sent, err := nc.Send(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(family), Flags: netlink.Request | flags},
		Data:   msg,
	})
	if err != nil {
		return err
	}
	seq := sent.Header.Sequence
	interrupted := false
	for {
		done := flags&netlink.Dump != 0 // one ReceiveIter reads a whole multi-part dump
		for m, err := range nc.ReceiveIter() {
			if err != nil {
				var oe *netlink.OpError
				if errors.As(err, &oe) && oe.Sequence != 0 && oe.Sequence != seq {
					done = false // a stale error: read on
					break
				}
				return err
			}
			if m.Header.Sequence != seq {
				continue
			}
			if m.Header.Flags&netlink.DumpInterrupted != 0 {
				interrupted = true
			}
			switch m.Header.Type {
			case netlink.Error, netlink.Done:
				done = true // an ack: errors came as err above
				continue
			case netlink.Noop:
				continue
			}
			if m.Header.Type == netlink.HeaderType(family) && len(m.Data) >= 4 {
				if !fn(genlMsg{cmd: m.Data[0], data: m.Data[4:]}) {
					_ = nc.Close() // ends the drain that follows the loop's end
					return errStopped
				}
			}
			if flags&(netlink.Dump|netlink.Acknowledge) == 0 {
				done = true
			}
		}
		if done {
			break
		}
	}
	if interrupted {
		return ErrDumpInterrupted
	}
	return nil
}

// errStopped ends an exchangeFunc whose consumer wants no more replies.
var errStopped = errors.New("reading stopped by the consumer")

// fenceMsg is the request that follows a request the kernel may leave
// unanswered (see exchangeFenced): GET_INFO, which the kernel answers
// whatever the state of IPVS, with a reply or an error.
func fenceMsg() []byte { return genlHeader(cmdGetInfo, nil) }

// exchangeFenced sends msg, a request asking for an ack, and in the same
// sendmsg a fence (fenceMsg), and reads until the fence is answered. It
// returns msg's error, or nil when msg was acknowledged or not answered
// at all.
//
// The kernel handles the requests of one sendmsg in order and answers
// each of them before it reads the next, so msg's ack or error comes
// before the fence's answer. netlink_rcv_skb answers every request that
// asks for an ack except one whose handler returned -EINTR: when the
// fence's answer comes first, that is what happened to msg.
//
// Messages with other sequence numbers are skipped, as in exchange. An
// error that is not a kernel answer leaves the socket in an unknown state.
func exchangeFenced(nc *netlink.Conn, family uint16, msg []byte) error {
	sent, err := nc.SendMessages([]netlink.Message{
		{Header: netlink.Header{Type: netlink.HeaderType(family), Flags: netlink.Request | netlink.Acknowledge}, Data: msg},
		{Header: netlink.Header{Type: netlink.HeaderType(family), Flags: netlink.Request}, Data: fenceMsg()},
	})
	if err != nil {
		return err
	}
	seq, fence := sent[0].Header.Sequence, sent[1].Header.Sequence
	var result error
	for {
		for m, err := range nc.ReceiveIter() {
			if err != nil {
				var oe *netlink.OpError
				if !errors.As(err, &oe) || oe.Sequence == 0 {
					return err
				}
				switch oe.Sequence {
				case seq:
					result = err
				case fence:
					// the fence failed, after msg was handled
					return result
				}
				break // the datagram ends with an error; a stale one is skipped
			}
			if m.Header.Sequence == fence {
				return result
			}
		}
	}
}

// kernelAnswer reports whether err is the kernel's answer to a request
// (an errno in an NLMSG_ERROR or NLMSG_DONE, or an interrupted dump read
// to its end), after which the socket is ready for the next request.
// Other errors (system calls, malformed replies) may leave replies
// unread.
func kernelAnswer(err error) bool {
	if errors.Is(err, ErrDumpInterrupted) {
		return true
	}
	var oe *netlink.OpError
	return errors.As(err, &oe) && oe.Sequence != 0
}

// sendWindow sends the messages of buf between offs[0] and offs[n] (each
// a netlink header whose fields other than the length are filled in here,
// and a genetlink payload) in one sendmsg, the last with an ack, and
// reports each failed request's index through fail. It returns when the
// last request has been answered.
//
// When the last request is a DEL_DAEMON, which the kernel may leave
// unanswered (see exchangeFenced), a fence follows it instead of its ack,
// and the window ends with the fence's answer. An unanswered request is
// one that did not fail.
func sendWindow(nc *netlink.Conn, family uint16, buf []byte, offs []int, fail func(int, error)) error {
	n := len(offs) - 1
	fenced := buf[offs[n-1]+nlHdrLen] == cmdDelDaemon
	reqs := make([]netlink.Message, n, n+1)
	for i := range reqs {
		reqs[i] = netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(family), Flags: netlink.Request},
			Data:   buf[offs[i]+nlHdrLen : offs[i+1]],
		}
	}
	if fenced {
		reqs = append(reqs, netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(family), Flags: netlink.Request},
			Data:   fenceMsg(),
		})
	} else {
		reqs[n-1].Header.Flags |= netlink.Acknowledge
	}
	sent, err := nc.SendMessages(reqs)
	if err != nil {
		return err
	}
	seqIndex := make(map[uint32]int, n)
	for i, m := range sent[:n] {
		seqIndex[m.Header.Sequence] = i
	}
	// the window is over with the answer to last: an ack or error, or
	// any answer to the fence
	last := sent[len(sent)-1].Header.Sequence
	for {
		msgs, err := nc.Receive()
		if err != nil {
			var oe *netlink.OpError
			if errors.As(err, &oe) && oe.Sequence != 0 {
				if i, ok := seqIndex[oe.Sequence]; ok {
					fail(i, err)
				}
				if oe.Sequence == last {
					return nil
				}
				continue
			}
			return err
		}
		for _, m := range msgs {
			if m.Header.Sequence == last && (fenced || m.Header.Type == netlink.Error) {
				return nil
			}
		}
	}
}
