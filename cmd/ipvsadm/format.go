// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

// Every line ipvsadm prints, as one table of formats. The strings are
// ipvsadm 1.31's output formats (with %d for C's %u and %i), plus the
// extension's additions. appendf (printf.go) prints them.

// Listing format flags (FMT_*).
const (
	fmtNumeric     uint = 0x0001
	fmtRule        uint = 0x0002
	fmtStats       uint = 0x0004
	fmtRate        uint = 0x0008
	fmtThresholds  uint = 0x0010
	fmtPersistConn uint = 0x0020
	fmtNoSort      uint = 0x0040
	fmtExact       uint = 0x0080
	fmtTunInfo     uint = 0x0100
)

var out = struct {
	header string

	titleDefault     string
	titleTunInfo     string
	titleStats       string
	titleRate        string
	titleThresholds  string
	titlePersistConn string

	addrPort   string
	addrPort6  string
	svcFWM     string
	svcFWM6    string
	svcRuleFWM string
	svcRuleFW6 string
	svcName    string
	svcRule    string

	svcNamePadded string
	svcSched      string
	svcSchedFlags string
	svcPersistent string
	svcMask       string
	svcMask6      string
	svcPE         string
	svcOps        string
	svcSynProxy   string
	svcProxyProto string
	eol           string

	ruleSvc        string
	rulePersistent string
	ruleMask       string
	ruleMask6      string
	rulePE         string
	ruleOps        string
	ruleSchedFlags string
	ruleSynProxy   string
	ruleEstTimeout string
	ruleProxyProto string
	ruleDest       string
	ruleDestIPIP   string
	ruleDestGUE    string
	ruleDestGRE    string
	ruleLaddr      string

	tunInfoGUE string

	destDefault     string
	destTunInfo     string
	destStatsName   string
	destRate        string
	destThresholds  string
	destPersistConn string

	numExact string
	num      string
	numK     string
	numM     string
	numG     string
	numT     string

	timeout string

	daemon       string
	daemonMaxLen string
	daemonGroup  string
	daemonPort   string
	daemonTTL    string
	daemonEnd    string

	connHeader  string
	connTitle   string
	connTitlePE string
	connExpire  string
	connLine    string
	connLinePE  string

	laddrTitle string
	laddrSvc   string
	laddrLine  string

	version   string
	tryHelp   string
	poptError string
	errorLine string
	lineError string
}{
	header: "IP Virtual Server version %d.%d.%d (size=%d)\n",

	titleDefault: "Prot LocalAddress:Port Scheduler Flags\n" +
		"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
	titleTunInfo: "Prot LocalAddress:Port Scheduler Flags\n" +
		"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
	titleStats:       "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
	titleRate:        "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
	titleThresholds:  "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n",
	titlePersistConn: "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n",

	addrPort:   "%s:%s",
	addrPort6:  "[%s]:%s",
	svcFWM:     "FWM  %d",
	svcFWM6:    "FWM  %d IPv6",
	svcRuleFWM: "-f %d",
	svcRuleFW6: "-f %d -6",
	svcName:    "%-4s %s",
	svcRule:    "%s %s",

	svcNamePadded: "%-33s",
	svcSched:      "%s %s",
	svcSchedFlags: " (%s)",
	svcPersistent: " persistent %d",
	svcMask:       " mask %s",
	svcMask6:      " mask %d",
	svcPE:         " pe %s",
	svcOps:        " ops",
	svcSynProxy:   " synproxy",
	svcProxyProto: " proxy-protocol v%d",
	eol:           "\n",

	ruleSvc:        "-A %s -s %s",
	rulePersistent: " -p %d",
	ruleMask:       " -M %s",
	ruleMask6:      " -M %d",
	rulePE:         " --pe %s",
	ruleOps:        " -o",
	ruleSchedFlags: " -b %s",
	ruleSynProxy:   " -j enable",
	ruleEstTimeout: " -V %d",
	ruleProxyProto: " --proxy-protocol v%d",
	ruleDest:       "-a %s -r %s %s -w %d\n",
	ruleDestIPIP:   "-a %s -r %s %s -w %d --tun-type %s\n",
	ruleDestGUE:    "-a %s -r %s %s -w %d --tun-type %s --tun-port %d %s\n",
	ruleDestGRE:    "-a %s -r %s %s -w %d --tun-type %s %s\n",
	ruleLaddr:      "-P %s -z %s\n",

	tunInfoGUE: "gue:%d:%s",

	destDefault:     "  -> %-28s %-7s %-6d %-10d %-10d\n",
	destTunInfo:     "  -> %-28s %-7s %-13s %-6d %-10d %-10d\n",
	destStatsName:   "  -> %-28s",
	destRate:        "  -> %-28s %8d %8d %8d",
	destThresholds:  "  -> %-28s %-10d %-10d %-10d %-10d\n",
	destPersistConn: "  -> %-28s %-9d %-11d %-10d %-10d\n",

	numExact: "%*d",
	num:      "%9d",
	numK:     "%8dK",
	numM:     "%8dM",
	numG:     "%8dG",
	numT:     "%8dT",

	timeout: "Timeout (tcp tcpfin udp): %d %d %d\n",

	daemon:       "%s sync daemon (mcast=%s, syncid=%d",
	daemonMaxLen: ", maxlen=%d",
	daemonGroup:  ", group=%s",
	daemonPort:   ", port=%d",
	daemonTTL:    ", ttl=%d",
	daemonEnd:    ")\n",

	connHeader:  "IPVS connection entries\n",
	connTitle:   "pro expire %-11s %-18s %-18s %s\n",
	connTitlePE: "pro expire %-11s %-18s %-18s %-18s %-16s %s\n",
	connExpire:  "%02d:%02d",
	connLine:    "%-3s %-6s %-11s %-18s %-18s %s\n",
	connLinePE:  "%-3s %-6s %-11s %-18s %-18s %-16s %-18s %s\n",

	laddrTitle: "%-20s %-8s %-20s %-10s %-10s\n",
	laddrSvc:   "%-20s %-8d \n",
	laddrLine:  "%-20s %-8s %-20s %-10d %-10d\n",

	version:   "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v%d.%d.%d)\n",
	tryHelp:   "Try `%s -h' or '%s --help' for more information.\n",
	poptError: "%s: %s\n",
	errorLine: "%s\n",
	lineError: "line %d: ",
}

// usageExtText is ipvsadm --help-ext after the version line: the options of Alibaba's LVS
// extension, which need the fullnat ip_vs module; %[1]s is argv[0]. (-h prints 1.31's help
// unchanged: scripts parse it.)
const usageExtText = `Extensions (FULLNAT, local addresses, SYNPROXY, PROXY protocol; they need the fullnat
ip_vs module):
  %[1]s -A|E virtual-service [options] [-j enable|disable] [-V [seconds]]
        [--proxy-protocol v1|v2|disable]
  %[1]s -a|e virtual-service -r server-address -b [-w weight] [-x upper] [-y lower]
  %[1]s -P|Q virtual-service -z local-address
  %[1]s -G [virtual-service]
  %[1]s -R --line-numbers

  --fullnat      -b                   FULLNAT real server (with -a|e; with -A|E, -b
                                      stays --sched-flags)
  --add-laddr    -P                   add a local address to a FULLNAT service
  --del-laddr    -Q                   delete a local address from a service
  --get-laddr    -G                   list the local addresses
  --laddr        -z local-address     the local address of -P|Q
  --synproxy     -j enable|disable    SYNPROXY on a TCP service (NAT or FULLNAT)
  --vsestablish-timeout -V [seconds]  the service's own timeout of established
                                      connections (1-2678400)
  --proxy-protocol v1|v2|disable      insert a PROXY protocol header (v1 text, v2
                                      binary) with the client's address into each
                                      connection to the real servers (a TCP or
                                      fwmark service with FULLNAT real servers)
  --line-numbers                      with -R, name the number of a failing line
  --help-ext                          display this help message

See ipvsadm(8).
`

// usageText is ipvsadm -h after the version line; %[1]s is argv[0].
const usageText = `Usage:
  %[1]s -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]
  %[1]s -D virtual-service
  %[1]s -C
  %[1]s -R
  %[1]s -S [-n]
  %[1]s -a|e virtual-service -r server-address [options]
  %[1]s -d virtual-service -r server-address
  %[1]s -L|l [virtual-service] [options]
  %[1]s -Z [virtual-service]
  %[1]s --set tcp tcpfin udp
  %[1]s --start-daemon {master|backup} [daemon-options]
  %[1]s --stop-daemon {master|backup}
  %[1]s -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --start-daemon              start connection sync daemon
  --stop-daemon               stop connection sync daemon
  --help            -h        display this help message

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --sctp-service    service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero

Options:
  --ipv6         -6                   fwmark entry uses IPv6
  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh,
                                      the default scheduler is wlc.
  --pe            engine              alternate persistence engine may be sip,
                                      not set by default.
  --persistent   -p [timeout]         persistent service
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --tun-type      type                one of ipip|gue|gre,
                                      the default tunnel type is ipip.
  --tun-port      port                tunnel destination port
  --tun-nocsum                        tunnel encapsulation without checksum
  --tun-csum                          tunnel encapsulation with checksum
  --tun-remcsum                       tunnel encapsulation with remote checksum
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --tun-info                          output of tunnel information
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --ops          -o                   one-packet scheduling
  --numeric      -n                   numeric output of addresses and ports
  --sched-flags  -b flags             scheduler flags (comma-separated)
Daemon Options:
  --syncid sid                        syncid for connection sync (default=255)
  --sync-maxlen length                Max sync message length (default=1472)
  --mcast-interface interface         multicast interface for connection sync
  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)
  --mcast-port port                   UDP port (default=8848)
  --mcast-ttl ttl                     Multicast TTL (default=1)
`
