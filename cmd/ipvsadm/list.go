// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// kernError prints a kernel error as ipvsadm does and exits with code.
func (t *tool) kernError(op int, err error, code int) {
	t.errPrefix()
	t.eprintf(out.errorLine, t.errorText(op, err, nil))
	t.exit(code)
}

// ntop formats a as glibc's inet_ntop does. It differs from netip only
// for the deprecated IPv4-compatible form (::a.b.c.d).
func ntop(a netip.Addr) string {
	var buf [64]byte
	return string(appendNtop(buf[:0], a))
}

// appendNtop appends ntop(a) to b.
func appendNtop(b []byte, a netip.Addr) []byte {
	if a.Is6() && !a.Is4In6() {
		b16 := a.As16()
		zero := true
		for _, x := range b16[:12] {
			if x != 0 {
				zero = false
			}
		}
		if zero && (b16[12] != 0 || b16[13] != 0) {
			return netip.AddrFrom4([4]byte{b16[12], b16[13], b16[14], b16[15]}).AppendTo(append(b, "::"...))
		}
	}
	return a.AppendTo(b)
}

func addrString(af uint16, a netip.Addr) string {
	var buf [64]byte
	return string(appendAddr(buf[:0], af, a))
}

// appendAddr appends a as ipvsadm prints an address of family af.
func appendAddr(b []byte, af uint16, a netip.Addr) []byte {
	if !a.IsValid() {
		if af == afInet6 {
			return append(b, "::"...)
		}
		return append(b, "0.0.0.0"...)
	}
	if af == afInet && a.Is6() {
		b16 := a.As16()
		return netip.AddrFrom4([4]byte{b16[0], b16[1], b16[2], b16[3]}).AppendTo(b)
	}
	if af != afInet && a.Is4() {
		b4 := a.As4()
		var b16 [16]byte
		copy(b16[:], b4[:])
		return appendNtop(b, netip.AddrFrom16(b16))
	}
	return appendNtop(b, a)
}

// addrportToAnyname formats addr:port, with names unless fmtNumeric.
func (t *tool) addrportToAnyname(af uint16, a netip.Addr, port uint16, proto uint16, format uint) string {
	var buf [64]byte
	return string(t.appendAddrport(buf[:0], af, a, port, proto, format))
}

// appendAddrport appends addrportToAnyname's result to b.
func (t *tool) appendAddrport(b []byte, af uint16, a netip.Addr, port uint16, proto uint16, format uint) []byte {
	var hbuf [64]byte
	var pbuf [32]byte
	host := appendAddr(hbuf[:0], af, a)
	ps := strconv.AppendUint(pbuf[:0], uint64(port), 10)
	if format&fmtNumeric == 0 {
		if name, ok := t.res.addrToHost(hostAddr(af, a)); ok {
			host = append(host[:0], name...)
		}
		if name, ok := t.res.portToService(port, proto); ok {
			ps = append(ps[:0], name...)
		}
	}
	f := out.addrPort6
	if af == afInet {
		f = out.addrPort
	}
	start := len(b)
	b = appendf(b, f, host, ps)
	// ipvsadm formats into a 60-byte buffer.
	if len(b)-start > 59 {
		b = b[:start+59]
	}
	return b
}

func hostAddr(af uint16, a netip.Addr) netip.Addr {
	s := addrString(af, a)
	r, _ := netip.ParseAddr(s)
	return r
}

func (t *tool) printLargenum(i uint64, format uint) {
	if format&fmtExact != 0 {
		n := len(strconv.FormatUint(i, 10))
		w := n + 1
		if n <= 8 {
			w = 9
		}
		t.printf(out.numExact, w, i)
		return
	}
	switch {
	case i < 100000000:
		t.printf(out.num, i)
	case i < 1000000000:
		t.printf(out.numK, i/1000)
	case i < 100000000000:
		t.printf(out.numM, i/1000000)
	case i < 100000000000000:
		t.printf(out.numG, i/1000000000)
	default:
		t.printf(out.numT, i/1000000000000)
	}
}

func schedFlagsString(se *service) string {
	var f []string
	switch se.Sched {
	case "sh", "mh":
		if se.Flags&svcSched1 != 0 {
			f = append(f, se.Sched+"-fallback")
		}
		if se.Flags&svcSched2 != 0 {
			f = append(f, se.Sched+"-port")
		}
	default:
		for i, b := range []uint32{svcSched1, svcSched2, svcSched3} {
			if se.Flags&b != 0 {
				f = append(f, "flag-"+strconv.Itoa(i+1))
			}
		}
	}
	return strings.Join(f, ",")
}

func (t *tool) printTitle(format uint) {
	switch {
	case format&fmtStats != 0:
		t.printf(out.titleStats, "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case format&fmtRate != 0:
		t.printf(out.titleRate, "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	case format&fmtThresholds != 0:
		t.printf(out.titleThresholds, "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
	case format&fmtPersistConn != 0:
		t.printf(out.titlePersistConn, "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn")
	case format&fmtTunInfo != 0:
		t.printf(out.titleTunInfo)
	case format&fmtRule == 0:
		t.printf(out.titleDefault)
	}
}

func protocolName(p uint16) string {
	switch p {
	case protoTCP:
		return "TCP"
	case protoUDP:
		return "UDP"
	case protoSCTP:
		return "SCTP"
	}
	return "?"
}

func optionFromProtocol(p uint16) string {
	switch p {
	case protoTCP:
		return "-t"
	case protoUDP:
		return "-u"
	case protoSCTP:
		return "--sctp-service"
	}
	return "--xxx-service"
}

func fwdName(m uint32) string {
	switch m & fwdMask {
	case fwdMasq:
		return "Masq"
	case fwdLocal:
		return "Local"
	case fwdTunnel:
		return "Tunnel"
	case fwdDroute:
		return "Route"
	case fwdFullNAT:
		return "FullNat"
	}
	return "(null)"
}

func fwdSwitch(m uint32) string {
	switch m & fwdMask {
	case fwdMasq:
		return "-m"
	case fwdTunnel:
		return "-i"
	case fwdLocal, fwdDroute:
		return "-g"
	case fwdFullNAT:
		return "-b"
	}
	return "(null)"
}

var tunFlagNames = [...]string{"-c", "+c", "r+c"}
var tunFlagOpts = [...]string{"--tun-nocsum", "--tun-csum", "--tun-remcsum"}

func tunFlagIndex(f uint16) int {
	if int(f) < len(tunFlagNames) {
		return int(f)
	}
	return 0
}

func fwdTunInfo(e *dest) string {
	if e.FwdMethod&fwdMask != fwdTunnel {
		return "n/a"
	}
	switch e.TunType {
	case tunIPIP:
		return "ipip"
	case tunGUE:
		return truncate(sprintf(out.tunInfoGUE, e.TunPort, tunFlagNames[tunFlagIndex(e.TunFlags)]), 15)
	case tunGRE:
		return "gre:" + tunFlagNames[tunFlagIndex(e.TunFlags)]
	}
	return "n/a"
}

// svcName is the service column (or, with fmtRule, the -t/-u/-f part).
func (t *tool) svcName(se *service, format uint) string {
	if se.FWMark != 0 {
		f := out.svcFWM
		switch {
		case format&fmtRule != 0 && se.AF == afInet6:
			f = out.svcRuleFW6
		case format&fmtRule != 0:
			f = out.svcRuleFWM
		case se.AF == afInet6:
			f = out.svcFWM6
		}
		return sprintf(f, int32(se.FWMark))
	}
	var vbuf, sbuf [128]byte
	vname := t.appendAddrport(vbuf[:0], se.AF, se.Addr, se.Port, se.Protocol, format)
	if format&fmtRule != 0 {
		return string(appendf(sbuf[:0], out.svcRule, optionFromProtocol(se.Protocol), vname))
	}
	s := appendf(sbuf[:0], out.svcName, protocolName(se.Protocol), vname)
	if se.AF != afInet6 && len(s) > 33 {
		s = s[:33]
	}
	return string(s)
}

// printServiceEntry prints a service and its destinations; ds nil means
// they are still to be fetched.
func (t *tool) printServiceEntry(se *service, ds []dest, format uint) {
	if ds == nil {
		var err error
		if ds, err = t.be.Dests(*se); err != nil {
			t.kernError(opGetDests, err, 1)
		}
	}
	name := t.svcName(se, format)
	switch {
	case format&fmtRule != 0:
		t.printf(out.ruleSvc, name, se.Sched)
		if se.Flags&svcPersistent != 0 {
			t.printf(out.rulePersistent, se.Timeout)
			if se.AF == afInet && se.Netmask != 0xffffffff {
				t.printf(out.ruleMask, maskString(se.Netmask))
			}
			if se.AF == afInet6 && se.Netmask != 128 {
				t.printf(out.ruleMask6, int32(se.Netmask))
			}
		}
		if se.PE != "" {
			t.printf(out.rulePE, se.PE)
		}
		if se.Flags&svcOnePacket != 0 {
			t.printf(out.ruleOps)
		}
		if se.Flags&svcSchedMask != 0 {
			t.printf(out.ruleSchedFlags, schedFlagsString(se))
		}
		if se.Flags&svcSynProxy != 0 {
			t.printf(out.ruleSynProxy)
		}
		if se.EstTimeout != 0 {
			t.printf(out.ruleEstTimeout, se.EstTimeout)
		}
		if se.ProxyProto != proxyProtoOff {
			t.printf(out.ruleProxyProto, se.ProxyProto)
		}
	case format&fmtStats != 0:
		t.printf(out.svcNamePadded, name)
		st := se.Stats
		for _, v := range []uint64{st.Conns, st.InPkts, st.OutPkts, st.InBytes, st.OutBytes} {
			t.printLargenum(v, format)
		}
	case format&fmtRate != 0:
		t.printf(out.svcNamePadded, name)
		st := se.Stats
		for _, v := range []uint64{st.CPS, st.InPPS, st.OutPPS, st.InBPS, st.OutBPS} {
			t.printLargenum(v, format)
		}
	default:
		t.printf(out.svcSched, name, se.Sched)
		if se.Flags&svcSchedMask != 0 {
			t.printf(out.svcSchedFlags, schedFlagsString(se))
		}
		if se.Flags&svcPersistent != 0 {
			t.printf(out.svcPersistent, se.Timeout)
			if se.AF == afInet && se.Netmask != 0xffffffff {
				t.printf(out.svcMask, maskString(se.Netmask))
			}
			if se.AF == afInet6 && se.Netmask != 128 {
				t.printf(out.svcMask6, int32(se.Netmask))
			}
			if se.PE != "" {
				t.printf(out.svcPE, se.PE)
			}
		}
		if se.Flags&svcOnePacket != 0 {
			t.printf(out.svcOps)
		}
		if se.Flags&svcSynProxy != 0 {
			t.printf(out.svcSynProxy)
		}
		if se.ProxyProto != proxyProtoOff {
			t.printf(out.svcProxyProto, se.ProxyProto)
		}
	}
	t.printf(out.eol)

	if format&fmtNoSort == 0 {
		msort(ds, &t.destScratch, cmpDests)
	}
	var dbuf [128]byte
	for i := range ds {
		e := &ds[i]
		// Destinations of fwmark services print their ports with the
		// service's protocol, which the kernel reports as 0.
		dname := t.appendAddrport(dbuf[:0], e.AF, e.Addr, e.Port, se.Protocol, format)
		if format&fmtRule == 0 && e.AF != afInet6 && len(dname) > 28 {
			dname = dname[:28]
		}
		switch {
		case format&fmtRule != 0:
			if e.FwdMethod&fwdMask == fwdTunnel {
				switch e.TunType {
				case tunGRE:
					t.printf(out.ruleDestGRE, name, dname, fwdSwitch(e.FwdMethod), e.Weight, tunNames[e.TunType], tunFlagOpts[tunFlagIndex(e.TunFlags)])
				case tunGUE:
					t.printf(out.ruleDestGUE, name, dname, fwdSwitch(e.FwdMethod), e.Weight, tunNames[e.TunType], e.TunPort, tunFlagOpts[tunFlagIndex(e.TunFlags)])
				case tunIPIP:
					t.printf(out.ruleDestIPIP, name, dname, fwdSwitch(e.FwdMethod), e.Weight, tunNames[e.TunType])
				default:
					t.printf(out.ruleDest, name, dname, fwdSwitch(e.FwdMethod), e.Weight)
				}
			} else {
				t.printf(out.ruleDest, name, dname, fwdSwitch(e.FwdMethod), e.Weight)
			}
		case format&fmtStats != 0:
			t.printf(out.destStatsName, dname)
			st := e.Stats
			for _, v := range []uint64{st.Conns, st.InPkts, st.OutPkts, st.InBytes, st.OutBytes} {
				t.printLargenum(v, format)
			}
			t.printf(out.eol)
		case format&fmtRate != 0:
			st := e.Stats
			t.printf(out.destRate, dname, st.CPS, st.InPPS, st.OutPPS)
			t.printLargenum(st.InBPS, format)
			t.printLargenum(st.OutBPS, format)
			t.printf(out.eol)
		case format&fmtThresholds != 0:
			t.printf(out.destThresholds, dname, e.UThresh, e.LThresh, e.Active, e.Inactive)
		case format&fmtPersistConn != 0:
			t.printf(out.destPersistConn, dname, e.Weight, e.Persist, e.Active, e.Inactive)
		case format&fmtTunInfo != 0:
			t.printf(out.destTunInfo, dname, fwdName(e.FwdMethod), fwdTunInfo(e), e.Weight, e.Active, e.Inactive)
		default:
			t.printf(out.destDefault, dname, fwdName(e.FwdMethod), e.Weight, e.Active, e.Inactive)
		}
	}
}

func maskString(m uint32) string {
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

func (t *tool) listService(svc *service, format uint) {
	se, err := t.be.Service(*svc)
	if err != nil {
		t.kernError(opGetService, err, 1)
	}
	t.printTitle(format)
	t.printServiceEntry(&se, nil, format)
}

// svcDests is a service with its destinations once fetched.
type svcDests struct {
	s service
	d []dest
	l []laddr // with featTableLaddrs, from the table dump
}

// table fetches the services, with their destinations when the backend
// lists them in one go, sorted unless fmtNoSort; laddrs tells whether that
// listing gave their local addresses too (featTableLaddrs). On an error of
// the one-go listing it falls back to ipvsadm's order of requests, so that
// the error shows where 1.31 shows it.
func (t *tool) table(format uint) (tab []*svcDests, laddrs bool) {
	var all []svcDests
	if tl, ok := t.be.(tableLister); ok {
		var err error
		// only --stats and --rate print counters
		if all, err = tl.ServicesWithDests(format&(fmtStats|fmtRate) != 0); err == nil {
			for i := range all {
				if all[i].d == nil {
					all[i].d = []dest{}
				}
			}
			laddrs = t.inf.Features&featTableLaddrs != 0
		} else {
			all = nil
		}
	}
	if all == nil {
		svcs, err := t.be.Services()
		if err != nil {
			t.kernError(opGetServices, err, 1)
		}
		all = make([]svcDests, len(svcs))
		for i := range svcs {
			all[i].s = svcs[i]
		}
	}
	// The sort moves pointers, not the entries.
	tab = make([]*svcDests, len(all))
	for i := range all {
		tab[i] = &all[i]
	}
	if format&fmtNoSort == 0 {
		var scratch []*svcDests
		msort(tab, &scratch, func(a, b **svcDests) int { return cmpServices(&(*a).s, &(*b).s) })
	}
	return tab, laddrs
}

func (t *tool) listAll(format uint) {
	if format&fmtRule == 0 {
		v := t.inf.Version
		t.printf(out.header, v>>16&0xff, v>>8&0xff, v&0xff, t.inf.Size)
	}
	tab, haveLaddrs := t.table(format)
	t.printTitle(format)
	for i := range tab {
		t.printServiceEntry(&tab[i].s, tab[i].d, format)
	}
	if format&fmtRule != 0 && t.inf.Features&featFullNAT != 0 {
		for i := range tab {
			name := t.svcName(&tab[i].s, format)
			for _, la := range t.laddrsOf(tab[i], haveLaddrs) {
				t.printf(out.ruleLaddr, name, ntop(la.Addr))
			}
		}
	}
}

// laddrsOf is sd's local addresses: those the table dump gave (have), or
// asked for now.
func (t *tool) laddrsOf(sd *svcDests, have bool) []laddr {
	if have {
		return sd.l
	}
	las, err := t.be.LocalAddrs(sd.s)
	if err != nil {
		t.kernError(opGetLaddrs, err, 1)
	}
	return las
}

// listLaddrs is -G: the local addresses of one service or of all (from
// the table dump where it lists them: one request for the whole table).
func (t *tool) listLaddrs(svc *service, one bool) int {
	var tab []*svcDests
	have := false
	if one {
		se, err := t.be.Service(*svc)
		if err != nil {
			t.kernError(opGetLaddrs, err, 1)
		}
		tab = []*svcDests{{s: se}}
	} else {
		tab, have = t.table(0)
	}
	if t.inf.Features&featFullNAT == 0 {
		t.kernError(opGetLaddrs, errNotSupported, 1)
	}
	t.printf(out.laddrTitle, "VIP:VPORT", "TOTAL", "SNAT_IP", "CONFLICTS", "CONNS")
	for i := range tab {
		se := &tab[i].s
		las := t.laddrsOf(tab[i], have)
		var name string
		if se.FWMark != 0 {
			name = t.svcName(se, fmtNumeric)
		} else {
			name = t.addrportToAnyname(se.AF, se.Addr, se.Port, se.Protocol, fmtNumeric)
		}
		t.printf(out.laddrSvc, name, len(las))
		for _, la := range las {
			t.printf(out.laddrLine, "", "", ntop(la.Addr), la.PortConflicts, la.Conns)
		}
	}
	return 0
}

func (t *tool) listTimeout() {
	to, err := t.be.Timeouts()
	if err != nil {
		t.exit(1)
	}
	t.printf(out.timeout, int32(to.TCP), int32(to.TCPFin), int32(to.UDP))
}

func (t *tool) listDaemon() {
	ds, err := t.be.Daemons()
	if err != nil {
		t.exit(1)
	}
	if len(ds) > 2 {
		ds = ds[:2]
	}
	for _, d := range ds {
		var typ string
		switch {
		case d.State&stateMaster != 0:
			typ = "master"
		case d.State&stateBackup != 0:
			typ = "backup"
		default:
			continue
		}
		t.printf(out.daemon, typ, d.Ifname, int32(d.SyncID))
		if d.SyncMaxLen != 0 {
			t.printf(out.daemonMaxLen, d.SyncMaxLen)
		}
		if d.Group.IsValid() {
			t.printf(out.daemonGroup, ntop(d.Group))
		}
		if d.Port != 0 {
			t.printf(out.daemonPort, d.Port)
		}
		if d.TTL != 0 {
			t.printf(out.daemonTTL, d.TTL)
		}
		t.printf(out.daemonEnd)
	}
}

// listConn is -c: /proc/net/ip_vs_conn, reformatted.
func (t *tool) listConn(format uint) {
	f, err := os.Open(t.connPath)
	if err != nil {
		t.errPrefix()
		t.eprintf("cannot open file %s\n", connProcFile)
		t.exit(1)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	if _, err := r.ReadString('\n'); err != nil {
		t.errPrefix()
		t.eprintf("unexpected input from %s\n", connProcFile)
		t.exit(1)
	}
	t.printf(out.connHeader)
	if format&fmtPersistConn != 0 {
		t.printf(out.connTitlePE, "state", "source", "virtual", "destination", "pe name", "pe_data")
	} else {
		t.printf(out.connTitle, "state", "source", "virtual", "destination")
	}
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			t.printConn(line, format)
		}
		if err != nil {
			break
		}
	}
}

// connAddr parses an address column of /proc/net/ip_vs_conn: IPv6 text,
// dotted IPv4 or the kernel's hex IPv4.
func connAddr(s string) (uint16, netip.Addr) {
	if a, ok := inetPton6(s); ok {
		return afInet6, a
	}
	if a, ok := inetPton4(s); ok {
		return afInet, a
	}
	v, _ := strconv.ParseUint(s, 16, 32)
	u := uint32(v)
	return afInet, netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}

func (t *tool) printConn(line string, format uint) {
	f := strings.Fields(line)
	if len(f) == 0 {
		t.exit(1)
	}
	for len(f) < 9 {
		f = append(f, "0")
	}
	proto := uint16(0)
	switch f[0] {
	case "TCP":
		proto = protoTCP
	case "UDP":
		proto = protoUDP
	case "SCTP":
		proto = protoSCTP
	}
	af, caddr := connAddr(f[1])
	var vaddr netip.Addr
	if af == afInet6 {
		_, vaddr = connAddr(f[3])
	} else {
		_, vaddr = connAddr(f[3])
		if vaddr.Is6() {
			vaddr = netip.AddrFrom4([4]byte{})
		}
	}
	daf, daddr := connAddr(f[5])
	hex16 := func(s string) uint16 { v, _ := strconv.ParseUint(s, 16, 16); return uint16(v) }
	cname := t.addrportToAnyname(af, caddr, hex16(f[2]), proto, format)
	vname := t.addrportToAnyname(af, vaddr, hex16(f[4]), proto, format)
	dname := t.addrportToAnyname(daf, daddr, hex16(f[6]), proto, format)
	exp, _, _, _ := cStrtol(f[8])
	e := uint32(exp)
	expire := sprintf(out.connExpire, e/60, e%60)
	if format&fmtPersistConn != 0 && len(f) >= 11 {
		t.printf(out.connLinePE, f[0], expire, f[7], cname, vname, dname, f[9], f[10])
	} else {
		t.printf(out.connLine, f[0], expire, f[7], cname, vname, dname)
	}
}

// errnoOf extracts the kernel errno of err, if any.
func errnoOf(err error) (syscall.Errno, bool) {
	var e syscall.Errno
	ok := errors.As(err, &e)
	return e, ok
}
