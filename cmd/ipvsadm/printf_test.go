// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// tableFormats is every format of the table (format.go) by field name.
func tableFormats(t testing.TB) map[string]string {
	v := reflect.ValueOf(out)
	m := make(map[string]string, v.NumField())
	for i := 0; i < v.NumField(); i++ {
		m[v.Type().Field(i).Name] = v.Field(i).String()
	}
	if len(m) < 50 {
		t.Fatalf("the format table has %d formats", len(m))
	}
	return m
}

// argsFor gives arguments for f's verbs: s for each %s, n for each %d and
// w for each '*'. ok is false if f has a verb appendf leaves to fmt.
func argsFor(f string, s string, n int64, w int) (args []any, ok bool) {
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		for i < len(f) && strings.IndexByte("-0123456789*", f[i]) >= 0 {
			if f[i] == '*' {
				args = append(args, w)
			}
			i++
		}
		if i == len(f) {
			return nil, false
		}
		switch f[i] {
		case 's':
			args = append(args, s)
		case 'd':
			args = append(args, n)
		case '%':
		default:
			return nil, false
		}
	}
	return args, true
}

// TestAppendfTable prints every format of the table with appendf and with
// fmt: for ASCII text the two agree, so the table means what it says.
func TestAppendfTable(t *testing.T) {
	for name, f := range tableFormats(t) {
		for _, c := range []struct {
			s string
			n int64
			w int
		}{
			{"", 0, 0},
			{"TCP", 7, 9},
			{"198.51.100.200:65535", -42, 12},
			{strings.Repeat("x", 40), 123456789012, -12},
		} {
			args, ok := argsFor(f, c.s, c.n, c.w)
			if !ok {
				t.Fatalf("out.%s (%q) has a verb appendf does not know", name, f)
			}
			want := fmt.Sprintf(f, args...)
			if got := string(appendf(nil, f, args...)); got != want {
				t.Errorf("out.%s with %v: appendf %q, fmt %q", name, args, got, want)
			}
		}
	}
}

func TestAppendf(t *testing.T) {
	for _, c := range []struct {
		f    string
		args []any
		want string
	}{
		{"%-5s|", []any{"ab"}, "ab   |"},
		{"%5s|", []any{[]byte("ab")}, "   ab|"},
		{"%05d", []any{-42}, "-0042"},
		{"%-05d|", []any{42}, "42   |"},
		{"%02d:%02d", []any{uint32(3), uint16(7)}, "03:07"},
		{"%*d", []any{6, uint64(1)}, "     1"},
		{"%*d|", []any{-4, int32(-1)}, "-1  |"},
		{"%d%%", []any{uint8(50)}, "50%"},
		{"%3s", []any{"abcdef"}, "abcdef"},
		// C counts bytes: a two-byte rune takes two of the width.
		{"%-4s|", []any{"é"}, "é  |"},
		// what appendf does not know
		{"%x", []any{255}, "%!x(BADTYPE)"},
		{"%s|", []any{3.5}, "%!s(BADTYPE)|"},
		{"%d", []any{true}, "%!d(BADTYPE)"},
		{"%", nil, "%!(NOVERB)"},
	} {
		if got := string(appendf(nil, c.f, c.args...)); got != c.want {
			t.Errorf("appendf(%q, %v) = %q, want %q", c.f, c.args, got, c.want)
		}
	}
}

func TestAppendfNoAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	name := []byte("198.51.100.200:8080")
	n := testing.AllocsPerRun(100, func() {
		buf = appendf(buf[:0], out.destDefault, name, "Masq", int32(1), uint32(2), uint32(3))
	})
	if n != 0 {
		t.Errorf("appendf allocates %v times per line", n)
	}
}

// FuzzAppendf checks appendf against fmt on the table's formats for any
// ASCII text and number.
func FuzzAppendf(f *testing.F) {
	formats := tableFormats(f)
	names := make([]string, 0, len(formats))
	for n := range formats {
		names = append(names, n)
	}
	sort.Strings(names)
	f.Add(0, "TCP", int64(7), 9)
	f.Add(3, "a long host name that is longer than any field", int64(-1), -30)
	f.Fuzz(func(t *testing.T, i int, s string, n int64, w int) {
		for _, r := range s {
			if r >= 0x80 {
				return // fmt pads by runes, C and appendf by bytes
			}
		}
		if w > 1000 || w < -1000 {
			return
		}
		name := names[uint(i)%uint(len(names))]
		args, _ := argsFor(formats[name], s, n, w)
		want := fmt.Sprintf(formats[name], args...)
		if got := string(appendf(nil, formats[name], args...)); got != want {
			t.Errorf("out.%s with %v: appendf %q, fmt %q", name, args, got, want)
		}
	})
}
