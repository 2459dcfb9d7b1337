// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"syscall"
)

const (
	maxTimeout        = 86400 * 31
	persistentTimeout = 360
	defSched          = "wlc"
	defMcastIfn       = "eth0"
	connProcFile      = "/proc/net/ip_vs_conn"
)

// Results of parseService (SERVICE_*).
const (
	serviceNone = 0
	serviceAddr = 1
	servicePort = 2
)

// exitCode unwinds to the top level like C's exit().
type exitCode int

// tool is one run of ipvsadm.
type tool struct {
	stdout   *bufio.Writer
	stderr   io.Writer
	stdin    *bufio.Reader
	be       backend
	inf      info
	res      *resolver
	connPath string
	posix    bool

	// lineNo is the restore line being processed (0 outside -R);
	// lineNumbers prefixes errors with it (--line-numbers).
	lineNo      int
	lineNumbers bool

	// pending are -R's changes waiting to go to the kernel as one batch;
	// they are sent before anything is printed, so messages keep their
	// order. lastOutcome is the result of the last change sent.
	pending     []pendingOp
	flushing    bool
	lastOutcome int

	// destScratch is the merge space of the listings' sorts of each
	// service's real servers.
	destScratch []dest
}

// pendingOp is a queued change and what is needed to report its failure.
type pendingOp struct {
	k    kop
	op   int
	ce   entry
	line int
}

const (
	// queuedResult is processOptions' result for a change left in the batch.
	queuedResult = 1
	maxPending   = 4096
)

// flush sends the pending changes and prints their errors in order.
func (t *tool) flush() {
	if len(t.pending) == 0 || t.flushing {
		return
	}
	t.flushing = true
	defer func() { t.flushing = false }()
	ops := make([]kop, len(t.pending))
	for i := range t.pending {
		ops[i] = t.pending[i].k
	}
	errs := t.be.(batcher).Apply(ops)
	saved := t.lineNo
	t.lastOutcome = 0
	for i, err := range errs {
		if err == nil {
			continue
		}
		p := &t.pending[i]
		t.lineNo = p.line
		t.printError(p.op, err, &p.ce)
		if i == len(errs)-1 {
			t.lastOutcome = -1
		}
	}
	t.lineNo = saved
	t.pending = t.pending[:0]
}

// batchable returns the change a command makes when it can wait in a
// batch: changes that need no read-back, and extension changes only when
// the module has the extension (without it the unbatched path names what
// is missing).
func (t *tool) batchable(ce *entry, options uint64) (kop, int, bool) {
	k := kop{Svc: ce.svc, Dest: ce.dest, Timeouts: ce.timeout, Laddr: ce.laddr}
	has := func(f uint32) bool { return t.inf.Features&f == f }
	switch ce.cmd {
	case cmdFlush:
		k.Kind = kopFlush
		return k, opOther, true
	case cmdAdd:
		k.Kind = kopAddService
		return k, opAddService, (ce.svc.Flags&svcSynProxy == 0 || has(featSynProxy)) &&
			(ce.svc.EstTimeout == 0 || has(featEstTimeout)) &&
			(ce.svc.ProxyProto == proxyProtoOff || has(featProxyProto))
	case cmdEdit:
		// As editService: what -E does not set, it keeps, where the
		// module has it; the kernel starts an edit from the service's
		// own flags, ESTABLISHED timeout and PROXY protocol version, so
		// no read-back is needed.
		k.Kind = kopEditService
		if ce.synproxy == 2 {
			k.Svc.Flags &^= svcSynProxy
		}
		ext := t.inf.Features&(featSynProxy|featEstTimeout|featProxyProto) != 0
		k.KeepSyn = ext && options&(1<<optSynProxy) == 0
		k.KeepEst = ext && options&(1<<optEstTimeout) == 0
		k.KeepProxy = ext && options&(1<<optProxyProtocol) == 0
		return k, opUpdateService, (ce.synproxy != 1 || has(featSynProxy)) &&
			(ce.svc.EstTimeout == 0 || has(featEstTimeout)) &&
			(ce.svc.ProxyProto == proxyProtoOff || has(featProxyProto))
	case cmdDel:
		k.Kind = kopDelService
		return k, opDelService, true
	case cmdZero:
		k.Kind = kopZeroAll
		if zeroOne(&ce.svc) {
			k.Kind = kopZeroService
		}
		return k, opZeroService, true
	case cmdAddDest, cmdEditDest:
		k.Kind = kopAddDest
		op := opAddDest
		if ce.cmd == cmdEditDest {
			k.Kind, op = kopEditDest, opUpdateDest
		}
		return k, op, ce.dest.FwdMethod&fwdMask != fwdFullNAT || has(featFullNAT)
	case cmdDelDest:
		k.Kind = kopDelDest
		return k, opDelDest, true
	case cmdAddLaddr:
		k.Kind = kopAddLaddr
		return k, opAddLaddr, has(featFullNAT)
	case cmdDelLaddr:
		k.Kind = kopDelLaddr
		return k, opDelLaddr, has(featFullNAT)
	case cmdTimeout:
		k.Kind = kopSetTimeouts
		return k, opOther, true
	}
	return k, 0, false
}

// zeroOne tells -Z of one service from -Z of all, as libipvs does.
func zeroOne(s *service) bool {
	return s.FWMark != 0 || (s.Addr.IsValid() && !s.Addr.IsUnspecified()) || s.Port != 0
}

// entry is ipvsadm's struct ipvs_command_entry plus the extension's fields.
type entry struct {
	cmd      int
	svc      service
	dest     dest
	timeout  timeouts
	daemon   daemon
	laddr    netip.Addr
	synproxy int // 0 not given, 1 enable, 2 disable
}

func (t *tool) exit(code int) { panic(exitCode(code)) }

// errPrefix runs before every message: it sends pending changes first
// and, with --line-numbers during -R, names the line.
func (t *tool) errPrefix() {
	t.flush()
	if t.lineNumbers && t.lineNo > 0 {
		t.eprintf(out.lineError, t.lineNo)
	}
}

// fail prints msg and a newline to stderr and exits with code.
func (t *tool) fail(code int, format string, a ...any) {
	t.errPrefix()
	t.eprintf(format, a...)
	t.eprintf("\n")
	t.exit(code)
}

func (t *tool) tryhelpExit(prog string, code int) {
	t.errPrefix()
	t.eprintf(out.tryHelp, prog, prog)
	t.exit(code)
}

// version prints the version line; the IPVS version is the one ipvsadm
// 1.31 was compiled with, not the kernel's.
func (t *tool) version() {
	t.flush()
	t.printf(out.version, 1, 2, 1)
}

func (t *tool) usageExit(prog string) {
	t.version()
	fmt.Fprintf(t.stdout, usageText, prog)
	t.exit(0)
}

func (t *tool) setOption(options *uint64, opt int) {
	bit := uint64(1) << opt
	if *options&bit != 0 {
		t.fail(2, "multiple '%s' options specified", optNames[opt])
	}
	*options |= bit
}

func optionToProtocol(c int) uint16 {
	switch c {
	case 't':
		return protoTCP
	case 'u':
		return protoUDP
	case tagSCTPService:
		return protoSCTP
	}
	return protoIP
}

func strIsDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if !cIsDigit(s[i]) {
			return false
		}
	}
	return true
}

// parseService is ipvsadm's parse_service.
func (t *tool) parseService(buf string, svc *service) int {
	if strIsDigit(buf) {
		return serviceNone
	}
	host := buf
	port := ""
	hasPort := false
	bracket := false
	if strings.HasPrefix(buf, "[") {
		inner := buf[1:]
		i := strings.IndexByte(inner, ']')
		if i < 0 {
			return serviceNone
		}
		after := inner[i+1:]
		if !strings.HasPrefix(after, ":") {
			return serviceNone
		}
		host, port, hasPort, bracket = inner[:i], after[1:], true, true
	}
	if a, ok := inetPton6(host); ok {
		svc.Addr = a
		svc.AF = afInet6
		svc.Netmask = 128
	} else {
		if bracket {
			hasPort = false
		}
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host, port, hasPort = host[:i], host[i+1:], true
		}
		if a, ok := inetAton(host); ok {
			svc.Addr = a
			svc.AF = afInet
		} else if a, ok := t.res.hostToAddr(host); ok {
			svc.Addr = a
			svc.AF = afInet
		} else {
			return serviceNone
		}
	}
	result := serviceAddr
	if hasPort {
		result |= servicePort
		if n := stringToNumber(port, 0, 65535); n != -1 {
			svc.Port = uint16(n)
		} else if p, ok := t.res.serviceToPort(port, svc.Protocol); ok {
			svc.Port = p
		} else {
			return serviceNone
		}
	}
	return result
}

func (t *tool) parseTimeout(buf *string, min, max int64) uint32 {
	if buf == nil {
		return persistentTimeout
	}
	i := stringToNumber(*buf, min, max)
	if i == -1 {
		t.fail(2, "invalid timeout value `%s' specified", *buf)
	}
	return uint32(i)
}

func (t *tool) parseFwmark(buf string) uint32 {
	v, rest, ok, erange := cStrtol(buf)
	if rest != "" || !ok || erange || v <= 0 || v > 0xffffffff {
		t.fail(2, "invalid fwmark value `%s' specified", buf)
	}
	return uint32(v)
}

// parseNetmask is parse_netmask: a dotted mask or a host name.
func (t *tool) parseNetmask(buf string) (uint32, bool) {
	a, ok := inetAton(buf)
	if !ok {
		a, ok = t.res.hostToAddr(buf)
	}
	if !ok {
		return 0, false
	}
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), true
}

func (t *tool) parseSchedFlags(sched, arg string) uint32 {
	if sched == "" {
		sched = defSched
	}
	var flags uint32
	for _, flag := range strings.Split(arg, ",") {
		if flag == "" {
			continue
		}
		switch flag {
		case "flag-1":
			flags |= svcSched1
		case "flag-2":
			flags |= svcSched2
		case "flag-3":
			flags |= svcSched3
		case "sh-fallback", "sh-port", "mh-fallback", "mh-port":
			if strings.HasSuffix(flag, "fallback") {
				flags |= svcSched1
			} else {
				flags |= svcSched2
			}
			if sched != flag[:2] {
				t.fail(2, "incompatible scheduler flag `%s'", flag)
			}
		default:
			t.fail(2, "invalid scheduler flag `%s'", flag)
		}
	}
	return flags
}

func parseTunType(s string) int {
	for i, n := range tunNames {
		if s == n {
			return i
		}
	}
	return -1
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// parseOptions is ipvsadm's parse_options; it returns -1 after a popt
// error in a later option.
func (t *tool) parseOptions(argv []string, ce *entry, options *uint64, format *uint) int {
	pc := newPopt(tableSchedFlags, argv[1:], t.posix)
	_, val, c := pc.nextOpt()
	if c < 0 {
		t.tryhelpExit(argv[0], -1)
	}
	switch c {
	case 'A':
		ce.cmd = cmdAdd
	case 'E':
		ce.cmd = cmdEdit
	case 'D':
		ce.cmd = cmdDel
	case 'a':
		ce.cmd = cmdAddDest
	case 'e':
		ce.cmd = cmdEditDest
	case 'd':
		ce.cmd = cmdDelDest
	case 'C':
		ce.cmd = cmdFlush
	case 'L', 'l':
		ce.cmd = cmdList
	case 'Z':
		ce.cmd = cmdZero
	case tagSet:
		ce.cmd = cmdTimeout
	case 'R':
		ce.cmd = cmdRestore
	case 'S':
		ce.cmd = cmdSave
	case 'P':
		ce.cmd = cmdAddLaddr
	case 'Q':
		ce.cmd = cmdDelLaddr
	case 'G':
		ce.cmd = cmdGetLaddr
	case tagStartDaemon, tagStopDaemon:
		ce.cmd = cmdStartDaemon
		if c == tagStopDaemon {
			ce.cmd = cmdStopDaemon
		}
		switch *val {
		case "master":
			ce.daemon.State = stateMaster
		case "backup":
			ce.daemon.State = stateBackup
		default:
			if c == tagStartDaemon {
				t.fail(2, "illegal start-daemon parameter specified")
			}
			t.fail(2, "illegal start_daemon specified")
		}
	case 'h':
		t.usageExit(argv[0])
	case tagHelpExt:
		t.version()
		fmt.Fprintf(t.stdout, usageExtText, argv[0])
		t.exit(0)
	case 'v':
		t.version()
		t.exit(0)
	default:
		t.tryhelpExit(argv[0], -1)
	}
	if ce.cmd == cmdAddDest || ce.cmd == cmdEditDest {
		// -b means --fullnat for real servers.
		pc.table = tableFullNAT
	}

	schedFlagsArg := ""
	for {
		_, val, c = pc.nextOpt()
		if c < 0 {
			break
		}
		switch c {
		case 't', 'u', tagSCTPService:
			t.setOption(options, optService)
			ce.svc.Protocol = optionToProtocol(c)
			if t.parseService(*val, &ce.svc)&serviceAddr == 0 {
				t.fail(2, "illegal virtual server address[:port] specified")
			}
		case 'f':
			t.setOption(options, optService)
			ce.svc.AF = afInet
			ce.svc.Protocol = protoTCP
			ce.svc.FWMark = t.parseFwmark(*val)
		case 's':
			t.setOption(options, optScheduler)
			ce.svc.Sched = truncate(*val, 15)
		case 'p':
			t.setOption(options, optPersistent)
			ce.svc.Flags |= svcPersistent
			ce.svc.Timeout = t.parseTimeout(val, 1, maxTimeout)
		case 'M':
			t.setOption(options, optNetmask)
			if ce.svc.AF != afInet6 {
				m, ok := t.parseNetmask(*val)
				if !ok {
					t.fail(2, "illegal virtual server persistent mask specified")
				}
				ce.svc.Netmask = m
			} else {
				n := cAtoi(*val)
				ce.svc.Netmask = uint32(n)
				if n < 1 || n > 128 {
					t.fail(2, "illegal ipv6 netmask specified")
				}
			}
		case 'r':
			t.setOption(options, optServer)
			td := ce.svc
			parse := t.parseService(*val, &td)
			ce.dest.AF = td.AF
			ce.dest.Addr = td.Addr
			ce.dest.Port = td.Port
			if parse&serviceAddr == 0 {
				t.fail(2, "illegal real server address[:port] specified")
			}
			if parse == serviceAddr {
				ce.dest.Port = ce.svc.Port
			}
		case 'i':
			t.setOption(options, optForward)
			ce.dest.FwdMethod = fwdTunnel
		case 'g':
			t.setOption(options, optForward)
			ce.dest.FwdMethod = fwdDroute
		case 'm':
			t.setOption(options, optForward)
			ce.dest.FwdMethod = fwdMasq
		case tagFullNAT:
			t.setOption(options, optForward)
			ce.dest.FwdMethod = fwdFullNAT
		case 'w':
			t.setOption(options, optWeight)
			n := stringToNumber(*val, 0, 0x7fffffff)
			if n == -1 {
				t.fail(2, "illegal weight specified")
			}
			ce.dest.Weight = int32(n)
		case 'x':
			t.setOption(options, optUThreshold)
			n := stringToNumber(*val, 0, 0x7fffffff)
			if n == -1 {
				t.fail(2, "illegal u_threshold specified")
			}
			ce.dest.UThresh = uint32(n)
		case 'y':
			t.setOption(options, optLThreshold)
			n := stringToNumber(*val, 0, 0x7fffffff)
			if n == -1 {
				t.fail(2, "illegal l_threshold specified")
			}
			ce.dest.LThresh = uint32(n)
		case 'c':
			t.setOption(options, optConnection)
		case 'n':
			t.setOption(options, optNumeric)
			*format |= fmtNumeric
		case tagMcastInterface:
			t.setOption(options, optMcast)
			ce.daemon.Ifname = truncate(*val, 15)
		case 'I':
			t.setOption(options, optSyncID)
			n := stringToNumber(*val, 0, 255)
			if n == -1 {
				t.fail(2, "illegal syncid specified")
			}
			ce.daemon.SyncID = uint32(n)
		case tagTimeout:
			t.setOption(options, optTimeout)
		case tagDaemon:
			t.setOption(options, optDaemon)
		case tagStats:
			t.setOption(options, optStats)
			*format |= fmtStats
		case tagRate:
			t.setOption(options, optRate)
			*format |= fmtRate
		case tagThresholds:
			t.setOption(options, optThresholds)
			*format |= fmtThresholds
		case tagPersistentConn:
			t.setOption(options, optPersistentConn)
			*format |= fmtPersistConn
		case tagNoSort:
			t.setOption(options, optNoSort)
			*format |= fmtNoSort
		case tagSort:
			// the default; accepted for compatibility
		case 'X':
			t.setOption(options, optExact)
			*format |= fmtExact
		case '6':
			if ce.svc.FWMark != 0 {
				ce.svc.AF = afInet6
				ce.svc.Netmask = 128
			} else {
				t.fail(2, "-6 used before -f\n")
			}
		case 'o':
			t.setOption(options, optOnePacket)
			ce.svc.Flags |= svcOnePacket
		case tagPE:
			t.setOption(options, optPE)
			ce.svc.PE = truncate(*val, 16)
		case tagSchedFlags:
			t.setOption(options, optSchedFlags)
			schedFlagsArg = truncate(*val, 127)
		case tagMcastGroup:
			t.setOption(options, optMcastGroup)
			if strings.Contains(*val, ":") {
				a, ok := inetPton6(*val)
				if !ok || a.Is4In6() || !a.IsMulticast() {
					t.fail(2, "invalid IPv6 mcast-group `%s'", *val)
				}
				ce.daemon.Group = a
			} else {
				a, ok := inetPton4(*val)
				if !ok || !a.IsMulticast() {
					t.fail(2, "invalid IPv4 mcast-group `%s'", *val)
				}
				ce.daemon.Group = a
			}
		case tagMcastPort:
			t.setOption(options, optMcastPort)
			n := stringToNumber(*val, 1, 65535)
			if n == -1 {
				t.fail(2, "illegal mcast-port specified")
			}
			ce.daemon.Port = uint16(n)
		case tagMcastTTL:
			t.setOption(options, optMcastTTL)
			n := stringToNumber(*val, 1, 255)
			if n == -1 {
				t.fail(2, "illegal mcast-ttl specified")
			}
			ce.daemon.TTL = uint8(n)
		case tagSyncMaxLen:
			t.setOption(options, optSyncMaxLen)
			n := stringToNumber(*val, 1, 65535-20-8)
			if n == -1 {
				t.fail(2, "illegal sync-maxlen specified")
			}
			ce.daemon.SyncMaxLen = uint16(n)
		case tagTunInfo:
			t.setOption(options, optTunInfo)
			*format |= fmtTunInfo
		case tagTunType:
			t.setOption(options, optTunType)
			n := parseTunType(*val)
			if n == -1 {
				t.fail(2, "illegal tunnel type specified")
			}
			ce.dest.TunType = uint8(n)
		case tagTunPort:
			t.setOption(options, optTunPort)
			n := stringToNumber(*val, 1, 65535)
			if n == -1 {
				t.fail(2, "illegal tunnel port specified")
			}
			ce.dest.TunPort = uint16(n)
		case tagTunNoCsum:
			t.setOption(options, optTunNoCsum)
			ce.dest.TunFlags |= tunNoCsum
		case tagTunCsum:
			t.setOption(options, optTunCsum)
			ce.dest.TunFlags |= tunCsum
		case tagTunRemCsum:
			t.setOption(options, optTunRemCsum)
			ce.dest.TunFlags |= tunRemCsum
		case 'z':
			t.setOption(options, optLaddr)
			tmp := service{Protocol: ce.svc.Protocol}
			if t.parseService(*val, &tmp)&serviceAddr == 0 {
				t.fail(2, "illegal local address[:port] specified")
			}
			ce.laddr = tmp.Addr
		case 'j':
			t.setOption(options, optSynProxy)
			switch {
			case strings.HasPrefix(*val, "enable"):
				ce.synproxy = 1
			case strings.HasPrefix(*val, "disable"):
				ce.synproxy = 2
			default:
				t.fail(2, "synproxy switch must be enable or disable")
			}
		case 'V':
			t.setOption(options, optEstTimeout)
			if val == nil || stringToNumber(*val, 0, maxTimeout) == 0 {
				t.fail(2, "vsestablish-timeout should not be zero")
			}
			n := stringToNumber(*val, 0, maxTimeout)
			if n == -1 {
				t.fail(2, "invalid vsestablish-timeout value `%s' specified", *val)
			}
			ce.svc.EstTimeout = uint32(n)
		case tagProxyProtocol:
			t.setOption(options, optProxyProtocol)
			switch *val {
			case "v1":
				ce.svc.ProxyProto = proxyProtoV1
			case "v2":
				ce.svc.ProxyProto = proxyProtoV2
			case "disable":
				ce.svc.ProxyProto = proxyProtoOff
			default:
				t.fail(2, "proxy-protocol must be v1, v2 or disable")
			}
		case tagLineNumbers:
			t.setOption(options, optLineNumbers)
		default:
			t.fail(2, "invalid option `%s'", pc.badOption())
		}
	}
	if c < -1 {
		t.errPrefix()
		t.eprintf(out.poptError, pc.badOption(), poptStrerror(c))
		return -1
	}
	if ce.cmd == cmdTimeout {
		a0, ok0 := pc.getArg()
		var a1, a2 string
		var ok1, ok2 bool
		if ok0 {
			a1, ok1 = pc.getArg()
		}
		if ok1 {
			a2, ok2 = pc.getArg()
		}
		if !ok2 {
			t.fail(2, "--set option requires 3 timeout values")
		}
		ce.timeout.TCP = t.parseTimeout(&a0, 0, maxTimeout)
		ce.timeout.TCPFin = t.parseTimeout(&a1, 0, maxTimeout)
		ce.timeout.UDP = t.parseTimeout(&a2, 0, maxTimeout)
	}
	if a, ok := pc.getArg(); ok {
		t.fail(2, "unexpected argument %s", a)
	}
	if schedFlagsArg != "" {
		ce.svc.Flags &^= svcSchedMask
		ce.svc.Flags |= t.parseSchedFlags(ce.svc.Sched, schedFlagsArg)
	}
	return 0
}

func (t *tool) genericOptCheck(command int, options uint64) {
	row := commandsVOptions[command-1]
	name := cmdNames[command-1]
	last, count := 0, 0
	for j := 0; j < numOpts; j++ {
		if options&(1<<j) == 0 {
			if row[j] == '+' {
				t.fail(2, "You need to supply the '%s' option for the '%s' command", optNames[j], name)
			}
			continue
		}
		if row[j] == 'x' {
			t.fail(2, "Illegal '%s' option with the '%s' command", optNames[j], name)
		}
		if row[j] == '1' {
			count++
			if count == 1 {
				last = j
				continue
			}
			t.fail(2, "The option '%s' conflicts with the '%s' option in the '%s' command", optNames[j], optNames[last], name)
		}
	}
}

func (t *tool) tunnelOptCheck(tunType uint8, options uint64) {
	row := tunnelTypesVOptions[tunType]
	name := tunNames[tunType]
	last, count := 0, 0
	for j, k := range tunOpts {
		if options&(1<<k) == 0 {
			if row[j] == '+' {
				t.fail(2, "You need to supply the '%s' option for the '%s' tunnel type", optNames[k], name)
			}
			continue
		}
		if row[j] == 'x' {
			t.fail(2, "Illegal '%s' option with the '%s' tunnel type", optNames[k], name)
		}
		if row[j] == '1' {
			count++
			if count == 1 {
				last = k
				continue
			}
			t.fail(2, "The option '%s' conflicts with the '%s' option in the '%s' tunnel type", optNames[k], optNames[last], name)
		}
	}
}

// processOptions is ipvsadm's process_options: 0 on success, -1 on failure.
func (t *tool) processOptions(argv []string, readingStdin bool) int {
	var ce entry
	var options uint64
	var format uint
	ce.dest.Weight = 1
	ce.dest.FwdMethod = fwdDroute
	ce.svc.Netmask = 0xffffffff

	if t.parseOptions(argv, &ce, &options, &format) != 0 {
		return -1
	}
	t.genericOptCheck(ce.cmd, options)

	if ce.cmd == cmdAdd || ce.cmd == cmdEdit {
		if ce.svc.FWMark == 0 && ce.svc.Port == 0 && ce.svc.Flags&svcPersistent == 0 {
			t.fail(2, "Zero port specified for non-persistent service")
		}
		if ce.svc.Flags&svcOnePacket != 0 && ce.svc.FWMark == 0 && ce.svc.Protocol != protoUDP {
			t.fail(2, "One-Packet Scheduling is only for UDP virtual services")
		}
		if ce.svc.Sched == "" {
			ce.svc.Sched = defSched
		}
		if ce.synproxy == 1 {
			ce.svc.Flags |= svcSynProxy
		}
	}
	if ce.cmd == cmdStartDaemon && ce.daemon.Ifname == "" {
		ce.daemon.Ifname = defMcastIfn
	}
	fwd := ce.dest.FwdMethod & fwdMask
	if ce.cmd == cmdAddDest || ce.cmd == cmdEditDest {
		if ce.svc.FWMark == 0 && (fwd == fwdTunnel || fwd == fwdDroute) {
			ce.dest.Port = ce.svc.Port
		}
		if ce.dest.AF != ce.svc.AF && fwd != fwdTunnel {
			t.fail(2, "Different address family is allowed only for tunneling servers")
		}
		tunOpts := uint64(1)<<optTunType | 1<<optTunPort | 1<<optTunNoCsum | 1<<optTunCsum | 1<<optTunRemCsum
		if options&tunOpts != 0 && fwd != fwdTunnel {
			t.fail(2, "Tunnel options conflict with forward method")
		}
		t.tunnelOptCheck(ce.dest.TunType, options)
	}
	if options&(1<<optLineNumbers) != 0 {
		t.lineNumbers = true
	}

	if readingStdin {
		if _, ok := t.be.(batcher); ok {
			if k, op, ok := t.batchable(&ce, options); ok {
				t.pending = append(t.pending, pendingOp{k: k, op: op, ce: ce, line: t.lineNo})
				if len(t.pending) >= maxPending {
					t.flush()
				}
				return queuedResult
			}
		}
	}
	t.flush()

	var err error
	op := opOther
	switch ce.cmd {
	case cmdList:
		has := func(o int) bool { return options&(1<<o) != 0 }
		if ((has(optConnection) || has(optTimeout) || has(optDaemon)) &&
			(has(optStats) || has(optRate) || has(optThresholds))) ||
			((has(optTimeout) || has(optDaemon)) && has(optPersistentConn)) {
			t.fail(2, "options conflicts in the list command")
		}
		switch {
		case has(optConnection):
			t.listConn(format)
		case has(optService):
			t.listService(&ce.svc, format)
		case has(optTimeout):
			t.listTimeout()
		case has(optDaemon):
			t.listDaemon()
		default:
			t.listAll(format)
		}
		return 0
	case cmdRestore:
		return t.restoreTable(argv, readingStdin)
	case cmdSave:
		t.listAll(format | fmtRule)
		return 0
	case cmdGetLaddr:
		return t.listLaddrs(&ce.svc, options&(1<<optService) != 0)
	case cmdFlush:
		err = t.be.Flush()
	case cmdAdd:
		op = opAddService
		err = t.be.AddService(ce.svc)
	case cmdEdit:
		op = opUpdateService
		err = t.editService(&ce, options)
	case cmdDel:
		op = opDelService
		err = t.be.DelService(ce.svc)
	case cmdZero:
		op = opZeroService
		if zeroOne(&ce.svc) {
			err = t.be.ZeroService(ce.svc)
		} else {
			err = t.be.ZeroAll()
		}
	case cmdAddDest:
		op = opAddDest
		err = t.be.AddDest(ce.svc, ce.dest)
	case cmdEditDest:
		op = opUpdateDest
		err = t.be.EditDest(ce.svc, ce.dest)
	case cmdDelDest:
		op = opDelDest
		err = t.be.DelDest(ce.svc, ce.dest)
	case cmdTimeout:
		err = t.be.SetTimeouts(ce.timeout)
	case cmdStartDaemon:
		op = opStartDaemon
		err = t.be.StartDaemon(ce.daemon)
	case cmdStopDaemon:
		op = opStopDaemon
		err = t.be.StopDaemon(ce.daemon)
	case cmdAddLaddr:
		op = opAddLaddr
		err = t.be.AddLocalAddr(ce.svc, ce.laddr)
	case cmdDelLaddr:
		op = opDelLaddr
		err = t.be.DelLocalAddr(ce.svc, ce.laddr)
	}
	if err != nil {
		t.printError(op, err, &ce)
		return -1
	}
	return 0
}

// editService is -E: upstream replaces every field; extension settings
// not given on the command line are kept as they are.
func (t *tool) editService(ce *entry, options uint64) error {
	svc := ce.svc
	if ce.synproxy == 2 {
		svc.Flags &^= svcSynProxy
	}
	keepSyn := options&(1<<optSynProxy) == 0
	keepEst := options&(1<<optEstTimeout) == 0
	keepProxy := options&(1<<optProxyProtocol) == 0
	if t.inf.Features&(featSynProxy|featEstTimeout|featProxyProto) != 0 && (keepSyn || keepEst || keepProxy) {
		if cur, err := t.be.Service(svc); err == nil {
			if keepSyn {
				svc.Flags |= cur.Flags & svcSynProxy
			}
			if keepEst {
				svc.EstTimeout = cur.EstTimeout
			}
			if keepProxy {
				svc.ProxyProto = cur.ProxyProto
			}
		}
	}
	return t.be.EditService(svc)
}

// Operations for the error table (ipvs_strerror's function column).
const (
	opOther = iota
	opAddService
	opUpdateService
	opDelService
	opZeroService
	opAddDest
	opUpdateDest
	opDelDest
	opStartDaemon
	opStopDaemon
	opGetServices
	opGetDests
	opGetService
	opAddLaddr
	opDelLaddr
	opGetLaddrs
)

// The kernel refuses SYNPROXY (our module's EPROTONOSUPPORT) where it cannot work: on a
// service that is not TCP, or with real servers whose replies do not pass the director.
// Likewise the PROXY protocol (our module's EOPNOTSUPP, which the stock module never answers
// to these operations): on a service that is not TCP, or with real servers that are not
// FULLNAT.
const (
	synproxyServiceText = "SYNPROXY needs a TCP service whose real servers are all NAT (-m) or FULLNAT (-b)"
	synproxyDestText    = "A SYNPROXY service takes NAT (-m) or FULLNAT (-b) real servers only"
	proxyServiceText    = "PROXY protocol needs a TCP service whose real servers are all FULLNAT (-b)"
	proxyDestText       = "A PROXY protocol service takes FULLNAT (-b) real servers only"
)

var errTable = []struct {
	op    int
	errno syscall.Errno
	msg   string
}{
	{opAddService, syscall.EEXIST, "Service already exists"},
	{opAddService, syscall.ENOENT, "Scheduler or persistence engine not found"},
	{opAddService, syscall.EPROTONOSUPPORT, synproxyServiceText},
	{opAddService, syscall.EOPNOTSUPP, proxyServiceText},
	{opUpdateService, syscall.ESRCH, "No such service"},
	{opUpdateService, syscall.ENOENT, "Scheduler or persistence engine not found"},
	{opUpdateService, syscall.EPROTONOSUPPORT, synproxyServiceText},
	{opUpdateService, syscall.EOPNOTSUPP, proxyServiceText},
	{opDelService, syscall.ESRCH, "No such service"},
	{opZeroService, syscall.ESRCH, "No such service"},
	{opAddDest, syscall.ESRCH, "Service not defined"},
	{opAddDest, syscall.EEXIST, "Destination already exists"},
	{opAddDest, syscall.EPROTONOSUPPORT, synproxyDestText},
	{opAddDest, syscall.EOPNOTSUPP, proxyDestText},
	{opUpdateDest, syscall.ESRCH, "Service not defined"},
	{opUpdateDest, syscall.ENOENT, "No such destination"},
	{opUpdateDest, syscall.EPROTONOSUPPORT, synproxyDestText},
	{opUpdateDest, syscall.EOPNOTSUPP, proxyDestText},
	{opDelDest, syscall.ESRCH, "Service not defined"},
	{opDelDest, syscall.ENOENT, "No such destination"},
	{opStartDaemon, syscall.EEXIST, "Daemon has already run"},
	{opStopDaemon, syscall.ESRCH, "No daemon is running"},
	{opGetServices, syscall.ESRCH, "No such service"},
	{opGetDests, syscall.ESRCH, "No such service"},
	{opGetService, syscall.ESRCH, "No such service"},
	{opAddLaddr, syscall.ESRCH, "Service not defined"},
	{opAddLaddr, syscall.EEXIST, "Local address already exists"},
	{opAddLaddr, syscall.EADDRNOTAVAIL, "Local address is not an address of this director"},
	{opDelLaddr, syscall.ESRCH, "Service not defined"},
	{opDelLaddr, syscall.ENOENT, "No such Local address"},
	{opGetLaddrs, syscall.ESRCH, "Service not defined"},
	{opOther, syscall.EPERM, "Permission denied (you must be root)"},
	{opOther, syscall.EINVAL, "Invalid operation.  Possibly wrong module version, address not unicast, ..."},
	{opOther, syscall.ENOPROTOOPT, "Protocol not available"},
	{opOther, syscall.ENOMEM, "Memory allocation problem"},
	{opOther, syscall.EOPNOTSUPP, "Operation not supported with IPv6"},
	{opOther, syscall.EAFNOSUPPORT, "Operation not supported with specified address family"},
	{opOther, syscall.EMSGSIZE, "Module is wrong version"},
}

// ipvsStrerror is libipvs's ipvs_strerror.
func ipvsStrerror(op int, errno syscall.Errno) string {
	for _, e := range errTable {
		if (e.op == opOther || e.op == op) && e.errno == errno {
			return e.msg
		}
	}
	s := errno.Error()
	if s != "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return s
}

// errorText is the message ipvsadm prints for a failed operation.
func (t *tool) errorText(op int, err error, ce *entry) string {
	if errors.Is(err, errNotSupported) {
		return notSupportedText(op, ce)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return ipvsStrerror(op, errno)
	}
	return err.Error()
}

func (t *tool) printError(op int, err error, ce *entry) {
	t.errPrefix()
	t.eprintf(out.errorLine, t.errorText(op, err, ce))
}

// notSupportedText names the missing extension and the module to load.
func notSupportedText(op int, ce *entry) string {
	what := "this operation"
	switch {
	case op == opAddLaddr || op == opDelLaddr || op == opGetLaddrs:
		what = "local addresses (-P/-Q/-G)"
	case ce != nil && ce.dest.FwdMethod == fwdFullNAT && (op == opAddDest || op == opUpdateDest):
		what = "FULLNAT forwarding (-b)"
	case ce != nil && ce.svc.Flags&svcSynProxy != 0:
		what = "synproxy (-j)"
	case ce != nil && ce.svc.EstTimeout != 0:
		what = "the per-service established timeout (-V)"
	case ce != nil && ce.svc.ProxyProto != proxyProtoOff:
		what = "the PROXY protocol (--proxy-protocol)"
	}
	return what + " needs the fullnat ip_vs module (kmod/): the running ip_vs module does not provide it"
}
