// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import "io"

const maxTokenLength = 4096

func isDelim(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// readRecord reads one line of -R input as ipvsadm's config_stream_read
// does: tokens split on blanks, tabs and CRs, the word "ipvsadm"
// dropped, nil at the end of the input. It returns the number of
// newlines consumed.
func readRecord(r interface {
	io.ByteScanner
}, first string) ([]string, int) {
	a := []string{first}
	ntoken := 0
	newlines := 0
	for {
		// fscanf("%4096[^ \t\n\r]%1[ \t\n\r]")
		c, err := r.ReadByte()
		if err != nil {
			if ntoken == 0 {
				return nil, newlines
			}
			return a, newlines
		}
		if isDelim(c) {
			// No token: skip blanks up to a newline or a token.
			_ = r.UnreadByte()
			for {
				c, err := r.ReadByte()
				if err != nil {
					return nil, newlines
				}
				if c == '\n' {
					return a, newlines + 1
				}
				if c == ' ' || c == '\t' || c == '\r' {
					continue
				}
				_ = r.UnreadByte()
				break
			}
			continue
		}
		tok := []byte{c}
		for len(tok) < maxTokenLength {
			c, err = r.ReadByte()
			if err != nil {
				break
			}
			if isDelim(c) {
				_ = r.UnreadByte()
				break
			}
			tok = append(tok, c)
		}
		if string(tok) != "ipvsadm" {
			ntoken++
			a = append(a, string(tok))
		}
		c, err = r.ReadByte()
		if err != nil {
			continue
		}
		if !isDelim(c) {
			_ = r.UnreadByte()
			continue
		}
		if c == '\n' {
			return a, newlines + 1
		}
	}
}

// restoreTable is -R: every stdin line runs as a command; the result is
// that of the last line.
func (t *tool) restoreTable(argv []string, readingStdin bool) int {
	if readingStdin {
		t.tryhelpExit(argv[0], -1)
	}
	result := 0
	line := 1
	for {
		a, n := readRecord(t.stdin, argv[0])
		if a == nil {
			break
		}
		if len(a) > 1 {
			t.lineNo = line
			result = t.processOptions(a, true)
		}
		line += n
	}
	t.flush()
	if result == queuedResult {
		result = t.lastOutcome
	}
	t.lineNo = 0
	return result
}
