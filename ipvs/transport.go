// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// rawConn is the fast path of a Client: it writes and reads the netlink
// socket of the netlink.Conn directly with non-blocking raw system calls
// and parses replies in place.
//
// Why: IPVS answers every request synchronously, inside the sendmsg that
// carries it (dumps continue inside the recvmsg that drains them), so a
// read right after a write never has to wait. Going through the Go
// runtime's blocking-syscall machinery for each of the thousands of round
// trips of a large listing costs more than the kernel work itself where
// system calls are slow (the emulated VMs of the test rig): the scheduler
// hands the P away during every slow syscall. Only when a raw call would
// block (EAGAIN) does rawConn wait in the runtime poller.
//
// Clients over fakes (nltest) have no file descriptor; they use
// netlink.Conn for everything.
type rawConn struct {
	rc   syscall.RawConn
	seq  uint32
	rbuf []byte
}

// rawBufSize is the receive buffer of rawConn and of netlink.Conn. The
// kernel sizes dump datagrams by the largest buffer a socket has read
// with (max_recvmsg_len) and other replies by NLMSG_GOODSIZE, so no
// datagram exceeds it; a truncated one is reported as an error.
const rawBufSize = 8192

func newRawConn(nc *netlink.Conn) *rawConn {
	rc, err := nc.SyscallConn()
	if err != nil {
		return nil
	}
	return &rawConn{rc: rc, seq: 1 << 30, rbuf: make([]byte, rawBufSize)}
}

// write sends b (one or more netlink messages) in one system call.
func (r *rawConn) write(b []byte) error {
	var errno syscall.Errno
	err := r.rc.Write(func(fd uintptr) bool {
		for {
			n, _, e := syscall.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
			switch e {
			case 0:
				if int(n) != len(b) {
					errno = syscall.EMSGSIZE
				}
				return true
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			}
			errno = e
			return true
		}
	})
	if err != nil {
		return fmt.Errorf("netlink write: %w", err)
	}
	if errno != 0 {
		return fmt.Errorf("netlink write: %w", errno)
	}
	return nil
}

// read receives one datagram into r.rbuf.
func (r *rawConn) read() ([]byte, error) {
	var n uintptr
	var errno syscall.Errno
	buf := r.rbuf
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			var e syscall.Errno
			n, _, e = syscall.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), unix.MSG_TRUNC, 0, 0)
			switch e {
			case 0:
				return true
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			}
			errno = e
			return true
		}
	})
	if err != nil {
		return nil, fmt.Errorf("netlink read: %w", err)
	}
	if errno != 0 {
		return nil, fmt.Errorf("netlink read: %w", errno)
	}
	if int(n) > len(buf) {
		return nil, fmt.Errorf("netlink read: datagram of %d bytes truncated to %d", n, len(buf))
	}
	return buf[:n], nil
}

// nlHdrLen is the size of struct nlmsghdr.
const nlHdrLen = 16

// appendNlmsg appends a netlink message of type typ with the genetlink
// payload msg and returns the buffer.
func appendNlmsg(b []byte, typ uint16, flags netlink.HeaderFlags, seq uint32, msg []byte) []byte {
	start := len(b)
	b = append(b, make([]byte, nlHdrLen)...)
	binary.NativeEndian.PutUint32(b[start:], uint32(nlHdrLen+len(msg)))
	binary.NativeEndian.PutUint16(b[start+4:], typ)
	binary.NativeEndian.PutUint16(b[start+6:], uint16(flags))
	binary.NativeEndian.PutUint32(b[start+8:], seq)
	b = append(b, msg...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// nlmsg is a parsed netlink message (Data aliases the read buffer).
type nlmsg struct {
	typ   uint16
	flags uint16
	seq   uint32
	data  []byte
}

// parseNlmsgs calls fn for each message of a datagram; fn returns false
// to stop.
func parseNlmsgs(b []byte, fn func(m nlmsg) bool) error {
	for len(b) >= nlHdrLen {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		if l < nlHdrLen || l > len(b) {
			return fmt.Errorf("netlink message length %d out of range", l)
		}
		m := nlmsg{
			typ:   binary.NativeEndian.Uint16(b[4:6]),
			flags: binary.NativeEndian.Uint16(b[6:8]),
			seq:   binary.NativeEndian.Uint32(b[8:12]),
			data:  b[nlHdrLen:l],
		}
		if !fn(m) {
			return nil
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return nil
}

// ackError decodes an NLMSG_ERROR (or an NLMSG_DONE carrying an errno);
// nil for a plain ack. The extended-ack message, if any, is kept.
func ackError(m nlmsg) error {
	if len(m.data) < 4 {
		if m.typ == unix.NLMSG_DONE {
			return nil
		}
		return errors.New("short netlink error message")
	}
	code := int32(binary.NativeEndian.Uint32(m.data[0:4]))
	if code == 0 {
		return nil
	}
	oe := &netlink.OpError{Op: "receive", Err: syscall.Errno(-code), Sequence: m.seq}
	if m.flags&unix.NLM_F_ACK_TLVS != 0 {
		off := 4
		if m.typ == unix.NLMSG_ERROR {
			// the original request header, and its payload unless capped
			if len(m.data) >= off+nlHdrLen {
				ol := int(binary.NativeEndian.Uint32(m.data[off : off+4]))
				if m.flags&unix.NLM_F_CAPPED != 0 {
					ol = nlHdrLen
				}
				off += (ol + 3) &^ 3
			}
		}
		if off <= len(m.data) {
			it := newAttrIter(m.data[off:])
			for it.Next() {
				if it.Type() == unix.NLMSGERR_ATTR_MSG {
					oe.Message = cstring(it.Bytes())
				}
			}
		}
	}
	return oe
}

// exchange sends one request and collects the IPVS replies: until
// NLMSG_DONE for a dump, until the ack with Acknowledge, else the first
// reply. Replies are copied out of the read buffer.
func (r *rawConn) exchange(family uint16, flags netlink.HeaderFlags, msg []byte) ([]genlMsg, error) {
	r.seq++
	seq := r.seq
	b := appendNlmsg(make([]byte, 0, nlHdrLen+len(msg)+4), family, netlink.Request|flags, seq, msg)
	if err := r.write(b); err != nil {
		return nil, err
	}
	var out []genlMsg
	for {
		dg, err := r.read()
		if err != nil {
			return nil, err
		}
		done := false
		var rerr error
		perr := parseNlmsgs(dg, func(m nlmsg) bool {
			if m.seq != seq {
				return true // stale answer of an abandoned exchange
			}
			switch m.typ {
			case unix.NLMSG_ERROR, unix.NLMSG_DONE:
				rerr, done = ackError(m), true
				if m.flags&unix.NLM_F_DUMP_INTR != 0 && len(out) > 0 {
					out[len(out)-1].flags |= unix.NLM_F_DUMP_INTR
				}
				return false
			case unix.NLMSG_NOOP:
				return true
			}
			if m.typ == family && len(m.data) >= 4 {
				out = append(out, genlMsg{cmd: m.data[0], flags: m.flags, data: append([]byte(nil), m.data[4:]...)})
			}
			if flags&(netlink.Dump|netlink.Acknowledge) == 0 && m.flags&unix.NLM_F_MULTI == 0 {
				done = true
				return false
			}
			return true
		})
		if perr != nil {
			return nil, perr
		}
		if done {
			if rerr != nil {
				return nil, rerr
			}
			return out, nil
		}
	}
}

// batch sends the netlink messages in b (message i at offs[i]-offs[0];
// lengths set, everything else filled in here) in one write, all without
// an ack except the last, and reports each failed request's index through
// fail. It returns when the last request has been answered.
func (r *rawConn) batch(family uint16, b []byte, offs []int, fail func(i int, err error)) error {
	n := len(offs) - 1
	first := r.seq + 1
	for i := range n {
		o := offs[i] - offs[0]
		flags := netlink.Request
		if i == n-1 {
			flags |= netlink.Acknowledge
		}
		r.seq++
		binary.NativeEndian.PutUint16(b[o+4:], family)
		binary.NativeEndian.PutUint16(b[o+6:], uint16(flags))
		binary.NativeEndian.PutUint32(b[o+8:], r.seq)
		binary.NativeEndian.PutUint32(b[o+12:], 0)
	}
	last := r.seq
	if err := r.write(b); err != nil {
		return err
	}
	for {
		dg, err := r.read()
		if err != nil {
			return err
		}
		done := false
		perr := parseNlmsgs(dg, func(m nlmsg) bool {
			idx := m.seq - first // wraps safely
			if m.typ != unix.NLMSG_ERROR || idx >= uint32(n) {
				return true
			}
			if err := ackError(m); err != nil {
				fail(int(idx), err)
			}
			if m.seq == last {
				done = true
				return false
			}
			return true
		})
		if perr != nil {
			return perr
		}
		if done {
			return nil
		}
	}
}
