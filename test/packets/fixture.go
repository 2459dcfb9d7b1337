// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package packets

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fullnat/fullnat/internal/pktfix"
)

// step is one line of a fixture.
type step struct {
	where  string // file:line
	verb   string
	node   string
	dir    string // in or out
	arg    string // the command, packet line or duration
	packet *pktfix.Template
	dur    time.Duration
}

func parseFixture(file string) ([]step, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseSteps(filepath.Base(file), f)
}

// parseSteps parses the steps of a fixture named name.
func parseSteps(name string, r io.Reader) ([]step, error) {
	var err error
	var steps []step
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		w := strings.Fields(line)
		if len(w) == 0 {
			continue
		}
		s := step{where: fmt.Sprintf("%s:%d", name, n), verb: w[0]}
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%s: %s: %s", s.where, s.verb, fmt.Sprintf(format, a...))
		}
		rest := func(i int) string { return strings.Join(w[i:], " ") }
		switch s.verb {
		case "run", "send":
			if len(w) < 3 {
				return nil, bad("want %s NODE ...", s.verb)
			}
			s.node, s.arg = w[1], rest(2)
		case "expect", "quiet":
			if len(w) < 4 || (w[2] != "in" && w[2] != "out") {
				return nil, bad("want %s NODE in|out ...", s.verb)
			}
			s.node, s.dir, s.arg = w[1], w[2], rest(3)
		case "sleep":
			if len(w) != 2 {
				return nil, bad("want sleep DURATION")
			}
			s.arg = w[1]
		default:
			return nil, bad("unknown step (run, send, expect, quiet, sleep)")
		}
		switch s.verb {
		case "send", "expect":
			if s.packet, err = pktfix.Parse(s.arg); err != nil {
				return nil, bad("%v", err)
			}
			if s.verb == "expect" {
				if err := s.packet.Complete(); err != nil {
					return nil, bad("%v", err)
				}
			}
		case "quiet", "sleep":
			if s.dur, err = time.ParseDuration(s.arg); err != nil {
				return nil, bad("%v", err)
			}
		}
		if s.node != "" && s.node != "client" && s.node != "director" && s.node != "rs1" {
			return nil, bad("node %q is not client, director or rs1", s.node)
		}
		if (s.verb == "send" || s.verb == "expect" || s.verb == "quiet") && s.node == "director" {
			return nil, bad("packets are sent and captured on client and rs1")
		}
		steps = append(steps, s)
	}
	return steps, sc.Err()
}
