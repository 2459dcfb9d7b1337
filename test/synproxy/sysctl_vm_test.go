// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package synproxy

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// inUserNetns runs the shell script in a new user namespace (its root is nobody outside) with a
// new network namespace, as an unprivileged user can make them.
func inUserNetns(t *testing.T, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 65534, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 65534, Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSysctlsFollowUpstream: in a network namespace of an unprivileged user, the fullnat_*,
// synproxy_* and defence_* sysctls are there exactly when the kernel's own IPVS sysctls are
// (6.1 hides them, 6.12 shows them), and where they are, that namespace's root sets them for
// that namespace only. In a namespace of the first user namespace they are always there.
func TestSysctlsFollowUpstream(t *testing.T) {
	f := newFixture(t) // loads ip_vs
	own := f.tp.Director.Run(t, "/bin/ls", "/proc/sys/net/ipv4/vs")
	for _, n := range []string{"expire_nodest_conn", "fullnat_lport_min", "synproxy_init_mss", "defence_tcp_drop"} {
		if !strings.Contains(own, n+"\n") {
			t.Errorf("%s missing in a namespace of the first user namespace:\n%s", n, own)
		}
	}
	out, err := inUserNetns(t, "ls /proc/sys/net/ipv4/vs")
	if err != nil {
		t.Fatalf("ls in a new user and network namespace: %v\n%s", err, out)
	}
	names := strings.Fields(out)
	upstream := strings.Contains(out, "expire_nodest_conn")
	ours := 0
	for _, n := range names {
		if strings.HasPrefix(n, "fullnat_") || strings.HasPrefix(n, "synproxy_") || strings.HasPrefix(n, "defence_") {
			ours++
		}
	}
	t.Logf("unprivileged namespace: upstream's sysctls there: %v; ours: %d", upstream, ours)
	switch {
	case upstream && ours < 20:
		t.Errorf("upstream's sysctls are there, only %d of ours:\n%s", ours, out)
	case !upstream && ours != 0:
		t.Errorf("upstream's sysctls are hidden, %d of ours are not:\n%s", ours, out)
	}
	if !upstream {
		return
	}
	if out, err := inUserNetns(t, "echo 1 > /proc/sys/net/ipv4/vs/synproxy_timestamp && cat /proc/sys/net/ipv4/vs/synproxy_timestamp"); err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("the namespace's root setting synproxy_timestamp: %q, %v", out, err)
	}
	if v := strings.TrimSpace(f.tp.Director.Run(t, "/bin/cat", "/proc/sys/net/ipv4/vs/synproxy_timestamp")); v != "0" {
		t.Errorf("synproxy_timestamp of another namespace changed to %s", v)
	}
}
