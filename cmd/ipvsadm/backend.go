// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"net/netip"
)

// Address families as the kernel numbers them.
const (
	afUnspec uint16 = 0
	afInet   uint16 = 2
	afInet6  uint16 = 10
)

// IP protocols.
const (
	protoIP   uint16 = 0
	protoTCP  uint16 = 6
	protoUDP  uint16 = 17
	protoSCTP uint16 = 132
)

// Service flags (IP_VS_SVC_F_*).
const (
	svcPersistent uint32 = 0x0001
	svcHashed     uint32 = 0x0002
	svcOnePacket  uint32 = 0x0004
	svcSched1     uint32 = 0x0008
	svcSched2     uint32 = 0x0010
	svcSched3     uint32 = 0x0020
	svcSynProxy   uint32 = 0x8000
	svcSchedMask         = svcSched1 | svcSched2 | svcSched3
)

// Forwarding methods (IP_VS_CONN_F_FWD_MASK values).
const (
	fwdMasq     uint32 = 0
	fwdLocal    uint32 = 1
	fwdTunnel   uint32 = 2
	fwdDroute   uint32 = 3
	fwdBypass   uint32 = 4
	fwdFullNAT  uint32 = 5
	fwdMask     uint32 = 0x7
	tunIPIP     uint8  = 0
	tunGUE      uint8  = 1
	tunGRE      uint8  = 2
	tunNoCsum   uint16 = 0
	tunCsum     uint16 = 1
	tunRemCsum  uint16 = 2
	stateMaster uint32 = 1
	stateBackup uint32 = 2
)

// Extension feature bits (IPVS_INFO_ATTR_FEATURES).
const (
	featFullNAT    uint32 = 0x1
	featSynProxy   uint32 = 0x2
	featEstTimeout uint32 = 0x4
	featProxyProto uint32 = 0x10
	// featTableLaddrs: the table dump lists each service's local addresses.
	featTableLaddrs uint32 = 0x80
)

// PROXY protocol versions of a service (IPVS_SVC_ATTR_PROXY_PROTOCOL).
const (
	proxyProtoOff uint8 = 0
	proxyProtoV1  uint8 = 1
	proxyProtoV2  uint8 = 2
)

// stats are the counters of a service or destination, as ipvsadm keeps them.
type stats struct {
	Conns, InPkts, OutPkts, InBytes, OutBytes uint64
	CPS, InPPS, OutPPS, InBPS, OutBPS         uint64
}

// service is a virtual service as ipvsadm's command entry holds it.
type service struct {
	AF       uint16
	Protocol uint16
	// Addr is the service address; the zero Addr stands for the all-zero address.
	Addr   netip.Addr
	Port   uint16
	FWMark uint32
	Sched  string
	PE     string
	Flags  uint32
	// Timeout is the persistence timeout in seconds.
	Timeout uint32
	// Netmask is, for IPv4, the mask as a number (0xffffff00 is
	// 255.255.255.0) and, for IPv6, the prefix length.
	Netmask uint32
	// EstTimeout is the per-service ESTABLISHED timeout (extension).
	EstTimeout uint32
	// ProxyProto is the PROXY protocol version the service inserts,
	// proxyProtoOff, V1 or V2 (extension).
	ProxyProto uint8
	Stats      stats
}

// dest is a real server.
type dest struct {
	AF        uint16
	Addr      netip.Addr
	Port      uint16
	FwdMethod uint32
	Weight    int32
	UThresh   uint32
	LThresh   uint32
	Active    uint32
	Inactive  uint32
	Persist   uint32
	TunType   uint8
	TunPort   uint16
	TunFlags  uint16
	Stats     stats
}

// laddr is a FULLNAT local address (extension).
type laddr struct {
	Addr          netip.Addr
	PortConflicts uint64
	Conns         uint32
}

// timeouts are the global timeouts in seconds.
type timeouts struct {
	TCP, TCPFin, UDP uint32
}

// daemon is a connection synchronisation daemon.
type daemon struct {
	State      uint32
	Ifname     string
	SyncID     uint32
	SyncMaxLen uint16
	Group      netip.Addr
	Port       uint16
	TTL        uint8
}

// info is what GET_INFO reports.
type info struct {
	Version  uint32
	Size     uint32
	Features uint32
}

// errNotSupported is returned by a backend when a request needs an
// extension feature the running module lacks.
var errNotSupported = errors.New("not supported by the running IPVS module")

// backend is the kernel side of ipvsadm. Errors from the kernel must wrap
// the syscall.Errno so that ipvsadm can print 1.31's messages.
type backend interface {
	Info() (info, error)
	Services() ([]service, error)
	Service(key service) (service, error)
	Dests(svc service) ([]dest, error)
	AddService(svc service) error
	EditService(svc service) error
	DelService(svc service) error
	ZeroService(svc service) error
	ZeroAll() error
	AddDest(svc service, d dest) error
	EditDest(svc service, d dest) error
	DelDest(svc service, d dest) error
	Flush() error
	Timeouts() (timeouts, error)
	SetTimeouts(t timeouts) error
	Daemons() ([]daemon, error)
	StartDaemon(d daemon) error
	StopDaemon(d daemon) error
	LocalAddrs(svc service) ([]laddr, error)
	AddLocalAddr(svc service, a netip.Addr) error
	DelLocalAddr(svc service, a netip.Addr) error
	Close() error
}

// Kinds of queued changes (kop.Kind).
const (
	kopAddService = iota + 1
	kopEditService
	kopDelService
	kopZeroService
	kopZeroAll
	kopAddDest
	kopEditDest
	kopDelDest
	kopFlush
	kopSetTimeouts
	kopAddLaddr
	kopDelLaddr
)

// kop is one change of a batch.
type kop struct {
	Kind     int
	Svc      service
	Dest     dest
	Timeouts timeouts
	Laddr    netip.Addr
	// KeepSyn, KeepEst and KeepProxy (kopEditService) leave the
	// service's SYNPROXY flag, ESTABLISHED timeout and PROXY protocol
	// version as the kernel has them.
	KeepSyn, KeepEst, KeepProxy bool
}

// batcher is implemented by backends that can send many changes at once
// (pipelined); -R uses it. Apply returns one error (or nil) per change,
// and applies every change independently, in order.
type batcher interface {
	Apply(ops []kop) []error
}

// tableLister is implemented by backends that list every service with
// its destinations in one call (in parallel); -L and -S use it. With
// featTableLaddrs the entries have their local addresses too. Without
// stats the counters may be left zero (a listing that prints none).
type tableLister interface {
	ServicesWithDests(stats bool) ([]svcDests, error)
}
