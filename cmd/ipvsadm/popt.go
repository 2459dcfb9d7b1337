// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

// A tokenizer with the semantics of popt 1.19's poptGetNextOpt as ipvsadm
// 1.31 uses it: options in argv order, short clusters ("-Ln", "-At1.2.3.4:80"),
// attached values, an optional value for -p, "--" ending the options,
// positionals collected as leftovers while parsing continues, and popt's
// error texts.

import "strings"

type argKind int

const (
	argNone argKind = iota
	argRequired
	argOptional
)

// optDef is one entry of the option table.
type optDef struct {
	long  string
	short byte
	arg   argKind
	val   int
}

// Popt error codes (popt.h).
const (
	poptErrNoArg       = -10
	poptErrUnwantedArg = -12
	poptErrBadOpt      = -11
)

func poptStrerror(code int) string {
	switch code {
	case poptErrNoArg:
		return "missing argument"
	case poptErrUnwantedArg:
		return "option does not take an argument"
	case poptErrBadOpt:
		return "unknown option"
	}
	return "unknown error"
}

// poptContext walks argv (without argv[0]).
type poptContext struct {
	table     []optDef
	argv      []string
	next      int
	nextChar  string // rest of a short-option cluster, "" when none
	rest      bool   // after "--" (or POSIXLY_CORRECT and a positional)
	posix     bool
	leftovers []string
	consumed  int // leftovers handed out by getArg
}

func newPopt(table []optDef, args []string, posix bool) *poptContext {
	return &poptContext{table: table, argv: args, posix: posix}
}

func (c *poptContext) findLong(name string) *optDef {
	for i := range c.table {
		if c.table[i].long != "" && c.table[i].long == name {
			return &c.table[i]
		}
	}
	return nil
}

func (c *poptContext) findShort(ch byte) *optDef {
	if ch == 0 {
		return nil
	}
	for i := range c.table {
		if c.table[i].short == ch {
			return &c.table[i]
		}
	}
	return nil
}

// nextOpt returns the next option and its value (nil when none), or
// -1 at the end, or a negative popt error code.
func (c *poptContext) nextOpt() (opt *optDef, value *string, code int) {
	for {
		var longArg *string
		if c.nextChar == "" {
			if c.next == len(c.argv) {
				return nil, nil, -1
			}
			orig := c.argv[c.next]
			c.next++
			if c.rest || !strings.HasPrefix(orig, "-") || orig == "-" {
				if c.posix {
					c.rest = true
				}
				c.leftovers = append(c.leftovers, orig)
				continue
			}
			if orig == "--" {
				c.rest = true
				continue
			}
			s := orig[1:]
			oneDash := true
			if strings.HasPrefix(s, "-") {
				s = s[1:]
				oneDash = false
			}
			name := s
			if i := strings.IndexByte(s, '='); i >= 0 {
				name = s[:i]
				v := s[i+1:]
				longArg = &v
			}
			if !oneDash {
				opt = c.findLong(name)
				if opt == nil {
					return nil, nil, poptErrBadOpt
				}
			} else {
				// No option of ipvsadm's table has POPT_ARGFLAG_ONEDASH:
				// a single dash always starts a short cluster.
				c.nextChar = orig[1:]
				longArg = nil
			}
		}
		if c.nextChar != "" {
			ch := c.nextChar[0]
			opt = c.findShort(ch)
			if opt == nil {
				c.nextChar = ""
				return nil, nil, poptErrBadOpt
			}
			c.nextChar = c.nextChar[1:]
		}
		if opt.arg == argNone {
			if longArg != nil || strings.HasPrefix(c.nextChar, "=") {
				c.nextChar = ""
				return nil, nil, poptErrUnwantedArg
			}
			return opt, nil, opt.val
		}
		switch {
		case longArg != nil:
			value = longArg
		case c.nextChar != "":
			v := strings.TrimPrefix(c.nextChar, "=")
			value = &v
			c.nextChar = ""
		case c.next == len(c.argv):
			if opt.arg != argOptional {
				return nil, nil, poptErrNoArg
			}
		default:
			if opt.arg == argOptional && strings.HasPrefix(c.argv[c.next], "-") {
				break
			}
			v := c.argv[c.next]
			c.next++
			value = &v
		}
		return opt, value, opt.val
	}
}

// badOption is the argv element popt blames for an error: the last one
// consumed.
func (c *poptContext) badOption() string {
	if c.next == 0 {
		return ""
	}
	return c.argv[c.next-1]
}

// getArg returns the next leftover, or false.
func (c *poptContext) getArg() (string, bool) {
	if c.consumed >= len(c.leftovers) {
		return "", false
	}
	c.consumed++
	return c.leftovers[c.consumed-1], true
}
