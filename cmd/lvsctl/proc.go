// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// procFS reads the module's /proc files: the extension counters and the
// extension sysctls. Root is "/proc" but for tests.
type procFS struct{ root string }

// extStatsFile is the module's per-CPU counter table (kmod/ip_vs_fnat.c).
const extStatsFile = "net/ip_vs_ext_stats"

// sysctlDir holds IPVS's sysctls.
const sysctlDir = "sys/net/ipv4/vs"

// extSysctlPrefixes select the extension's sysctls among IPVS's.
var extSysctlPrefixes = []string{"fullnat_", "synproxy_", "defence_"}

// extStat is one counter of ip_vs_ext_stats, summed over the CPUs.
type extStat struct {
	Name  string
	Value uint64
}

// ExtStats reads ip_vs_ext_stats. A missing file (stock module) gives an
// error matching os.ErrNotExist.
func (p procFS) ExtStats() ([]extStat, error) {
	f, err := os.Open(filepath.Join(p.root, extStatsFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := parseExtStats(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return st, nil
}

// parseExtStats parses the table: a header of CPU names, then one line per
// counter, "name: v0 v1 ...", one value per online CPU.
func parseExtStats(r io.Reader) ([]extStat, error) {
	sc := bufio.NewScanner(r)
	var out []extStat
	line := 0
	for sc.Scan() {
		line++
		if line == 1 {
			continue
		}
		name, vals, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			if strings.TrimSpace(sc.Text()) == "" {
				continue
			}
			return nil, fmt.Errorf("line %d: no colon in %q", line, sc.Text())
		}
		st := extStat{Name: strings.TrimSpace(name)}
		for _, v := range strings.Fields(vals) {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: counter %s: value %q: %w", line, st.Name, v, err)
			}
			st.Value += n
		}
		out = append(out, st)
	}
	return out, sc.Err()
}

// sysctl is one extension sysctl.
type sysctl struct {
	Name  string
	Value int64
}

// Sysctls lists the extension's sysctls in name order. Without our module
// the list is empty.
func (p procFS) Sysctls() ([]sysctl, error) {
	ents, err := os.ReadDir(filepath.Join(p.root, sysctlDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []sysctl
	for _, e := range ents {
		if !isExtSysctl(e.Name()) {
			continue
		}
		v, err := p.Sysctl(e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, sysctl{e.Name(), v})
	}
	return out, nil
}

func isExtSysctl(name string) bool {
	return slices.ContainsFunc(extSysctlPrefixes, func(p string) bool { return strings.HasPrefix(name, p) })
}

// checkSysctlName refuses a name that is not an extension sysctl or that
// could leave the directory.
func checkSysctlName(name string) error {
	if !isExtSysctl(name) || strings.ContainsAny(name, "/\x00") {
		return usagef("%q is not an extension sysctl (names start with %s)", name, strings.Join(extSysctlPrefixes, ", "))
	}
	return nil
}

// Sysctl reads one extension sysctl.
func (p procFS) Sysctl(name string) (int64, error) {
	if err := checkSysctlName(name); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(p.root, sysctlDir, name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("sysctl %s: %w (is the fullnat ip_vs module loaded?)", name, err)
		}
		return 0, fmt.Errorf("sysctl %s: %w", name, err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("sysctl %s: value %q: %w", name, strings.TrimSpace(string(b)), err)
	}
	return v, nil
}

// SetSysctl writes one extension sysctl. The kernel refuses values out of
// its range with EINVAL.
func (p procFS) SetSysctl(name, value string) error {
	if err := checkSysctlName(name); err != nil {
		return err
	}
	v, err := strconv.ParseInt(value, 10, 32)
	if err != nil {
		return usagef("sysctl %s: value %q is not an integer", name, value)
	}
	path := filepath.Join(p.root, sysctlDir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sysctl %s: %w (is the fullnat ip_vs module loaded?)", name, err)
		}
		return fmt.Errorf("sysctl %s: %w", name, err)
	}
	_, err = fmt.Fprintf(f, "%d\n", v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sysctl %s = %d: %w (out of the kernel's range?)", name, v, err)
	}
	return nil
}
