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

// What a captured frame is to the runner.
type frameKind int

const (
	// frameSkip: not an IP packet (ARP), or link housekeeping the director does not make
	// from what a fixture sends: IPv6 neighbour discovery and MLD, IGMP.
	frameSkip frameKind = iota
	// framePacket: a TCP or UDP packet the language describes.
	framePacket
	// frameOther: any other IP packet (ICMP, a fragment, extension headers, another protocol).
	frameOther
)

// EtherTypes of IP frames.
const (
	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd
)

// classify says what a frame of type etherType with IP packet data is to the runner: for
// framePacket the decoded packet, for frameOther a description of it.
func classify(etherType uint16, data []byte, partial bool) (frameKind, pktfix.Packet, string) {
	if etherType != etherIPv4 && etherType != etherIPv6 {
		return frameSkip, pktfix.Packet{}, ""
	}
	if len(data) >= 20 && data[0]>>4 == 4 && data[9] == 2 { // IGMP
		return frameSkip, pktfix.Packet{}, ""
	}
	// ICMPv6 right after the fixed header: MLD (130-132, 143), router and neighbour
	// discovery (133-137).
	if len(data) >= 41 && data[0]>>4 == 6 && data[6] == 58 {
		switch data[40] {
		case 130, 131, 132, 133, 134, 135, 136, 137, 143:
			return frameSkip, pktfix.Packet{}, ""
		}
	}
	// MLD reports carry a hop-by-hop header (router alert) before their ICMPv6.
	if len(data) >= 49 && data[0]>>4 == 6 && data[6] == 0 && data[40] == 58 && len(data) > 40+(int(data[41])+1)*8 {
		switch data[40+(int(data[41])+1)*8] {
		case 130, 131, 132, 143:
			return frameSkip, pktfix.Packet{}, ""
		}
	}
	p, err := pktfix.Decode(data, partial)
	if err != nil {
		return frameOther, pktfix.Packet{}, pktfix.Describe(data)
	}
	return framePacket, p, ""
}
