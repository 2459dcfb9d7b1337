// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Command ipvsadm is a drop-in replacement for ipvsadm 1.31 as Debian
// ships it (same syntax, output, messages and exit codes), with Alibaba's
// FULLNAT extension options (-P/-Q/-G/-z, -b for real servers, -j, -V).
//
// urfave/cli is the outer shell; it hands argv over verbatim to a
// tokenizer with popt's rules, because ipvsadm's grammar (commands as
// flags, an optional value for -p, clusters such as -Ln, -b that means
// two things) is not expressible in urfave's flag grammar.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

func main() {
	// A run lives for one command: a listing of thousands of entries
	// allocates a few times its live memory in garbage that the exit frees
	// anyway, so collect less often than Go's default (unless the user
	// set GOGC).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	// Nor does it gain from transparent huge pages: with THP "always"
	// (Debian's kernels) the first touch of each 2 MiB of heap clears all
	// of it, most of which a run never uses (in the VM benchmark a fifth
	// of -Ln's time on 2000 services). The setting is the process's and
	// its children's (modprobe); an error (a kernel without THP) changes
	// nothing.
	_ = unix.Prctl(unix.PR_SET_THP_DISABLE, 1, 0, 0, 0)
	code := 0
	app := &cli.App{
		Name:            "ipvsadm",
		Usage:           "Linux Virtual Server administration",
		SkipFlagParsing: true,
		HideHelp:        true,
		HideVersion:     true,
		Action: func(c *cli.Context) error {
			args := append([]string{os.Args[0]}, c.Args().Slice()...)
			code = run(args, os.Stdin, os.Stdout, os.Stderr, env{
				open:     openKernel,
				res:      newSystemResolver(),
				connPath: connProcFile,
				posix:    os.Getenv("POSIXLY_CORRECT") != "" || os.Getenv("POSIX_ME_HARDER") != "",
				modprobe: modprobeIPVS,
			})
			return nil
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(code)
}

// env is what a run depends on besides argv and the standard streams.
type env struct {
	open     func() (backend, error)
	res      *resolver
	connPath string
	posix    bool
	modprobe func() error
}

// modprobeIPVS runs modprobe as ipvsadm does, sharing our stdout and
// stderr.
func modprobeIPVS() error {
	cmd := exec.Command("/sbin/modprobe", "--", "ip_vs")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// run is ipvsadm's main: it returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, e env) (code int) {
	t := &tool{
		stdout:   bufio.NewWriterSize(stdout, 64*1024),
		stderr:   stderr,
		stdin:    bufio.NewReader(stdin),
		res:      e.res,
		connPath: e.connPath,
		posix:    e.posix,
	}
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(exitCode)
			if !ok {
				panic(r)
			}
			code = int(c) & 0xff
		}
		_ = t.stdout.Flush()
		if t.be != nil {
			_ = t.be.Close()
		}
	}()

	be, inf, err := initIPVS(e.open)
	if err != nil && e.modprobe != nil && e.modprobe() == nil {
		be, inf, err = initIPVS(e.open)
	}
	if err != nil {
		msg := ipvsStrerror(opOther, syscall.ENOPROTOOPT)
		if errno, ok := errnoOf(err); ok && errno == syscall.EPERM {
			msg = ipvsStrerror(opOther, errno)
		}
		t.fail(2, "Can't initialize ipvs: %s\nAre you sure that IP Virtual Server is built in the kernel or as module?", msg)
	}
	t.be, t.inf = be, inf

	if len(args) == 1 {
		t.listAll(0)
		return 0
	}
	return t.processOptions(args, false) & 0xff
}

func initIPVS(open func() (backend, error)) (backend, info, error) {
	be, err := open()
	if err != nil {
		return nil, info{}, err
	}
	inf, err := be.Info()
	if err != nil {
		_ = be.Close()
		return nil, info{}, err
	}
	return be, inf, nil
}

// openKernel opens the netlink backend (kernel.go).
var openKernel func() (backend, error)
