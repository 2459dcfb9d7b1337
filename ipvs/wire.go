// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

// Generic netlink family, commands and attributes of IPVS (uapi
// linux/ip_vs.h) plus the extension of wire-protocol.md.
const (
	familyName    = "IPVS"
	familyVersion = 1
)

// Commands.
const (
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
	// extension
	cmdNewLaddr = 18
	cmdDelLaddr = 19
	cmdGetLaddr = 20
	cmdGetTable = 21 // dump of every service with its destinations
	cmdGetConn  = 22 // dump of connections (request and replies)
)

// Top-level attributes (IPVS_CMD_ATTR_*).
const (
	cmdAttrService       = 1
	cmdAttrDest          = 2
	cmdAttrDaemon        = 3
	cmdAttrTimeoutTCP    = 4
	cmdAttrTimeoutTCPFin = 5
	cmdAttrTimeoutUDP    = 6
	cmdAttrLaddr         = 7 // extension
	cmdAttrConn          = 8 // extension
	cmdAttrTableFlags    = 9 // extension: tableFlag* bits of GET_TABLE (u32)
)

// tableFlagNoStats (IPVS_TABLE_F_NO_STATS) has GET_TABLE leave out the
// counters.
const tableFlagNoStats = 0x1

// Service attributes (IPVS_SVC_ATTR_*).
const (
	svcAttrAF         = 1
	svcAttrProtocol   = 2
	svcAttrAddr       = 3
	svcAttrPort       = 4
	svcAttrFWMark     = 5
	svcAttrSchedName  = 6
	svcAttrFlags      = 7
	svcAttrTimeout    = 8
	svcAttrNetmask    = 9
	svcAttrStats      = 10
	svcAttrPEName     = 11
	svcAttrStats64    = 12
	svcAttrEstTimeout = 13 // extension
	// extension: NLA_U8, 0 off, 1 v1, 2 v2; sent back only when non-zero
	svcAttrProxyProtocol = 14
)

// Destination attributes (IPVS_DEST_ATTR_*).
const (
	destAttrAddr         = 1
	destAttrPort         = 2
	destAttrFwdMethod    = 3
	destAttrWeight       = 4
	destAttrUThresh      = 5
	destAttrLThresh      = 6
	destAttrActiveConns  = 7
	destAttrInactConns   = 8
	destAttrPersistConns = 9
	destAttrStats        = 10
	destAttrAddrFamily   = 11
	destAttrStats64      = 12
	destAttrTunType      = 13
	destAttrTunPort      = 14
	destAttrTunFlags     = 15
)

// Daemon attributes (IPVS_DAEMON_ATTR_*).
const (
	daemonAttrState       = 1
	daemonAttrMcastIfn    = 2
	daemonAttrSyncID      = 3
	daemonAttrSyncMaxLen  = 4
	daemonAttrMcastGroup  = 5
	daemonAttrMcastGroup6 = 6
	daemonAttrMcastPort   = 7
	daemonAttrMcastTTL    = 8
)

// Stats attributes (IPVS_STATS_ATTR_*).
const (
	statsAttrConns    = 1
	statsAttrInPkts   = 2
	statsAttrOutPkts  = 3
	statsAttrInBytes  = 4
	statsAttrOutBytes = 5
	statsAttrCPS      = 6
	statsAttrInPPS    = 7
	statsAttrOutPPS   = 8
	statsAttrInBPS    = 9
	statsAttrOutBPS   = 10
	statsAttrPad      = 11
)

// Info attributes (IPVS_INFO_ATTR_*).
const (
	infoAttrVersion     = 1
	infoAttrConnTabSize = 2
	infoAttrFeatures    = 3 // extension
)

// Local-address attributes (extension, IPVS_LADDR_ATTR_*).
const (
	laddrAttrAddr         = 1
	laddrAttrPortConflict = 2
	laddrAttrConnCounts   = 3
)

// Connection attributes (IPVS_CONN_ATTR_*, extension).
const (
	connAttrAF       = 1
	connAttrProtocol = 2
	connAttrCAddr    = 3
	connAttrCPort    = 4
	connAttrVAddr    = 5
	connAttrVPort    = 6
	connAttrDAddr    = 7
	connAttrDPort    = 8
	connAttrDAF      = 9
	connAttrFlags    = 10
	connAttrState    = 11
	connAttrExpires  = 12
	connAttrTimeout  = 13
	connAttrFWMark   = 14
	connAttrLAddr    = 15
	connAttrLPort    = 16
	connAttrSynProxy = 17
	connAttrPEName   = 18
	connAttrPEData   = 19

	// connSynProxyAnswered in connAttrSynProxy: the real server answered.
	connSynProxyAnswered = 0x1
)

// Name limits (IP_VS_SCHEDNAME_MAXLEN etc., including the NUL).
const (
	schedNameMax = 16
	peNameMax    = 16
	ifNameMax    = 16
)
