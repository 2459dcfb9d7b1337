// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"strconv"
	"strings"
)

// appendf appends to b what C's printf prints for the format f and the
// arguments a, for the part of printf that the format table (format.go)
// uses: the verbs %s (a string or a []byte) and %d (any integer), the
// flags '-' and '0', a width in digits or '*' (taken from an int
// argument), and "%%". Widths count bytes, as C's do (fmt counts runes).
//
// It is the listings' formatter: unlike fmt it takes no lock, allocates
// nothing and boxes its arguments on the caller's stack, which matters
// for the tens of thousands of lines of a large table. An argument of
// another type, or a verb it does not know, prints as %!verb(BADTYPE)
// (fmt would box the arguments on the heap); TestAppendfTable checks
// that the table uses none.
func appendf(b []byte, f string, a ...any) []byte {
	for len(f) > 0 {
		i := strings.IndexByte(f, '%')
		if i < 0 {
			return append(b, f...)
		}
		b = append(b, f[:i]...)
		f = f[i+1:]
		left, zero := false, false
		for len(f) > 0 && (f[0] == '-' || f[0] == '0') {
			left = left || f[0] == '-'
			zero = zero || f[0] == '0'
			f = f[1:]
		}
		width := 0
		if len(f) > 0 && f[0] == '*' {
			f = f[1:]
			if len(a) > 0 {
				if w, ok := a[0].(int); ok {
					width = w
				}
				a = a[1:]
			}
			if width < 0 {
				left, width = true, -width
			}
		}
		for len(f) > 0 && f[0] >= '0' && f[0] <= '9' {
			width = width*10 + int(f[0]-'0')
			f = f[1:]
		}
		if len(f) == 0 {
			return append(b, "%!(NOVERB)"...)
		}
		verb := f[0]
		f = f[1:]
		if verb == '%' {
			b = append(b, '%')
			continue
		}
		var arg any
		if len(a) > 0 {
			arg, a = a[0], a[1:]
		}
		start := len(b)
		switch verb {
		case 's':
			b = appendString(b, arg)
		case 'd':
			b = appendInteger(b, arg)
		default:
			b = badVerb(b, verb)
		}
		b = pad(b, start, width, left, zero && verb == 'd')
	}
	return b
}

// appendString appends v for %s.
func appendString(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return append(b, v...)
	case []byte:
		return append(b, v...)
	}
	return badVerb(b, 's')
}

// appendInteger appends v for %d.
func appendInteger(b []byte, v any) []byte {
	switch v := v.(type) {
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int8:
		return strconv.AppendInt(b, int64(v), 10)
	case int16:
		return strconv.AppendInt(b, int64(v), 10)
	case int32:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case uint:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint8:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	}
	return badVerb(b, 'd')
}

func badVerb(b []byte, verb byte) []byte {
	return append(append(append(b, "%!"...), verb), "(BADTYPE)"...)
}

// pad widens the field b[start:] to width bytes: spaces after it (left),
// zeros after its sign (zero) or spaces before it.
func pad(b []byte, start, width int, left, zero bool) []byte {
	n := width - (len(b) - start)
	if n <= 0 {
		return b
	}
	if left {
		for ; n > 0; n-- {
			b = append(b, ' ')
		}
		return b
	}
	fill := byte(' ')
	if zero {
		fill = '0'
		if b[start] == '-' {
			start++
		}
	}
	end := len(b)
	for i := 0; i < n; i++ {
		b = append(b, 0)
	}
	copy(b[start+n:], b[start:end])
	for i := start; i < start+n; i++ {
		b[i] = fill
	}
	return b
}

// printf prints a line (or part of one) of the format table to stdout.
func (t *tool) printf(f string, a ...any) {
	_, _ = t.stdout.Write(appendf(t.stdout.AvailableBuffer(), f, a...))
}

// sprintf is appendf's result as a string.
func sprintf(f string, a ...any) string {
	var buf [128]byte
	return string(appendf(buf[:0], f, a...))
}

// eprintf prints a message to stderr, unbuffered as C's stderr is.
func (t *tool) eprintf(f string, a ...any) {
	var buf [256]byte
	_, _ = t.stderr.Write(appendf(buf[:0], f, a...))
}
