// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Family is an address family as IPVS uses it (AF_INET or AF_INET6).
type Family uint16

// Address families.
const (
	// FamilyUnspec lets the library derive the family from an address.
	FamilyUnspec Family = 0
	// INET is AF_INET (IPv4).
	INET Family = 2
	// INET6 is AF_INET6 (IPv6).
	INET6 Family = 10
)

// String returns "inet", "inet6" or the number.
func (f Family) String() string {
	switch f {
	case INET:
		return "inet"
	case INET6:
		return "inet6"
	case FamilyUnspec:
		return "unspec"
	}
	return fmt.Sprintf("Family(%d)", uint16(f))
}

// Protocol is the IP protocol of a virtual service.
type Protocol uint16

// Protocols IPVS balances.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

// String returns "TCP", "UDP", "SCTP" or the number.
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return fmt.Sprintf("Protocol(%d)", uint16(p))
}

// ServiceFlags are the IP_VS_SVC_F_* bits of a service.
type ServiceFlags uint32

// Service flags.
const (
	// FlagPersistent marks a persistent service (set with a Timeout).
	FlagPersistent ServiceFlags = 0x0001
	// FlagHashed is kernel-internal; the kernel sets it on every listed service.
	FlagHashed ServiceFlags = 0x0002
	// FlagOnePacket enables one-packet scheduling (UDP).
	FlagOnePacket ServiceFlags = 0x0004
	// FlagSched1 is scheduler flag 1 (sh-fallback, mh-fallback).
	FlagSched1 ServiceFlags = 0x0008
	// FlagSched2 is scheduler flag 2 (sh-port, mh-port).
	FlagSched2 ServiceFlags = 0x0010
	// FlagSched3 is scheduler flag 3.
	FlagSched3 ServiceFlags = 0x0020
	// FlagSynProxy enables SYNPROXY on the service (extension, needs FeatureSynProxy).
	FlagSynProxy ServiceFlags = 0x8000

	// FlagSHFallback is the sh scheduler's fallback flag (= FlagSched1).
	FlagSHFallback = FlagSched1
	// FlagSHPort is the sh scheduler's port flag (= FlagSched2).
	FlagSHPort = FlagSched2
	// FlagMHFallback is the mh scheduler's fallback flag (= FlagSched1).
	FlagMHFallback = FlagSched1
	// FlagMHPort is the mh scheduler's port flag (= FlagSched2).
	FlagMHPort = FlagSched2
)

var serviceFlagNames = []struct {
	f    ServiceFlags
	name string
}{
	{FlagPersistent, "persistent"},
	{FlagHashed, "hashed"},
	{FlagOnePacket, "one-packet"},
	{FlagSched1, "sched1"},
	{FlagSched2, "sched2"},
	{FlagSched3, "sched3"},
	{FlagSynProxy, "synproxy"},
}

// String lists the set flags separated by "|".
func (f ServiceFlags) String() string {
	var parts []string
	rest := f
	for _, n := range serviceFlagNames {
		if f&n.f != 0 {
			parts = append(parts, n.name)
			rest &^= n.f
		}
	}
	if rest != 0 {
		parts = append(parts, fmt.Sprintf("0x%x", uint32(rest)))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}

// ForwardMethod is how a destination receives packets (IP_VS_CONN_F_FWD_MASK).
type ForwardMethod uint32

// Forwarding methods.
const (
	Masquerade  ForwardMethod = 0
	Local       ForwardMethod = 1
	Tunnel      ForwardMethod = 2
	DirectRoute ForwardMethod = 3
	Bypass      ForwardMethod = 4
	// FullNAT is the extension's full NAT method (needs FeatureFullNAT).
	FullNAT ForwardMethod = 5
)

// String returns ipvsadm's forward names (Masq, Local, Tunnel, Route, Bypass, FullNat).
func (m ForwardMethod) String() string {
	switch m {
	case Masquerade:
		return "Masq"
	case Local:
		return "Local"
	case Tunnel:
		return "Tunnel"
	case DirectRoute:
		return "Route"
	case Bypass:
		return "Bypass"
	case FullNAT:
		return "FullNat"
	}
	return fmt.Sprintf("ForwardMethod(%d)", uint32(m))
}

// TunnelType is the encapsulation of a Tunnel destination.
type TunnelType uint8

// Tunnel types.
const (
	TunnelIPIP TunnelType = 0
	TunnelGUE  TunnelType = 1
	TunnelGRE  TunnelType = 2
)

// String returns "ipip", "gue", "gre" or the number.
func (t TunnelType) String() string {
	switch t {
	case TunnelIPIP:
		return "ipip"
	case TunnelGUE:
		return "gue"
	case TunnelGRE:
		return "gre"
	}
	return fmt.Sprintf("TunnelType(%d)", uint8(t))
}

// TunnelFlags are the tunnel checksum flags (IP_VS_TUNNEL_ENCAP_FLAG_*).
type TunnelFlags uint16

// Tunnel flags. TunnelNoChecksum is the zero value.
const (
	TunnelNoChecksum     TunnelFlags = 0
	TunnelChecksum       TunnelFlags = 1 << 0
	TunnelRemoteChecksum TunnelFlags = 1 << 1
)

// Stats are the counters and rate estimates of a service or destination.
// They are read-only: the kernel ignores them in requests.
type Stats struct {
	Connections uint64
	PacketsIn   uint64
	PacketsOut  uint64
	BytesIn     uint64
	BytesOut    uint64
	CPS         uint64
	PPSIn       uint64
	PPSOut      uint64
	BPSIn       uint64
	BPSOut      uint64
}

// Service is a virtual service. It is identified either by FWMark (when
// non-zero) and Family, or by Family, Protocol, Address and Port.
type Service struct {
	// Family is INET or INET6. When zero it is taken from Address, and a
	// fwmark service without an Address defaults to INET.
	Family   Family
	Protocol Protocol
	Address  netip.Addr
	Port     uint16
	// FWMark, when non-zero, makes this a firewall-mark service; Protocol,
	// Address and Port are then ignored (the kernel reports them as zero).
	FWMark uint32

	// Scheduler is the scheduler name ("wlc", "rr", ...); empty means "wlc"
	// when creating or updating.
	Scheduler string
	// Flags are the service flags. Create and Update replace all flags.
	Flags ServiceFlags
	// Timeout is the persistence timeout in seconds (with FlagPersistent).
	Timeout uint32
	// Netmask is the persistence granularity. For IPv4 it is the mask as
	// a number (0xffffff00 = 255.255.255.0); for IPv6 it is the prefix
	// length (1..128). Zero means a full mask (0xffffffff or 128).
	Netmask uint32
	// PEName is the persistence engine ("sip"), or empty.
	PEName string
	// EstablishedTimeout is the per-service TCP ESTABLISHED timeout in
	// seconds, 0 = the global default (extension, needs FeatureEstTimeout).
	EstablishedTimeout uint32
	// ProxyProtocol is the PROXY protocol header the director inserts at
	// the start of each connection's client-to-server byte stream
	// (extension, needs FeatureProxyProtocol unless off). Only a TCP (or
	// fwmark) service whose real servers are all FullNAT may have it.
	ProxyProtocol ProxyProtocol

	// Stats are the kernel's 32-bit counters (read-only).
	Stats Stats
	// Stats64 are the kernel's 64-bit counters (read-only; zero on kernels
	// that do not send them).
	Stats64 Stats
}

// ProxyProtocol is the PROXY protocol version a service inserts
// (IPVS_SVC_ATTR_PROXY_PROTOCOL): the header carries the client's address
// and port and the virtual address and port to real servers that read it
// (nginx's "listen ... proxy_protocol", haproxy's "accept-proxy").
type ProxyProtocol uint8

// PROXY protocol versions.
const (
	// ProxyProtocolOff inserts nothing (the default).
	ProxyProtocolOff ProxyProtocol = 0
	// ProxyProtocolV1 inserts the human-readable header ("PROXY TCP4 ...\r\n").
	ProxyProtocolV1 ProxyProtocol = 1
	// ProxyProtocolV2 inserts the binary header.
	ProxyProtocolV2 ProxyProtocol = 2
)

// String returns "off", "v1", "v2" or the number.
func (p ProxyProtocol) String() string {
	switch p {
	case ProxyProtocolOff:
		return "off"
	case ProxyProtocolV1:
		return "v1"
	case ProxyProtocolV2:
		return "v2"
	}
	return fmt.Sprintf("ProxyProtocol(%d)", uint8(p))
}

// Destination is a real server of a service.
type Destination struct {
	// Family is the destination's address family; zero = from Address.
	Family        Family
	Address       netip.Addr
	Port          uint16
	ForwardMethod ForwardMethod
	// Weight must be >= 0; 0 quiesces the destination.
	Weight         int32
	UpperThreshold uint32
	LowerThreshold uint32

	// ActiveConns, InactiveConns and PersistConns are read-only counters.
	ActiveConns   uint32
	InactiveConns uint32
	PersistConns  uint32

	TunnelType  TunnelType
	TunnelPort  uint16
	TunnelFlags TunnelFlags

	// Stats and Stats64 are read-only, as in Service.
	Stats   Stats
	Stats64 Stats
}

// LocalAddress is a FULLNAT local address of a service (extension).
type LocalAddress struct {
	Address netip.Addr
	// PortConflicts and Connections are read-only counters.
	PortConflicts uint64
	Connections   uint32
}

// Timeouts are the global protocol timeouts. On SetTimeouts, a zero field
// leaves that timeout unchanged. The kernel works in whole seconds.
type Timeouts struct {
	TCP    time.Duration
	TCPFin time.Duration
	UDP    time.Duration
}

// DaemonState selects the role of a connection-sync daemon.
type DaemonState uint32

// Daemon states.
const (
	DaemonMaster DaemonState = 1
	DaemonBackup DaemonState = 2
)

// String returns "master", "backup" or the number.
func (s DaemonState) String() string {
	switch s {
	case DaemonMaster:
		return "master"
	case DaemonBackup:
		return "backup"
	}
	return fmt.Sprintf("DaemonState(%d)", uint32(s))
}

// Daemon is a connection-synchronisation daemon.
type Daemon struct {
	State     DaemonState
	Interface string
	SyncID    uint32
	// The fields below are optional on StartDaemon (zero = kernel default).
	SyncMaxLen uint16
	McastGroup netip.Addr
	McastPort  uint16
	McastTTL   uint8
}

// Version is the IPVS version the kernel reports.
type Version struct {
	Major, Minor, Patch uint8
}

// String returns "major.minor.patch".
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Features is the extension feature bit set of IPVS_INFO_ATTR_FEATURES.
// Stock kernels report none.
type Features uint32

// Extension features.
const (
	// FeatureFullNAT: the FULLNAT forwarding method and local addresses.
	FeatureFullNAT Features = 0x1
	// FeatureSynProxy: the SYNPROXY service flag.
	FeatureSynProxy Features = 0x2
	// FeatureEstTimeout: the per-service ESTABLISHED timeout.
	FeatureEstTimeout Features = 0x4
	// FeatureTableDump: IPVS_CMD_GET_TABLE, every service with its
	// destinations in one dump (ServicesWithDestinations uses it).
	FeatureTableDump Features = 0x8
	// FeatureProxyProtocol: the per-service PROXY protocol insertion
	// (Service.ProxyProtocol).
	FeatureProxyProtocol Features = 0x10
	// FeatureSyncFullNAT: the connection sync daemons carry FULLNAT and
	// SYNPROXY connections (their local address and port, sequence
	// offsets), so that a backup director can take them over.
	FeatureSyncFullNAT Features = 0x20
	// FeatureConnDump: IPVS_CMD_GET_CONN, the connection table over
	// netlink (Client.Connections uses it, else it reads /proc).
	FeatureConnDump Features = 0x40
	// FeatureTableLaddrs: IPVS_CMD_GET_TABLE lists each service's local
	// addresses too (ServiceDestinations.LocalAddresses).
	FeatureTableLaddrs Features = 0x80
	// FeatureTableNoStats: IPVS_CMD_GET_TABLE can leave the counters out
	// (ServicesWithDestinations with WithoutStats).
	FeatureTableNoStats Features = 0x100
)

// Has reports whether all bits of want are set.
func (f Features) Has(want Features) bool { return f&want == want }

// String lists the features separated by "|".
func (f Features) String() string {
	var parts []string
	if f&FeatureFullNAT != 0 {
		parts = append(parts, "fullnat")
	}
	if f&FeatureSynProxy != 0 {
		parts = append(parts, "synproxy")
	}
	if f&FeatureEstTimeout != 0 {
		parts = append(parts, "est-timeout")
	}
	if f&FeatureTableDump != 0 {
		parts = append(parts, "table-dump")
	}
	if f&FeatureProxyProtocol != 0 {
		parts = append(parts, "proxy-protocol")
	}
	if f&FeatureSyncFullNAT != 0 {
		parts = append(parts, "sync-fullnat")
	}
	if f&FeatureConnDump != 0 {
		parts = append(parts, "conn-dump")
	}
	if f&FeatureTableLaddrs != 0 {
		parts = append(parts, "table-laddrs")
	}
	if f&FeatureTableNoStats != 0 {
		parts = append(parts, "table-no-stats")
	}
	if rest := f &^ (FeatureFullNAT | FeatureSynProxy | FeatureEstTimeout | FeatureTableDump | FeatureProxyProtocol |
		FeatureSyncFullNAT | FeatureConnDump | FeatureTableLaddrs | FeatureTableNoStats); rest != 0 {
		parts = append(parts, fmt.Sprintf("0x%x", uint32(rest)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// Info is what GET_INFO reports.
type Info struct {
	Version       Version
	ConnTableSize uint32
	Features      Features
}

// String identifies the service: "TCP 192.0.2.1:80", "UDP [2001:db8::1]:53"
// or "FWM 7" ("FWM 7 inet6" for an IPv6 fwmark service).
func (s Service) String() string {
	if s.FWMark != 0 {
		if s.family() == INET6 {
			return fmt.Sprintf("FWM %d inet6", s.FWMark)
		}
		return fmt.Sprintf("FWM %d", s.FWMark)
	}
	return s.Protocol.String() + " " + netip.AddrPortFrom(s.Address, s.Port).String()
}

// String returns the destination's address and port.
func (d Destination) String() string {
	return netip.AddrPortFrom(d.Address, d.Port).String()
}
