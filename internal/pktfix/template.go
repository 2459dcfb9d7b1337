// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package pktfix

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// ErrMismatch is wrapped by Template.Match when the packet differs from the template.
var ErrMismatch = errors.New("packet differs from the fixture")

// Vars holds the values bound by `$NAME`: numbers in decimal, addresses in netip's form.
type Vars map[string]string

// Environ lists the bindings as NAME=value, sorted, for the environment of a command (numbers
// in decimal, data in hex).
func (v Vars) Environ() []string {
	env := make([]string, 0, len(v))
	for name, val := range v {
		env = append(env, name+"="+val)
	}
	slices.Sort(env)
	return env
}

// Template is one parsed packet line.
type Template struct {
	kind     string // tcp4, tcp6, udp4 or udp6
	src, dst string
	fields   map[string]string
	line     string
}

// fieldDef describes one header field: its width in bits for a number, how to get and set it,
// and the value a sent packet gets when its line leaves the field out.
type fieldDef struct {
	name  string
	width uint // 0: not a number
	get   func(*Packet) uint64
	set   func(*Packet, uint64)
	def   string
}

var (
	ip4Fields = []fieldDef{
		{"ttl", 8, func(p *Packet) uint64 { return uint64(p.TTL) }, func(p *Packet, v uint64) { p.TTL = uint8(v) }, "64"},
		{"tos", 8, func(p *Packet) uint64 { return uint64(p.TOS) }, func(p *Packet, v uint64) { p.TOS = uint8(v) }, "0"},
		// A raw socket fills in a zero IPv4 ID, so sent packets get a fixed one.
		{"id", 16, func(p *Packet) uint64 { return uint64(p.ID) }, func(p *Packet, v uint64) { p.ID = uint16(v) }, "0x1234"},
		{"df", 1, func(p *Packet) uint64 { return b2u(p.DF) }, func(p *Packet, v uint64) { p.DF = v != 0 }, "1"},
	}
	ip6Fields = []fieldDef{
		{"hlim", 8, func(p *Packet) uint64 { return uint64(p.HopLimit) }, func(p *Packet, v uint64) { p.HopLimit = uint8(v) }, "64"},
		{"tc", 8, func(p *Packet) uint64 { return uint64(p.TC) }, func(p *Packet, v uint64) { p.TC = uint8(v) }, "0"},
		{"flow", 20, func(p *Packet) uint64 { return uint64(p.Flow) }, func(p *Packet, v uint64) { p.Flow = uint32(v) }, "0"},
	}
	tcpFields = []fieldDef{
		{name: "flags", def: "-"},
		{"seq", 32, func(p *Packet) uint64 { return uint64(p.Seq) }, func(p *Packet, v uint64) { p.Seq = uint32(v) }, "0"},
		{"ack", 32, func(p *Packet) uint64 { return uint64(p.Ack) }, func(p *Packet, v uint64) { p.Ack = uint32(v) }, "0"},
		{"win", 16, func(p *Packet) uint64 { return uint64(p.Win) }, func(p *Packet, v uint64) { p.Win = uint16(v) }, "64240"},
		{"urg", 16, func(p *Packet) uint64 { return uint64(p.Urg) }, func(p *Packet, v uint64) { p.Urg = uint16(v) }, "0"},
		{name: "opts", def: "-"},
	}
	tailFields = []fieldDef{{name: "data", def: "-"}, {name: "csum", def: CsumOK}}
)

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// fieldsOf lists the fields of a packet kind, in the language's order.
func fieldsOf(kind string) []fieldDef {
	var f []fieldDef
	if strings.HasSuffix(kind, "6") {
		f = append(f, ip6Fields...)
	} else {
		f = append(f, ip4Fields...)
	}
	if strings.HasPrefix(kind, "tcp") {
		f = append(f, tcpFields...)
	}
	return append(f, tailFields...)
}

// Parse parses a packet line.
func Parse(line string) (*Template, error) {
	w := strings.Fields(line)
	if len(w) < 4 || w[2] != ">" {
		return nil, fmt.Errorf("packet %q: want KIND SRC > DST [FIELD=VALUE ...]", line)
	}
	t := &Template{kind: w[0], src: w[1], dst: w[3], fields: map[string]string{}, line: line}
	switch t.kind {
	case "tcp4", "tcp6", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("packet %q: kind %q is not tcp4, tcp6, udp4 or udp6", line, t.kind)
	}
	known := map[string]bool{}
	for _, f := range fieldsOf(t.kind) {
		known[f.name] = true
	}
	for _, kv := range w[4:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return nil, fmt.Errorf("packet %q: %q is not FIELD=VALUE", line, kv)
		}
		if !known[k] {
			return nil, fmt.Errorf("packet %q: %s has no field %q", line, t.kind, k)
		}
		if _, dup := t.fields[k]; dup {
			return nil, fmt.Errorf("packet %q: field %s given twice", line, k)
		}
		t.fields[k] = v
	}
	return t, nil
}

// Complete reports an error naming the first field the line leaves out: an expected packet must
// describe every field.
func (t *Template) Complete() error {
	for _, f := range fieldsOf(t.kind) {
		if _, ok := t.fields[f.name]; !ok {
			return fmt.Errorf("packet %q: field %s missing (an expected packet gives every field)", t.line, f.name)
		}
	}
	return nil
}

// String is the line t was parsed from.
func (t *Template) String() string { return t.line }

// Build makes the packet t describes, with vars for its variables and the defaults of the
// fields it leaves out.
func (t *Template) Build(vars Vars) (Packet, error) {
	p := Packet{Proto: 6}
	if strings.HasPrefix(t.kind, "udp") {
		p.Proto = 17
	}
	var err error
	if p.Src, err = evalEndpoint(t.src, vars); err != nil {
		return p, fmt.Errorf("packet %q: source: %w", t.line, err)
	}
	if p.Dst, err = evalEndpoint(t.dst, vars); err != nil {
		return p, fmt.Errorf("packet %q: destination: %w", t.line, err)
	}
	if p.Is6() != strings.HasSuffix(t.kind, "6") || p.Dst.Addr().Is6() != p.Is6() {
		return p, fmt.Errorf("packet %q: addresses are not of the family of %s", t.line, t.kind)
	}
	for _, f := range fieldsOf(t.kind) {
		v, ok := t.fields[f.name]
		if !ok {
			v = f.def
		}
		if err := f.build(&p, v, vars); err != nil {
			return p, fmt.Errorf("packet %q: %s: %w", t.line, f.name, err)
		}
	}
	return p, nil
}

func (f fieldDef) build(p *Packet, v string, vars Vars) error {
	switch f.name {
	case "flags":
		fl, err := parseFlags(v)
		p.Flags = fl
		return err
	case "opts":
		opts, err := buildOpts(v, vars)
		p.Opts = opts
		return err
	case "data":
		if strings.HasPrefix(v, "$") {
			bound, ok := vars[v[1:]]
			if !ok {
				return fmt.Errorf("%s is not bound", v)
			}
			v = bound
		}
		if v == "-" {
			return nil
		}
		b, err := hex.DecodeString(v)
		p.Data = b
		return err
	case "csum":
		if v != CsumOK && v != CsumBad {
			return fmt.Errorf("a sent packet's checksum is %s or %s, not %q", CsumOK, CsumBad, v)
		}
		p.Csum = v
		return nil
	}
	n, err := evalNum(v, f.width, vars)
	if err != nil {
		return err
	}
	f.set(p, n)
	return nil
}

// Match compares p with t, binding t's unbound variables in vars. The error wraps
// ErrMismatch and names the first field that differs.
func (t *Template) Match(p Packet, vars Vars) error {
	bad := func(what string, err error) error {
		return fmt.Errorf("%w: %s: %v\n  got:  %s\n  want: %s", ErrMismatch, what, err, Format(p), t.line)
	}
	kind := p.kind()
	if kind != t.kind {
		return bad("kind", fmt.Errorf("%s, want %s", kind, t.kind))
	}
	if err := matchEndpoint(t.src, p.Src, vars); err != nil {
		return bad("source", err)
	}
	if err := matchEndpoint(t.dst, p.Dst, vars); err != nil {
		return bad("destination", err)
	}
	for _, f := range fieldsOf(t.kind) {
		v, ok := t.fields[f.name]
		if !ok {
			continue
		}
		if err := f.match(&p, v, vars); err != nil {
			return bad(f.name, err)
		}
	}
	return nil
}

func (f fieldDef) match(p *Packet, v string, vars Vars) error {
	if v == "*" {
		return nil
	}
	switch f.name {
	case "flags":
		want, err := parseFlags(v)
		if err != nil {
			return err
		}
		if want != p.Flags {
			return fmt.Errorf("%s, want %s", formatFlags(p.Flags), v)
		}
		return nil
	case "opts":
		return matchOpts(v, p.Opts, vars)
	case "data":
		got := formatData(p.Data)
		if strings.HasPrefix(v, "$") {
			bound, ok := vars[v[1:]]
			if !ok {
				vars[v[1:]] = got
				return nil
			}
			v = bound
		}
		if got != strings.ToLower(v) {
			return fmt.Errorf("%s, want %s", got, v)
		}
		return nil
	case "csum":
		if p.Csum != v {
			return fmt.Errorf("%s, want %s", p.Csum, v)
		}
		return nil
	}
	return matchNum(v, f.get(p), f.width, vars)
}

// kind is p's packet kind: tcp4, tcp6, udp4 or udp6.
func (p Packet) kind() string {
	k := "tcp"
	if p.Proto == 17 {
		k = "udp"
	}
	if p.Is6() {
		return k + "6"
	}
	return k + "4"
}

// Format writes p as a packet line with literal values.
func Format(p Packet) string {
	kind := p.kind()
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s > %s", kind, p.Src, p.Dst)
	if p.Is6() {
		fmt.Fprintf(&sb, " hlim=%d tc=%d flow=%#x", p.HopLimit, p.TC, p.Flow)
	} else {
		fmt.Fprintf(&sb, " ttl=%d tos=%#x id=%#x df=%d", p.TTL, p.TOS, p.ID, b2u(p.DF))
	}
	if p.Proto == 6 {
		fmt.Fprintf(&sb, " flags=%s seq=%#x ack=%#x win=%d urg=%d opts=%s", formatFlags(p.Flags), p.Seq, p.Ack, p.Win, p.Urg, formatOpts(p.Opts))
	}
	fmt.Fprintf(&sb, " data=%s csum=%s", formatData(p.Data), p.Csum)
	return sb.String()
}

func formatData(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return hex.EncodeToString(b)
}

// ---- values ----------------------------------------------------------------------------

// splitEndpoint splits ADDR:PORT, [ADDR]:PORT or $A:$P.
func splitEndpoint(s string) (addr, port string, err error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", fmt.Errorf("%q is not ADDR:PORT", s)
	}
	addr, port = s[:i], s[i+1:]
	if strings.HasPrefix(addr, "[") && strings.HasSuffix(addr, "]") {
		addr = addr[1 : len(addr)-1]
	}
	return addr, port, nil
}

func evalEndpoint(s string, vars Vars) (netip.AddrPort, error) {
	as, ps, err := splitEndpoint(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if strings.HasPrefix(as, "$") {
		v, ok := vars[as[1:]]
		if !ok {
			return netip.AddrPort{}, fmt.Errorf("%s is not bound", as)
		}
		as = v
	}
	a, err := netip.ParseAddr(as)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: %w", as, err)
	}
	port, err := evalNum(ps, 16, vars)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port: %w", err)
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

func matchEndpoint(s string, ap netip.AddrPort, vars Vars) error {
	as, ps, err := splitEndpoint(s)
	if err != nil {
		return err
	}
	if err := matchAddr(as, ap.Addr(), vars); err != nil {
		return err
	}
	if err := matchNum(ps, uint64(ap.Port()), 16, vars); err != nil {
		return fmt.Errorf("port: %w", err)
	}
	return nil
}

func matchAddr(s string, a netip.Addr, vars Vars) error {
	switch {
	case s == "*":
		return nil
	case strings.HasPrefix(s, "$"):
		name := s[1:]
		if v, ok := vars[name]; ok {
			if v != a.String() {
				return fmt.Errorf("%v, want %s = %s", a, s, v)
			}
			return nil
		}
		vars[name] = a.String()
		return nil
	}
	want, err := netip.ParseAddr(s)
	if err != nil {
		return fmt.Errorf("address %q: %w", s, err)
	}
	if want != a {
		return fmt.Errorf("%v, want %v", a, want)
	}
	return nil
}

// exprOp is one step of an expression: + - >> or << and its operand, a number n or the
// variable ref (for a shift, below 64).
type exprOp struct {
	op  string
	n   uint64
	ref string
}

// parseExpr splits $NAME followed by any of +N, -N, >>N and <<N, applied left to right; N may
// be another variable, $OTHER.
func parseExpr(s string) (name string, ops []exprOp, err error) {
	body := s[1:]
	i := strings.IndexAny(body, "+-<>")
	if i < 0 {
		return body, nil, nil
	}
	name, rest := body[:i], body[i:]
	for rest != "" {
		var o exprOp
		switch {
		case strings.HasPrefix(rest, ">>"), strings.HasPrefix(rest, "<<"):
			o.op, rest = rest[:2], rest[2:]
		case rest[0] == '+' || rest[0] == '-':
			o.op, rest = rest[:1], rest[1:]
		default:
			return "", nil, fmt.Errorf("%q: want $NAME followed by +N, -N, >>N or <<N", s)
		}
		j := strings.IndexAny(rest, "+-<>")
		if j < 0 {
			j = len(rest)
		}
		if ref, ok := strings.CutPrefix(rest[:j], "$"); ok && ref != "" {
			o.ref = ref
		} else if o.n, err = strconv.ParseUint(rest[:j], 0, 64); err != nil {
			return "", nil, fmt.Errorf("%q: bad operand %q", s, rest[:j])
		}
		ops, rest = append(ops, o), rest[j:]
	}
	return name, ops, nil
}

func mask(width uint) uint64 { return 1<<width - 1 }

// varNum is the number bound to $name.
func varNum(name string, vars Vars) (uint64, error) {
	v, ok := vars[name]
	if !ok {
		return 0, fmt.Errorf("$%s is not bound", name)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("$%s is %q, not a number", name, v)
	}
	return n, nil
}

func evalNum(s string, width uint, vars Vars) (uint64, error) {
	if s == "*" {
		return 0, errors.New("`*` only matches; a sent packet needs a value")
	}
	if strings.HasPrefix(s, "$") {
		name, ops, err := parseExpr(s)
		if err != nil {
			return 0, err
		}
		n, err := varNum(name, vars)
		if err != nil {
			return 0, err
		}
		for _, o := range ops {
			if o.ref != "" {
				if o.n, err = varNum(o.ref, vars); err != nil {
					return 0, err
				}
				if len(o.op) == 2 && o.n >= 64 {
					return 0, fmt.Errorf("%q: shift by $%s = %d", s, o.ref, o.n)
				}
			}
			switch o.op {
			case "+":
				n += o.n
			case "-":
				n -= o.n
			case ">>":
				n >>= o.n
			case "<<":
				n <<= o.n
			}
			n &= mask(width)
		}
		return n, nil
	}
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if n > mask(width) {
		return 0, fmt.Errorf("%d does not fit in %d bits", n, width)
	}
	return n, nil
}

func matchNum(s string, got uint64, width uint, vars Vars) error {
	if s == "*" {
		return nil
	}
	if strings.HasPrefix(s, "$") {
		name, ops, err := parseExpr(s)
		if err != nil {
			return err
		}
		if _, ok := vars[name]; !ok {
			if len(ops) != 0 {
				return fmt.Errorf("%s uses $%s before it is bound", s, name)
			}
			vars[name] = strconv.FormatUint(got, 10)
			return nil
		}
	}
	want, err := evalNum(s, width, vars)
	if err != nil {
		return err
	}
	if want != got {
		return fmt.Errorf("%#x, want %s = %#x", got, s, want)
	}
	return nil
}

// ---- options ---------------------------------------------------------------------------

func formatOpts(opts []Option) string {
	if len(opts) == 0 {
		return "-"
	}
	s := make([]string, len(opts))
	for i, o := range opts {
		s[i] = formatOpt(o)
	}
	return strings.Join(s, ",")
}

func formatOpt(o Option) string {
	d := o.Data
	switch {
	case o.Kind == OptEOL && len(d) == 0:
		return "eol"
	case o.Kind == OptNOP && len(d) == 0:
		return "nop"
	case o.Kind == OptMSS && len(d) == 2:
		return fmt.Sprintf("mss:%d", binary.BigEndian.Uint16(d))
	case o.Kind == OptWS && len(d) == 1:
		return fmt.Sprintf("ws:%d", d[0])
	case o.Kind == OptSACKOK && len(d) == 0:
		return "sackok"
	case o.Kind == OptTS && len(d) == 8:
		return fmt.Sprintf("ts:%d:%d", binary.BigEndian.Uint32(d), binary.BigEndian.Uint32(d[4:]))
	case o.Kind == OptSACK && len(d) > 0 && len(d)%8 == 0:
		var b []string
		for i := 0; i < len(d); i += 8 {
			b = append(b, fmt.Sprintf("%#x..%#x", binary.BigEndian.Uint32(d[i:]), binary.BigEndian.Uint32(d[i+4:])))
		}
		return "sack:" + strings.Join(b, ";")
	case o.Kind == OptTOA4 && len(d) == 6:
		return fmt.Sprintf("toa:%v", netip.AddrPortFrom(netip.AddrFrom4([4]byte(d[2:])), binary.BigEndian.Uint16(d)))
	case o.Kind == OptTOA6 && len(d) == 18:
		return fmt.Sprintf("toa:%v", netip.AddrPortFrom(netip.AddrFrom16([16]byte(d[2:])), binary.BigEndian.Uint16(d)))
	}
	return fmt.Sprintf("opt%d:%s", o.Kind, hex.EncodeToString(d))
}

// optSpec is one option of a line: its name and its arguments.
type optSpec struct {
	kind byte
	name string
	args []string
}

func parseOpts(s string) ([]optSpec, error) {
	if s == "-" {
		return nil, nil
	}
	var out []optSpec
	for _, item := range strings.Split(s, ",") {
		name, rest, _ := strings.Cut(item, ":")
		o := optSpec{name: name}
		switch name {
		case "eol", "nop", "sackok":
			o.kind = map[string]byte{"eol": OptEOL, "nop": OptNOP, "sackok": OptSACKOK}[name]
			if rest != "" {
				return nil, fmt.Errorf("option %q takes no value", item)
			}
		case "mss", "ws":
			o.kind = map[string]byte{"mss": OptMSS, "ws": OptWS}[name]
			o.args = []string{rest}
		case "ts":
			o.kind = OptTS
			o.args = strings.Split(rest, ":")
			if len(o.args) != 2 {
				return nil, fmt.Errorf("option %q: want ts:VAL:ECR", item)
			}
		case "sack":
			o.kind = OptSACK
			for _, blk := range strings.Split(rest, ";") {
				l, r, ok := strings.Cut(blk, "..")
				if !ok {
					return nil, fmt.Errorf("option %q: block %q is not L..R", item, blk)
				}
				o.args = append(o.args, l, r)
			}
		case "toa":
			o.kind = OptTOA4 // or OptTOA6, by the address
			o.args = []string{rest}
		default:
			k, err := strconv.ParseUint(strings.TrimPrefix(name, "opt"), 10, 8)
			if !strings.HasPrefix(name, "opt") || err != nil {
				return nil, fmt.Errorf("option %q: unknown; use mss, ws, sackok, ts, sack, toa, nop, eol or optK:HEX", item)
			}
			o.kind = byte(k)
			o.args = []string{rest}
		}
		if slices.Contains(o.args, "") {
			return nil, fmt.Errorf("option %q: a value is empty", item)
		}
		out = append(out, o)
	}
	return out, nil
}

func buildOpts(s string, vars Vars) ([]Option, error) {
	specs, err := parseOpts(s)
	if err != nil {
		return nil, err
	}
	var out []Option
	for _, o := range specs {
		opt := Option{Kind: o.kind}
		switch o.name {
		case "eol", "nop", "sackok":
		case "mss", "ws", "ts", "sack":
			width := map[string]uint{"mss": 16, "ws": 8, "ts": 32, "sack": 32}[o.name]
			for _, a := range o.args {
				n, err := evalNum(a, width, vars)
				if err != nil {
					return nil, fmt.Errorf("option %s: %w", o.name, err)
				}
				switch width {
				case 8:
					opt.Data = append(opt.Data, byte(n))
				case 16:
					opt.Data = binary.BigEndian.AppendUint16(opt.Data, uint16(n))
				default:
					opt.Data = binary.BigEndian.AppendUint32(opt.Data, uint32(n))
				}
			}
		case "toa":
			ap, err := evalEndpoint(o.args[0], vars)
			if err != nil {
				return nil, fmt.Errorf("option toa: %w", err)
			}
			opt.Data = binary.BigEndian.AppendUint16(nil, ap.Port())
			opt.Data = append(opt.Data, ap.Addr().AsSlice()...)
			if ap.Addr().Is6() {
				opt.Kind = OptTOA6
			}
		default:
			b, err := hex.DecodeString(o.args[0])
			if err != nil {
				return nil, fmt.Errorf("option %s: %w", o.name, err)
			}
			opt.Data = b
		}
		out = append(out, opt)
	}
	return out, nil
}

func matchOpts(s string, got []Option, vars Vars) error {
	specs, err := parseOpts(s)
	if err != nil {
		return err
	}
	if len(specs) != len(got) {
		return fmt.Errorf("%s, want %s (%d options, want %d)", formatOpts(got), s, len(got), len(specs))
	}
	for i, o := range specs {
		g := got[i]
		wantKind := o.kind
		if o.name == "toa" && g.Kind == OptTOA6 {
			wantKind = OptTOA6
		}
		if g.Kind != wantKind {
			return fmt.Errorf("option %d is %s, want %s", i+1, formatOpt(g), o.name)
		}
		var err error
		switch o.name {
		case "eol", "nop", "sackok":
			if len(g.Data) != 0 {
				err = fmt.Errorf("%s carries % x", o.name, g.Data)
			}
		case "mss", "ws":
			size, width := 2, uint(16)
			if o.name == "ws" {
				size, width = 1, 8
			}
			if len(g.Data) != size {
				err = fmt.Errorf("%d bytes", len(g.Data))
				break
			}
			var n uint64
			for _, c := range g.Data {
				n = n<<8 | uint64(c)
			}
			err = matchNum(o.args[0], n, width, vars)
		case "ts", "sack":
			if len(g.Data) != 4*len(o.args) {
				err = fmt.Errorf("%s, want %d values", formatOpt(g), len(o.args))
				break
			}
			for j, a := range o.args {
				if err = matchNum(a, uint64(binary.BigEndian.Uint32(g.Data[4*j:])), 32, vars); err != nil {
					break
				}
			}
		case "toa":
			var ap netip.AddrPort
			switch len(g.Data) {
			case 6:
				ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte(g.Data[2:])), binary.BigEndian.Uint16(g.Data))
			case 18:
				ap = netip.AddrPortFrom(netip.AddrFrom16([16]byte(g.Data[2:])), binary.BigEndian.Uint16(g.Data))
			default:
				err = fmt.Errorf("%d bytes", len(g.Data))
			}
			if err == nil {
				err = matchEndpoint(o.args[0], ap, vars)
			}
		default:
			if o.args[0] != "*" && hex.EncodeToString(g.Data) != strings.ToLower(o.args[0]) {
				err = fmt.Errorf("%x, want %s", g.Data, o.args[0])
			}
		}
		if err != nil {
			return fmt.Errorf("option %d (%s): %w", i+1, o.name, err)
		}
	}
	return nil
}
