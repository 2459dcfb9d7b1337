// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

// Commands, options and their legal combinations: ipvsadm 1.31's tables
// plus Alibaba's extension (local addresses, synproxy, ESTABLISHED
// timeout, FULLNAT) and ours (PROXY protocol, line numbers).

// Commands (index+1 into cmdNames).
const (
	cmdNone = iota
	cmdAdd
	cmdEdit
	cmdDel
	cmdFlush
	cmdList
	cmdAddDest
	cmdDelDest
	cmdEditDest
	cmdTimeout
	cmdStartDaemon
	cmdStopDaemon
	cmdRestore
	cmdSave
	cmdZero
	cmdAddLaddr
	cmdDelLaddr
	cmdGetLaddr
)

var cmdNames = []string{
	"add-service", "edit-service", "delete-service", "flush", "list",
	"add-server", "delete-server", "edit-server", "set", "start-daemon",
	"stop-daemon", "restore", "save", "zero",
	"add-laddr", "del-laddr", "get-laddr",
}

// Option bits, in the order ipvsadm checks them.
const (
	optNumeric = iota
	optConnection
	optService
	optScheduler
	optPersistent
	optNetmask
	optServer
	optForward
	optWeight
	optUThreshold
	optLThreshold
	optMcast
	optTimeout
	optDaemon
	optStats
	optRate
	optThresholds
	optPersistentConn
	optNoSort
	optSyncID
	optExact
	optOnePacket
	optPE
	optSchedFlags
	optMcastGroup
	optMcastPort
	optMcastTTL
	optSyncMaxLen
	optTunInfo
	optTunType
	optTunPort
	optTunNoCsum
	optTunCsum
	optTunRemCsum
	optLaddr
	optSynProxy
	optEstTimeout
	optProxyProtocol
	optLineNumbers
	numOpts
)

var optNames = [numOpts]string{
	"numeric", "connection", "service-address", "scheduler", "persistent",
	"netmask", "real-server", "forwarding-method", "weight", "u-threshold",
	"l-threshold", "mcast-interface", "timeout", "daemon", "stats", "rate",
	"thresholds", "persistent-conn", "nosort", "syncid", "exact", "ops", "pe",
	"sched-flags", "mcast-group", "mcast-port", "mcast-ttl", "sync-maxlen",
	"tun-info", "tun-type", "tun-port", "tun-nocsum", "tun-csum",
	"tun-remcsum", "local-address", "synproxy", "vsestablish-timeout",
	"proxy-protocol", "line-numbers",
}

// commandsVOptions: '+' compulsory, 'x' illegal, '1' exclusive, ' ' optional.
// Columns follow the option bits above.
var commandsVOptions = [...]string{
	cmdAdd - 1:         "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxxx   x",
	cmdEdit - 1:        "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxxx   x",
	cmdDel - 1:         "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdFlush - 1:       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdList - 1:        " 11xxxxxxxxx11       xxxxxxx xxxxxxxxxx",
	cmdAddDest - 1:     "xx+xxx+    xxxxxxxxxxxxxxxxxx     xxxxx",
	cmdDelDest - 1:     "xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdEditDest - 1:    "xx+xxx+    xxxxxxxxxxxxxxxxxx     xxxxx",
	cmdTimeout - 1:     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdStartDaemon - 1: "xxxxxxxxxxx xxxxxxx xxxx    xxxxxxxxxxx",
	cmdStopDaemon - 1:  "xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxxxxxxx",
	cmdRestore - 1:     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx ",
	cmdSave - 1:        " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdZero - 1:        "xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdAddLaddr - 1:    "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx+xxxx",
	cmdDelLaddr - 1:    "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx+xxxx",
	cmdGetLaddr - 1:    "xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
}

// Tunnel types and the tunnel options they accept (tun-port, nocsum,
// csum, remcsum).
var tunNames = [...]string{"ipip", "gue", "gre"}
var tunOpts = [...]int{optTunPort, optTunNoCsum, optTunCsum, optTunRemCsum}
var tunnelTypesVOptions = [...]string{
	"xxxx",
	"+111",
	"x11x",
}

// Option values returned by the tokenizer. Short options use their
// letter; long-only ones use tags above the ASCII range, as ipvsadm does.
const (
	tagSet = 128 + iota
	tagStartDaemon
	tagStopDaemon
	tagMcastInterface
	tagTimeout
	tagDaemon
	tagStats
	tagRate
	tagThresholds
	tagPersistentConn
	tagSort
	tagNoSort
	tagPE
	tagSCTPService
	tagMcastGroup
	tagMcastPort
	tagMcastTTL
	tagSyncMaxLen
	tagTunInfo
	tagTunType
	tagTunPort
	tagTunNoCsum
	tagTunCsum
	tagTunRemCsum
	tagFullNAT
	tagSchedFlags
	tagLineNumbers
	tagHelpExt
	tagProxyProtocol
)

// The two popt tables, built once.
var (
	tableSchedFlags = optionTable(false)
	tableFullNAT    = optionTable(true)
)

// optionTable builds the popt table. With fullnatB, -b means --fullnat
// (for -a/-e); otherwise it is --sched-flags with a value.
func optionTable(fullnatB bool) []optDef {
	t := []optDef{
		{"add-service", 'A', argNone, 'A'},
		{"edit-service", 'E', argNone, 'E'},
		{"delete-service", 'D', argNone, 'D'},
		{"clear", 'C', argNone, 'C'},
		{"list", 'L', argNone, 'L'},
		{"list", 'l', argNone, 'l'},
		{"zero", 'Z', argNone, 'Z'},
		{"add-server", 'a', argNone, 'a'},
		{"edit-server", 'e', argNone, 'e'},
		{"delete-server", 'd', argNone, 'd'},
		{"set", 0, argNone, tagSet},
		{"help", 'h', argNone, 'h'},
		{"version", 'v', argNone, 'v'},
		{"restore", 'R', argNone, 'R'},
		{"save", 'S', argNone, 'S'},
		{"start-daemon", 0, argRequired, tagStartDaemon},
		{"stop-daemon", 0, argRequired, tagStopDaemon},
		{"tcp-service", 't', argRequired, 't'},
		{"udp-service", 'u', argRequired, 'u'},
		{"sctp-service", 0, argRequired, tagSCTPService},
		{"fwmark-service", 'f', argRequired, 'f'},
		{"scheduler", 's', argRequired, 's'},
		{"persistent", 'p', argOptional, 'p'},
		{"netmask", 'M', argRequired, 'M'},
		{"real-server", 'r', argRequired, 'r'},
		{"masquerading", 'm', argNone, 'm'},
		{"ipip", 'i', argNone, 'i'},
		{"gatewaying", 'g', argNone, 'g'},
		{"weight", 'w', argRequired, 'w'},
		{"u-threshold", 'x', argRequired, 'x'},
		{"l-threshold", 'y', argRequired, 'y'},
		{"numeric", 'n', argNone, 'n'},
		{"connection", 'c', argNone, 'c'},
		{"mcast-interface", 0, argRequired, tagMcastInterface},
		{"syncid", 0, argRequired, 'I'},
		{"timeout", 0, argNone, tagTimeout},
		{"daemon", 0, argNone, tagDaemon},
		{"stats", 0, argNone, tagStats},
		{"rate", 0, argNone, tagRate},
		{"thresholds", 0, argNone, tagThresholds},
		{"persistent-conn", 0, argNone, tagPersistentConn},
		{"nosort", 0, argNone, tagNoSort},
		{"sort", 0, argNone, tagSort},
		{"exact", 'X', argNone, 'X'},
		{"ipv6", '6', argNone, '6'},
		{"ops", 'o', argNone, 'o'},
		{"pe", 0, argRequired, tagPE},
		{"sched-flags", 0, argRequired, tagSchedFlags},
		{"mcast-group", 0, argRequired, tagMcastGroup},
		{"mcast-port", 0, argRequired, tagMcastPort},
		{"mcast-ttl", 0, argRequired, tagMcastTTL},
		{"sync-maxlen", 0, argRequired, tagSyncMaxLen},
		{"tun-info", 0, argNone, tagTunInfo},
		{"tun-type", 0, argRequired, tagTunType},
		{"tun-port", 0, argRequired, tagTunPort},
		{"tun-nocsum", 0, argNone, tagTunNoCsum},
		{"tun-csum", 0, argNone, tagTunCsum},
		{"tun-remcsum", 0, argNone, tagTunRemCsum},
		// Alibaba's extension.
		{"add-laddr", 'P', argNone, 'P'},
		{"del-laddr", 'Q', argNone, 'Q'},
		{"get-laddr", 'G', argNone, 'G'},
		{"laddr", 'z', argRequired, 'z'},
		{"synproxy", 'j', argRequired, 'j'},
		{"vsestablish-timeout", 'V', argOptional, 'V'},
		{"fullnat", 0, argNone, tagFullNAT},
		// Ours: restore reports the failing line's number; the extensions' help
		// (-h stays 1.31's, which scripts parse); PROXY protocol insertion.
		{"line-numbers", 0, argNone, tagLineNumbers},
		{"help-ext", 0, argNone, tagHelpExt},
		{"proxy-protocol", 0, argRequired, tagProxyProtocol},
	}
	for i := range t {
		switch t[i].val {
		case tagSchedFlags:
			if !fullnatB {
				t[i].short = 'b'
			}
		case tagFullNAT:
			if fullnatB {
				t[i].short = 'b'
			}
		}
	}
	return t
}
