// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package ipvstest is an in-memory IPVS for tests: a fake kernel that
// speaks the IPVS generic netlink protocol behind mdlayher/netlink's Conn,
// so that an *ipvs.Client on it runs the production encode, exchange and
// decode path. It answers services, destinations, sync daemons, timeouts,
// info and feature bits, zero and flush as the upstream module does, and
// the extension's commands as our module does: local addresses,
// IPVS_CMD_GET_TABLE (every service followed by its destinations and local
// addresses, in one dump) and IPVS_CMD_GET_CONN (the connections put in with
// AddConnection).
//
// By default it is our module with every extension feature
// (FeatureFullNAT, FeatureSynProxy, FeatureEstTimeout, FeatureTableDump,
// FeatureProxyProtocol, FeatureSyncFullNAT, FeatureConnDump,
// FeatureTableLaddrs, FeatureTableNoStats);
// Options.Features narrows the set, and Options.Stock makes it the
// upstream module. A command the kernel does not have (the extension's on
// a stock kernel, GET_TABLE or GET_CONN without their feature) is
// EOPNOTSUPP, as genetlink answers an unknown command.
//
// It answers the way the kernel does where a consumer can see it: the
// errnos of ip_vs_ctl.c (EEXIST, ESRCH for a missing service, ENOENT for a
// missing destination or local address and for an unknown scheduler or
// persistence engine) and of our module (EOPNOTSUPP where it refuses the
// PROXY protocol, EINVAL for a version it does not know), the extension's
// service attributes ignored by a module without their feature, an update
// without a PROXY protocol version or ESTABLISHED timeout keeping the
// service's, an ESTABLISHED timeout above 31 days refused, FlagHashed on
// listed services, destinations newest first, a destination of another
// family than its service's for tunnels only and never beside a sync
// daemon, sync daemons listed with the kernel's defaults filled in, dumps
// as multi-part messages and acks with the request header only
// (NETLINK_CAP_ACK). Its replies carry the kernel's attributes in the
// kernel's order: the ipvs package's TestFakeGolden compares them with the
// replies recorded from Linux 6.12 (testdata/ipvs/6.12 and 6.12-ours). It
// keeps no traffic: counters are zero, and a dump is never interrupted
// (NLM_F_DUMP_INTR). Services are listed as the kernel walks its two
// tables, those with an address before fwmark services, and each kind in
// the order created (the kernel's is its hash table's).
//
//	k := ipvstest.New(ipvstest.Options{})
//	c, err := k.Client()
//	// use c as in production
package ipvstest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/fullnat/fullnat/ipvs"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Wire constants (uapi linux/ip_vs.h and the extension's wire protocol).
const (
	familyID = 0x23

	cmdNewService = 1
	cmdSetService = 2
	cmdDelService = 3
	cmdGetService = 4
	cmdNewDest    = 5
	cmdSetDest    = 6
	cmdDelDest    = 7
	cmdGetDest    = 8
	cmdNewDaemon  = 9
	cmdDelDaemon  = 10
	cmdGetDaemon  = 11
	cmdSetConfig  = 12
	cmdGetConfig  = 13
	cmdSetInfo    = 14
	cmdGetInfo    = 15
	cmdZero       = 16
	cmdFlush      = 17
	cmdNewLaddr   = 18
	cmdDelLaddr   = 19
	cmdGetLaddr   = 20
	cmdGetTable   = 21

	attrService    = 1
	attrDest       = 2
	attrDaemon     = 3
	attrTimeoutTCP = 4
	attrTimeoutFin = 5
	attrTimeoutUDP = 6
	attrLaddr      = 7
	attrTableFlags = 9 // IPVS_TABLE_F_* of GET_TABLE (u32)

	tableNoStats = 0x1

	svcAF         = 1
	svcProtocol   = 2
	svcAddr       = 3
	svcPort       = 4
	svcFWMark     = 5
	svcSchedName  = 6
	svcFlags      = 7
	svcTimeout    = 8
	svcNetmask    = 9
	svcStats      = 10
	svcPEName     = 11
	svcStats64    = 12
	svcEstTimeout = 13
	svcProxyProto = 14

	destAddr         = 1
	destPort         = 2
	destFwdMethod    = 3
	destWeight       = 4
	destUThresh      = 5
	destLThresh      = 6
	destActiveConns  = 7
	destInactConns   = 8
	destPersistConns = 9
	destStats        = 10
	destAddrFamily   = 11
	destStats64      = 12
	destTunType      = 13
	destTunPort      = 14
	destTunFlags     = 15

	daemonState       = 1
	daemonMcastIfn    = 2
	daemonSyncID      = 3
	daemonSyncMaxLen  = 4
	daemonMcastGroup  = 5
	daemonMcastGroup6 = 6
	daemonMcastPort   = 7
	daemonMcastTTL    = 8

	laddrAddr         = 1
	laddrPortConflict = 2
	laddrConnCounts   = 3

	infoVersion     = 1
	infoConnTabSize = 2
	infoFeatures    = 3

	flagHashed = 0x0002

	fwdTunnel  = 2
	fwdFullNAT = 5
	fwdMask    = 7 // IP_VS_CONN_F_FWD_MASK

	protoTCP = 6

	ppMax = 2 // IPVS_SVC_ATTR_PROXY_PROTOCOL's policy: 0 off, 1 v1, 2 v2

	estTimeoutMax = 31 * 24 * 3600 // IP_VS_FNAT_EST_TIMEOUT_MAX (HZ up to 800)
)

// Options configure a Kernel. The zero value is a kernel with the fullnat
// module (every extension feature), the upstream schedulers and the "sip"
// persistence engine.
type Options struct {
	// Stock makes the kernel the upstream ip_vs module: no feature bits,
	// and the extension's commands and attributes are unknown to it.
	Stock bool
	// Features are the extension features reported (ignored with Stock;
	// zero means all of them).
	Features ipvs.Features
	// Schedulers are the scheduler modules that can be loaded; nil means
	// the upstream ones.
	Schedulers []string
	// PersistenceEngines are the persistence engine modules; nil means
	// "sip".
	PersistenceEngines []string
	// Version is the reported IPVS version; zero means 1.2.1.
	Version uint32
	// ConnTableSize is the reported connection hash table size; zero means
	// 4096.
	ConnTableSize uint32
}

// Kernel is an in-memory IPVS in one network namespace. It is safe for
// concurrent use by any number of sockets and clients.
type Kernel struct {
	opts     Options
	features ipvs.Features

	mu       sync.Mutex
	services []*service
	daemons  map[uint32][]byte // state → the IPVS_CMD_ATTR_DAEMON nest listed
	timeouts [3]uint32
	conns    []ipvs.Connection
}

type service struct {
	key    string
	af     uint16
	attrs  map[uint16][]byte // as sent, key attributes included
	dests  []*dest           // newest first
	laddrs [][]byte
}

type dest struct {
	key   string
	attrs map[uint16][]byte
}

// New returns an empty kernel.
func New(opts Options) *Kernel {
	k := &Kernel{opts: opts, daemons: map[uint32][]byte{}, timeouts: [3]uint32{900, 120, 300}}
	if !opts.Stock {
		k.features = opts.Features
		if k.features == 0 {
			k.features = ipvs.FeatureFullNAT | ipvs.FeatureSynProxy | ipvs.FeatureEstTimeout | ipvs.FeatureProxyProtocol |
				ipvs.FeatureConnDump | ipvs.FeatureTableDump | ipvs.FeatureSyncFullNAT | ipvs.FeatureTableLaddrs |
				ipvs.FeatureTableNoStats
		}
	}
	if k.opts.Schedulers == nil {
		k.opts.Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}
	}
	if k.opts.PersistenceEngines == nil {
		k.opts.PersistenceEngines = []string{"sip"}
	}
	if k.opts.Version == 0 {
		k.opts.Version = 1<<16 | 2<<8 | 1
	}
	if k.opts.ConnTableSize == 0 {
		k.opts.ConnTableSize = 4096
	}
	return k
}

// Dial returns a new netlink socket on the kernel (generic netlink: the
// controller answers for the "IPVS" family only).
func (k *Kernel) Dial() (*netlink.Conn, error) {
	return netlink.NewConn(&socket{k: k, closed: make(chan struct{})}, 1), nil
}

// Client returns an *ipvs.Client on the kernel, which dials more sockets
// as it needs them (parallel listing, reopening after an interrupted
// call).
func (k *Kernel) Client() (*ipvs.Client, error) {
	return ipvs.NewFromDialer(k.Dial)
}

// socket is one netlink socket: requests are handled when sent, and each
// answer is queued as its own datagram, as the kernel does.
type socket struct {
	k         *Kernel
	mu        sync.Mutex
	queue     [][]netlink.Message
	closeOnce sync.Once
	closed    chan struct{}
}

func (s *socket) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

func (s *socket) Send(m netlink.Message) error { return s.SendMessages([]netlink.Message{m}) }

func (s *socket) SendMessages(ms []netlink.Message) error {
	select {
	case <-s.closed:
		return net.ErrClosed
	default:
	}
	for _, m := range ms {
		dgs := s.k.handle(m)
		s.mu.Lock()
		s.queue = append(s.queue, dgs...)
		s.mu.Unlock()
	}
	return nil
}

func (s *socket) Receive() ([]netlink.Message, error) {
	var out []netlink.Message
	for m, err := range s.ReceiveIter() {
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// ReceiveIter yields the next datagram's messages; with nothing queued it
// waits until the socket is closed (nothing else can arrive).
func (s *socket) ReceiveIter() iter.Seq2[netlink.Message, error] {
	return func(yield func(netlink.Message, error) bool) {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			<-s.closed
			yield(netlink.Message{}, net.ErrClosed)
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

// ack is the kernel's NLMSG_ERROR for req (errno 0 for an ack). As for a
// socket without NETLINK_CAP_ACK (the client's), an ack echoes the request
// header only (NLM_F_CAPPED) and an error the whole request.
func ack(req netlink.Message, errno unix.Errno) netlink.Message {
	b := make([]byte, 20)
	if errno != 0 {
		b = append(b, req.Data...)
	}
	binary.NativeEndian.PutUint32(b[0:4], uint32(-int32(errno)))
	binary.NativeEndian.PutUint32(b[4:8], req.Header.Length)
	binary.NativeEndian.PutUint16(b[8:10], uint16(req.Header.Type))
	binary.NativeEndian.PutUint16(b[10:12], uint16(req.Header.Flags))
	binary.NativeEndian.PutUint32(b[12:16], req.Header.Sequence)
	binary.NativeEndian.PutUint32(b[16:20], req.Header.PID)
	flags := netlink.HeaderFlags(0)
	if errno == 0 {
		flags = netlink.HeaderFlags(unix.NLM_F_CAPPED)
	}
	return netlink.Message{Header: netlink.Header{Type: netlink.Error, Flags: flags, Sequence: req.Header.Sequence, PID: req.Header.PID}, Data: b}
}

// handle answers one request: the datagrams to queue.
func (k *Kernel) handle(req netlink.Message) [][]netlink.Message {
	if req.Header.Type == unix.GENL_ID_CTRL {
		return k.ctrl(req)
	}
	if req.Header.Type != familyID || len(req.Data) < 4 {
		return [][]netlink.Message{{ack(req, unix.ENOENT)}}
	}
	cmd := req.Data[0]
	attrs, err := parse(req.Data[4:])
	if err != nil {
		return [][]netlink.Message{{ack(req, unix.EINVAL)}}
	}
	k.mu.Lock()
	replies, errno := k.do(cmd, req.Header.Flags&netlink.Dump != 0, attrs)
	k.mu.Unlock()
	var msgs []netlink.Message
	for _, r := range replies {
		msgs = append(msgs, netlink.Message{
			Header: netlink.Header{Type: familyID, Sequence: req.Header.Sequence, PID: req.Header.PID},
			Data:   r,
		})
	}
	if req.Header.Flags&netlink.Dump != 0 && errno == 0 {
		for i := range msgs {
			msgs[i].Header.Flags |= netlink.Multi
		}
		done := netlink.Message{Header: netlink.Header{Type: netlink.Done, Flags: netlink.Multi, Sequence: req.Header.Sequence, PID: req.Header.PID}, Data: make([]byte, 4)}
		// several datagrams, as a dump of a large table
		var dgs [][]netlink.Message
		for len(msgs) > 16 {
			dgs = append(dgs, msgs[:16])
			msgs = msgs[16:]
		}
		return append(dgs, append(msgs, done))
	}
	var dgs [][]netlink.Message
	if errno != 0 {
		return [][]netlink.Message{{ack(req, errno)}}
	}
	if len(msgs) > 0 {
		dgs = append(dgs, msgs)
	}
	if req.Header.Flags&netlink.Acknowledge != 0 {
		dgs = append(dgs, []netlink.Message{ack(req, 0)})
	}
	return dgs
}

// ctrl answers nlctrl's GETFAMILY for "IPVS".
func (k *Kernel) ctrl(req netlink.Message) [][]netlink.Message {
	attrs, err := parse(req.Data[4:])
	if err != nil || len(req.Data) < 4 || req.Data[0] != unix.CTRL_CMD_GETFAMILY || cstring(attrs[unix.CTRL_ATTR_FAMILY_NAME]) != "IPVS" {
		return [][]netlink.Message{{ack(req, unix.ENOENT)}}
	}
	ae := netlink.NewAttributeEncoder()
	ae.Uint16(unix.CTRL_ATTR_FAMILY_ID, familyID)
	ae.String(unix.CTRL_ATTR_FAMILY_NAME, "IPVS")
	ae.Uint32(unix.CTRL_ATTR_VERSION, 1)
	b, _ := ae.Encode()
	return [][]netlink.Message{{{
		Header: netlink.Header{Type: unix.GENL_ID_CTRL, Sequence: req.Header.Sequence, PID: req.Header.PID},
		Data:   append([]byte{unix.CTRL_CMD_NEWFAMILY, 2, 0, 0}, b...),
	}}}
}

// do runs one IPVS command (k.mu held): the genetlink payloads of the
// replies, or an errno.
func (k *Kernel) do(cmd uint8, dump bool, attrs map[uint16][]byte) ([][]byte, unix.Errno) {
	if cmd < cmdNewService || cmd > cmdGetConn ||
		k.opts.Stock && (cmd == cmdNewLaddr || cmd == cmdDelLaddr || cmd == cmdGetLaddr) {
		return nil, unix.EOPNOTSUPP // a command the module does not have
	}
	switch cmd {
	case cmdGetConn:
		return k.getConns(attrs)
	case cmdGetTable:
		return k.getTable(dump, attrs)
	case cmdGetInfo:
		ae := netlink.NewAttributeEncoder()
		ae.Uint32(infoVersion, k.opts.Version)
		ae.Uint32(infoConnTabSize, k.opts.ConnTableSize)
		if !k.opts.Stock {
			ae.Uint32(infoFeatures, uint32(k.features))
		}
		return [][]byte{genl(cmdSetInfo, ae)}, 0
	case cmdGetConfig:
		ae := netlink.NewAttributeEncoder()
		ae.Uint32(attrTimeoutTCP, k.timeouts[0])
		ae.Uint32(attrTimeoutFin, k.timeouts[1])
		ae.Uint32(attrTimeoutUDP, k.timeouts[2])
		return [][]byte{genl(cmdSetConfig, ae)}, 0
	case cmdSetConfig:
		for i, a := range []uint16{attrTimeoutTCP, attrTimeoutFin, attrTimeoutUDP} {
			if v, ok := attrs[a]; ok && len(v) == 4 && binary.NativeEndian.Uint32(v) != 0 {
				k.timeouts[i] = binary.NativeEndian.Uint32(v)
			}
		}
		return nil, 0
	case cmdFlush:
		k.services = nil
		return nil, 0
	case cmdGetDaemon:
		var out [][]byte
		for _, st := range []uint32{1, 2} {
			if a, ok := k.daemons[st]; ok {
				ae := netlink.NewAttributeEncoder()
				ae.Bytes(attrDaemon, a)
				out = append(out, genl(cmdNewDaemon, ae))
			}
		}
		return out, 0
	case cmdNewDaemon, cmdDelDaemon:
		da, err := parse(attrs[attrDaemon])
		if err != nil || len(da[daemonState]) != 4 {
			return nil, unix.EINVAL
		}
		st := binary.NativeEndian.Uint32(da[daemonState])
		_, running := k.daemons[st]
		if cmd == cmdDelDaemon {
			if !running {
				return nil, unix.ESRCH
			}
			delete(k.daemons, st)
			return nil, 0
		}
		listed, errno := daemonListed(st, da)
		if errno != 0 {
			return nil, errno
		}
		if k.mixedFamilyDests() {
			return nil, unix.EINVAL // the sync protocol cannot carry them
		}
		if running {
			return nil, unix.EEXIST
		}
		k.daemons[st] = listed
		return nil, 0
	case cmdGetService:
		if dump {
			var out [][]byte
			for s := range k.listed() {
				out = append(out, k.serviceReply(s, true))
			}
			return out, 0
		}
	}

	// Everything else names a service.
	sa, ok := attrs[attrService]
	if !ok {
		if cmd == cmdZero {
			return nil, 0 // zero all: nothing is counted here
		}
		return nil, unix.EINVAL
	}
	svcAttrs, key, af, errno := requestService(sa)
	if errno != 0 {
		return nil, errno
	}
	// unknown to a module without the feature (the stock one): ignored
	if !k.features.Has(ipvs.FeatureEstTimeout) {
		delete(svcAttrs, svcEstTimeout)
	}
	if !k.features.Has(ipvs.FeatureProxyProtocol) {
		delete(svcAttrs, svcProxyProto)
	} else if v, ok := svcAttrs[svcProxyProto]; ok && (len(v) != 1 || v[0] > ppMax) {
		return nil, unix.EINVAL // the attribute's netlink policy
	}
	if v := svcAttrs[svcEstTimeout]; (cmd == cmdNewService || cmd == cmdSetService) && len(v) == 4 &&
		binary.NativeEndian.Uint32(v) > estTimeoutMax {
		return nil, unix.EINVAL
	}
	i := slices.IndexFunc(k.services, func(s *service) bool { return s.key == key })
	if cmd == cmdNewService {
		if i >= 0 {
			return nil, unix.EEXIST
		}
		if errno := k.checkService(svcAttrs, nil); errno != 0 {
			return nil, errno
		}
		k.services = append(k.services, &service{key: key, af: af, attrs: svcAttrs})
		return nil, 0
	}
	if i < 0 {
		if cmd == cmdGetDest || cmd == cmdGetLaddr {
			return nil, 0 // the kernel dumps nothing for a missing service
		}
		return nil, unix.ESRCH
	}
	s := k.services[i]
	switch cmd {
	case cmdGetService:
		return [][]byte{k.serviceReply(s, true)}, 0
	case cmdSetService:
		for _, a := range []uint16{svcProxyProto, svcEstTimeout} {
			if _, ok := svcAttrs[a]; !ok && s.attrs[a] != nil {
				// absent: the edit keeps the service's PROXY protocol
				// version and ESTABLISHED timeout
				svcAttrs[a] = s.attrs[a]
			}
		}
		if errno := k.checkService(svcAttrs, s); errno != 0 {
			return nil, errno
		}
		for _, a := range []uint16{svcSchedName, svcFlags, svcTimeout, svcNetmask, svcProxyProto} {
			s.attrs[a] = svcAttrs[a]
		}
		for _, a := range []uint16{svcPEName, svcEstTimeout} {
			if v, ok := svcAttrs[a]; ok {
				s.attrs[a] = v
			} else {
				delete(s.attrs, a)
			}
		}
		return nil, 0
	case cmdDelService:
		k.services = slices.Delete(k.services, i, i+1)
		return nil, 0
	case cmdZero:
		return nil, 0
	case cmdGetDest:
		var out [][]byte
		for _, d := range s.dests {
			ae := netlink.NewAttributeEncoder()
			ae.Bytes(attrDest, destNest(d, true))
			out = append(out, genl(cmdNewDest, ae))
		}
		return out, 0
	case cmdNewDest, cmdSetDest, cmdDelDest:
		da, err := parse(attrs[attrDest])
		if err != nil || da[destAddr] == nil || len(da[destPort]) != 2 {
			return nil, unix.EINVAL
		}
		if k.opts.Stock && len(da[destFwdMethod]) == 4 && binary.NativeEndian.Uint32(da[destFwdMethod])&7 > 4 {
			return nil, unix.EINVAL
		}
		if af := destFamily(da, s.af); af != s.af && cmd != cmdDelDest {
			// ip_vs_genl_set_cmd: another family than the service's only
			// for tunnels, and not while a sync daemon runs
			if len(k.daemons) > 0 || len(da[destFwdMethod]) != 4 || binary.NativeEndian.Uint32(da[destFwdMethod]) != fwdTunnel {
				return nil, unix.EINVAL
			}
		}
		if cmd != cmdDelDest && proxyProtocol(s.attrs) != 0 && !fullNAT(da) {
			return nil, unix.EOPNOTSUPP // a PROXY protocol service takes FULLNAT real servers only
		}
		dk := fmt.Sprintf("%x/%x", pad16(da[destAddr]), da[destPort])
		j := slices.IndexFunc(s.dests, func(d *dest) bool { return d.key == dk })
		switch {
		case cmd == cmdNewDest && j >= 0:
			return nil, unix.EEXIST
		case cmd != cmdNewDest && j < 0:
			return nil, unix.ENOENT
		case cmd == cmdNewDest:
			if da[destAddrFamily] == nil {
				da[destAddrFamily] = binary.NativeEndian.AppendUint16(nil, s.af)
			}
			s.dests = append([]*dest{{key: dk, attrs: da}}, s.dests...)
		case cmd == cmdSetDest:
			for t, v := range da {
				s.dests[j].attrs[t] = v
			}
		default:
			s.dests = slices.Delete(s.dests, j, j+1)
		}
		return nil, 0
	case cmdGetLaddr:
		var out [][]byte
		for _, la := range s.laddrs {
			out = append(out, laddrReply(nil, la))
		}
		return out, 0
	case cmdNewLaddr, cmdDelLaddr:
		la, err := parse(attrs[attrLaddr])
		if err != nil || la[laddrAddr] == nil {
			return nil, unix.EINVAL
		}
		addr := pad16(la[laddrAddr])
		j := slices.IndexFunc(s.laddrs, func(b []byte) bool { return string(b) == string(addr) })
		switch {
		case cmd == cmdNewLaddr && j >= 0:
			return nil, unix.EEXIST
		case cmd == cmdDelLaddr && j < 0:
			return nil, unix.ENOENT
		case cmd == cmdNewLaddr:
			s.laddrs = append(s.laddrs, addr)
		default:
			s.laddrs = slices.Delete(s.laddrs, j, j+1)
		}
		return nil, 0
	}
	return nil, unix.EOPNOTSUPP
}

// destFamily is the family of destination attributes da of a service of
// family svcAF (the service's when the request has none).
func destFamily(da map[uint16][]byte, svcAF uint16) uint16 {
	if v := da[destAddrFamily]; len(v) == 2 && binary.NativeEndian.Uint16(v) != 0 {
		return binary.NativeEndian.Uint16(v)
	}
	return svcAF
}

// mixedFamilyDests reports whether a service has a destination of another
// family (k.mu held).
func (k *Kernel) mixedFamilyDests() bool {
	for _, s := range k.services {
		for _, d := range s.dests {
			if destFamily(d.attrs, s.af) != s.af {
				return true
			}
		}
	}
	return false
}

// daemonListed is the IPVS_CMD_ATTR_DAEMON nest the kernel lists for a
// daemon started with attributes da in state st, with the defaults it fills
// in (ip_vs_sync.c): the group 224.0.0.81, port 8848, TTL 1, and a message
// size for an interface MTU of 1500 (the fake has no interfaces), clamped
// when given. A request without interface or sync ID, or with a group that
// is not multicast, is EINVAL.
func daemonListed(st uint32, da map[uint16][]byte) ([]byte, unix.Errno) {
	if da[daemonMcastIfn] == nil || len(da[daemonSyncID]) != 4 {
		return nil, unix.EINVAL
	}
	group, hlen := []byte{224, 0, 0, 81}, uint32(20+8)
	groupAttr := uint16(daemonMcastGroup)
	if g := da[daemonMcastGroup]; g != nil {
		if len(g) != 4 || !netip.AddrFrom4([4]byte(g)).IsMulticast() {
			return nil, unix.EINVAL
		}
		group = g
	} else if g := da[daemonMcastGroup6]; g != nil {
		if len(g) < 16 || !netip.AddrFrom16([16]byte(g[:16])).IsMulticast() {
			return nil, unix.EINVAL
		}
		group, hlen, groupAttr = g[:16], 40+8, daemonMcastGroup6
	}
	minLen := uint32(1)
	if st == 2 { // backup
		minLen = 1024
	}
	maxLen := 1500 - hlen
	if v := da[daemonSyncMaxLen]; len(v) == 2 && binary.NativeEndian.Uint16(v) != 0 {
		maxLen = min(max(uint32(binary.NativeEndian.Uint16(v)), minLen), 65535-hlen)
	}
	port := uint16(8848)
	if v := da[daemonMcastPort]; len(v) == 2 && binary.NativeEndian.Uint16(v) != 0 {
		port = binary.NativeEndian.Uint16(v)
	}
	ttl := uint8(1)
	if v := da[daemonMcastTTL]; len(v) == 1 && v[0] != 0 {
		ttl = v[0]
	}
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(daemonState, st)
	ae.String(daemonMcastIfn, cstring(da[daemonMcastIfn]))
	ae.Bytes(daemonSyncID, da[daemonSyncID])
	ae.Uint16(daemonSyncMaxLen, uint16(maxLen))
	ae.Uint16(daemonMcastPort, port)
	ae.Uint8(daemonMcastTTL, ttl)
	ae.Bytes(groupAttr, group)
	b, _ := ae.Encode()
	return b, 0
}

// checkService checks the settings of a new service (cur nil) or of the
// changes to cur.
func (k *Kernel) checkService(a map[uint16][]byte, cur *service) unix.Errno {
	for _, t := range []uint16{svcSchedName, svcFlags, svcTimeout, svcNetmask} {
		if a[t] == nil {
			return unix.EINVAL
		}
	}
	if proxyProtocol(a) != 0 {
		// only on TCP (a fwmark service's header goes on its TCP
		// connections), and only with FULLNAT real servers
		if fwm := a[svcFWMark]; (len(fwm) != 4 || binary.NativeEndian.Uint32(fwm) == 0) &&
			binary.NativeEndian.Uint16(a[svcProtocol]) != protoTCP {
			return unix.EOPNOTSUPP
		}
		if cur != nil && slices.ContainsFunc(cur.dests, func(d *dest) bool { return !fullNAT(d.attrs) }) {
			return unix.EOPNOTSUPP
		}
	}
	if sched := cstring(a[svcSchedName]); sched != "none" && !slices.Contains(k.opts.Schedulers, sched) {
		return unix.ENOENT
	}
	if pe := cstring(a[svcPEName]); pe != "" && !slices.Contains(k.opts.PersistenceEngines, pe) {
		return unix.ENOENT
	}
	return 0
}

// proxyProtocol is the PROXY protocol version of service attributes a
// (0 when absent).
func proxyProtocol(a map[uint16][]byte) uint8 {
	if v := a[svcProxyProto]; len(v) == 1 {
		return v[0]
	}
	return 0
}

// fullNAT reports whether destination attributes da forward with FULLNAT.
func fullNAT(da map[uint16][]byte) bool {
	v := da[destFwdMethod]
	return len(v) == 4 && binary.NativeEndian.Uint32(v)&7 == fwdFullNAT
}

// serviceKey identifies a service: family and fwmark, or family,
// protocol, address and port.
// requestService parses a request's IPVS_CMD_ATTR_SERVICE nest: its
// attributes, key and family.
func requestService(nest []byte) (map[uint16][]byte, string, uint16, unix.Errno) {
	a, err := parse(nest)
	if err != nil {
		return nil, "", 0, unix.EINVAL
	}
	key, af, errno := serviceKey(a)
	return a, key, af, errno
}

func serviceKey(a map[uint16][]byte) (string, uint16, unix.Errno) {
	if len(a[svcAF]) != 2 {
		return "", 0, unix.EINVAL
	}
	af := binary.NativeEndian.Uint16(a[svcAF])
	if af != unix.AF_INET && af != unix.AF_INET6 {
		return "", 0, unix.EAFNOSUPPORT
	}
	if m := a[svcFWMark]; len(m) == 4 && binary.NativeEndian.Uint32(m) != 0 {
		return fmt.Sprintf("%d/fwm/%d", af, binary.NativeEndian.Uint32(m)), af, 0
	}
	if len(a[svcProtocol]) != 2 || a[svcAddr] == nil || len(a[svcPort]) != 2 {
		return "", 0, unix.EINVAL
	}
	return fmt.Sprintf("%d/%d/%x/%x", af, binary.NativeEndian.Uint16(a[svcProtocol]), pad16(a[svcAddr]), a[svcPort]), af, 0
}

// putServiceKey encodes a service's key as the kernel does: the family,
// then the firewall mark or the protocol, address and port.
func putServiceKey(in *netlink.AttributeEncoder, s *service) {
	in.Bytes(svcAF, s.attrs[svcAF])
	if m := s.attrs[svcFWMark]; len(m) == 4 && binary.NativeEndian.Uint32(m) != 0 {
		in.Bytes(svcFWMark, m)
	} else {
		in.Bytes(svcProtocol, s.attrs[svcProtocol])
		in.Bytes(svcAddr, pad16(s.attrs[svcAddr]))
		in.Bytes(svcPort, s.attrs[svcPort])
	}
}

// serviceReply is a service as the kernel lists it.
func (k *Kernel) serviceReply(s *service, stats bool) []byte {
	in := netlink.NewAttributeEncoder()
	putServiceKey(in, s)
	in.Bytes(svcSchedName, s.attrs[svcSchedName])
	if pe := s.attrs[svcPEName]; pe != nil {
		in.Bytes(svcPEName, pe)
	}
	var flags uint32
	if f := s.attrs[svcFlags]; len(f) == 8 {
		flags = binary.NativeEndian.Uint32(f[0:4]) & binary.NativeEndian.Uint32(f[4:8])
	}
	fb := binary.NativeEndian.AppendUint32(nil, flags|flagHashed)
	in.Bytes(svcFlags, binary.NativeEndian.AppendUint32(fb, ^uint32(0)))
	in.Bytes(svcTimeout, s.attrs[svcTimeout])
	in.Bytes(svcNetmask, s.attrs[svcNetmask])
	// the extension's attributes, reported only when set, before the
	// counters
	if e := s.attrs[svcEstTimeout]; len(e) == 4 && binary.NativeEndian.Uint32(e) != 0 && k.features.Has(ipvs.FeatureEstTimeout) {
		in.Bytes(svcEstTimeout, e)
	}
	if p := proxyProtocol(s.attrs); p != 0 {
		in.Uint8(svcProxyProto, p)
	}
	if stats {
		in.Bytes(svcStats, zeroStats(false))
		in.Bytes(svcStats64, zeroStats(true))
	}
	nb, _ := in.Encode()
	ae := netlink.NewAttributeEncoder()
	ae.Bytes(attrService, nb)
	return genl(cmdNewService, ae)
}

// getTable answers the extension's IPVS_CMD_GET_TABLE (k.mu held): each
// service as GET_SERVICE dumps it, followed by its destinations as
// GET_DEST dumps them, each with its service's key in IPVS_CMD_ATTR_SERVICE.
// A kernel without FeatureTableDump does not know the command, and the
// command has no answer but a dump: both are EOPNOTSUPP from genetlink.
// The whole dump is made under the lock, so it is never interrupted
// (NLM_F_DUMP_INTR). IPVS_CMD_ATTR_TABLE_FLAGS with IPVS_TABLE_F_NO_STATS
// (FeatureTableNoStats) leaves the counters out; a kernel without the
// feature refuses the attribute (EINVAL: genetlink's strict validation),
// and one with it refuses bits it does not know.
func (k *Kernel) getTable(dump bool, attrs map[uint16][]byte) ([][]byte, unix.Errno) {
	if !k.features.Has(ipvs.FeatureTableDump) || !dump {
		return nil, unix.EOPNOTSUPP
	}
	stats := true
	if f, ok := attrs[attrTableFlags]; ok {
		if !k.features.Has(ipvs.FeatureTableNoStats) || len(f) != 4 || binary.NativeEndian.Uint32(f)&^tableNoStats != 0 {
			return nil, unix.EINVAL
		}
		stats = binary.NativeEndian.Uint32(f)&tableNoStats == 0
	}
	var out [][]byte
	for s := range k.listed() {
		out = append(out, k.serviceReply(s, stats))
		key := serviceKeyNest(s)
		for _, d := range s.dests {
			ae := netlink.NewAttributeEncoder()
			ae.Bytes(attrService, key)
			ae.Bytes(attrDest, destNest(d, stats))
			out = append(out, genl(cmdNewDest, ae))
		}
		if k.features.Has(ipvs.FeatureTableLaddrs) {
			for _, la := range s.laddrs {
				out = append(out, laddrReply(key, la))
			}
		}
	}
	return out, 0
}

// laddrReply is a local address's IPVS_CMD_NEW_LADDR message, after the
// service's key when the table dump sends it (patch 0014).
func laddrReply(key, la []byte) []byte {
	in := netlink.NewAttributeEncoder()
	in.Bytes(laddrAddr, la)
	in.Uint64(laddrPortConflict, 0)
	in.Uint32(laddrConnCounts, 0)
	nb, _ := in.Encode()
	ae := netlink.NewAttributeEncoder()
	if key != nil {
		ae.Bytes(attrService, key)
	}
	ae.Bytes(attrLaddr|unix.NLA_F_NESTED, nb) // nla_nest_start, as our module
	return genl(cmdNewLaddr, ae)
}

// listed yields the services in the order the dumps list them (k.mu
// held): as the kernel, which walks its table of address services before
// its table of fwmark services, those with an address first, each kind in
// the order created (the kernel's is its hash table's).
func (k *Kernel) listed() iter.Seq[*service] {
	return func(yield func(*service) bool) {
		for _, fwmark := range []bool{false, true} {
			for _, s := range k.services {
				if isFWMark(s.attrs) == fwmark && !yield(s) {
					return
				}
			}
		}
	}
}

// isFWMark reports whether service attributes a name a fwmark service.
func isFWMark(a map[uint16][]byte) bool {
	m := a[svcFWMark]
	return len(m) == 4 && binary.NativeEndian.Uint32(m) != 0
}

// serviceKeyNest is the key of s as the table dump puts it in a
// destination's message: family, then the firewall mark or protocol,
// address and port.
func serviceKeyNest(s *service) []byte {
	in := netlink.NewAttributeEncoder()
	putServiceKey(in, s)
	b, _ := in.Encode()
	return b
}

// destNest is a destination's IPVS_CMD_ATTR_DEST nest as the kernel lists
// it.
func destNest(d *dest, stats bool) []byte {
	in := netlink.NewAttributeEncoder()
	// ip_vs_genl_fill_dest's attributes in its order, zero where not set
	for _, a := range []struct{ typ, size uint16 }{
		{destAddr, 16}, {destPort, 2}, {destFwdMethod, 4}, {destWeight, 4},
		{destTunType, 1}, {destTunPort, 2}, {destTunFlags, 2}, {destUThresh, 4}, {destLThresh, 4},
		{destActiveConns, 4}, {destInactConns, 4}, {destPersistConns, 4}, {destAddrFamily, 2},
	} {
		v := make([]byte, a.size)
		if a.typ < destActiveConns || a.typ > destPersistConns {
			copy(v, d.attrs[a.typ])
		}
		if a.typ == destFwdMethod {
			binary.NativeEndian.PutUint32(v, binary.NativeEndian.Uint32(v)&fwdMask)
		}
		in.Bytes(a.typ, v)
	}
	if stats {
		in.Bytes(destStats, zeroStats(false))
		in.Bytes(destStats64, zeroStats(true))
	}
	nb, _ := in.Encode()
	return nb
}

// zeroStats is an IPVS_*_ATTR_STATS(64) nest of zero counters.
func zeroStats(wide bool) []byte {
	ae := netlink.NewAttributeEncoder()
	for t := uint16(1); t <= 10; t++ {
		if wide {
			ae.Uint64(t, 0)
		} else if t >= 4 && t <= 5 {
			ae.Uint64(t, 0)
		} else {
			ae.Uint32(t, 0)
		}
	}
	b, _ := ae.Encode()
	return b
}

// pad16 returns an address as the kernel's 16-byte union nf_inet_addr.
func pad16(b []byte) []byte {
	out := make([]byte, 16)
	copy(out, b)
	return out
}

func genl(cmd uint8, ae *netlink.AttributeEncoder) []byte {
	b, _ := ae.Encode()
	return append([]byte{cmd, 1, 0, 0}, b...)
}

// parse decodes one level of attributes (the nest flag ignored; the last
// of a repeated type wins).
func parse(b []byte) (map[uint16][]byte, error) {
	out := map[uint16][]byte{}
	if b == nil {
		return nil, errors.New("missing nest")
	}
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, err
	}
	for ad.Next() {
		out[ad.Type()] = append([]byte(nil), ad.Bytes()...)
	}
	return out, ad.Err()
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
