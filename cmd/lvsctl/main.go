// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Command lvsctl inspects and changes IPVS with the fullnat extension:
// services, real servers, FULLNAT local addresses, connections, counters and
// the extension's sysctls, with --json output in a versioned schema
// (schema/v1.json), and serves the counters to Prometheus ("lvsctl
// metrics"). See README.md next to this file.
//
// It is built on the ipvs package; ipvsadm (cmd/ipvsadm) stays the
// byte-exact drop-in for scripts written for ipvsadm 1.31.
package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fullnat/fullnat/ipvs"
	"github.com/urfave/cli/v2"
)

// bashCompletion is the script "lvsctl completion bash" prints.
//
//go:embed lvsctl.bash-completion
var bashCompletion string

// env is what a run of lvsctl works with; the tests give it fakes.
type env struct {
	stdout, stderr io.Writer
	proc           procFS
	open           func() (backend, error)
	cancels        []context.CancelFunc // of --timeout, called when the run ends
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	e := &env{
		stdout: os.Stdout,
		stderr: os.Stderr,
		proc:   procFS{root: "/proc"},
		open:   func() (backend, error) { return openKernel("") },
	}
	code := e.run(ctx, os.Args)
	stop()
	os.Exit(code)
}

// run runs one command line and returns the exit status: 0, 1 when the
// operation failed, 2 for bad input.
func (e *env) run(ctx context.Context, args []string) int {
	app := e.app()
	defer func() {
		for _, c := range e.cancels {
			c()
		}
	}()
	err := app.RunContext(ctx, interspersed(app, args))
	if err == nil {
		return 0
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return 130 // interrupted: what the shell reports for SIGINT
	}
	fmt.Fprintf(e.stderr, "lvsctl: %v\n", explain(err))
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// withBackend opens the backend for one command.
func (e *env) withBackend(fn func(b backend) error) error {
	b, err := e.open()
	if err != nil {
		return err
	}
	defer b.Close()
	return fn(b)
}

func (e *env) app() *cli.App {
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "print JSON (schema: lvsctl schema)"}
	svcArg := "SERVICE (tcp:ADDR:PORT, udp:[ADDR6]:PORT, sctp:ADDR:PORT, fwm:MARK, fwm6:MARK)"
	app := &cli.App{
		Name:                 "lvsctl",
		Usage:                "inspect and change IPVS with FULLNAT, local addresses and SYNPROXY",
		EnableBashCompletion: true,
		HideVersion:          true,
		Writer:               e.stdout,
		ErrWriter:            e.stderr,
		// Errors are printed once, by run, with the exit status it chooses.
		ExitErrHandler: func(*cli.Context, error) {},
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "timeout", Usage: "give up on a kernel request after this long (0: never); metrics has its own 10 s per scrape"},
		},
		Before: func(c *cli.Context) error {
			d := c.Duration("timeout")
			if d < 0 {
				return usagef("--timeout %v must not be negative", d)
			}
			if d > 0 {
				var cancel context.CancelFunc
				c.Context, cancel = context.WithTimeout(c.Context, d)
				e.cancels = append(e.cancels, cancel)
			}
			return nil
		},
		Commands: []*cli.Command{
			{
				Name:    "service",
				Aliases: []string{"svc"},
				Usage:   "list, add, edit and delete virtual services",
				Subcommands: []*cli.Command{
					{Name: "list", Aliases: []string{"ls"}, Usage: "list services with their real servers and local addresses",
						Flags: []cli.Flag{jsonFlag}, Action: e.serviceList},
					{Name: "show", Usage: "show one service", ArgsUsage: svcArg, Flags: []cli.Flag{jsonFlag}, Action: e.serviceShow},
					{Name: "add", Usage: "add a service", ArgsUsage: svcArg, Flags: serviceFlags(), Action: e.serviceAdd},
					{Name: "edit", Usage: "change the given settings of a service, keeping the others", ArgsUsage: svcArg,
						Flags: serviceFlags(), Action: e.serviceEdit},
					{Name: "delete", Aliases: []string{"rm"}, Usage: "delete a service and its real servers", ArgsUsage: svcArg,
						Action: e.serviceDelete},
				},
			},
			{
				Name:    "server",
				Aliases: []string{"rs", "dest"},
				Usage:   "list, add, edit and delete real servers (destinations)",
				Subcommands: []*cli.Command{
					{Name: "list", Aliases: []string{"ls"}, Usage: "list the real servers of a service", ArgsUsage: "SERVICE",
						Flags: []cli.Flag{jsonFlag}, Action: e.serverList},
					{Name: "add", Usage: "add a real server", ArgsUsage: "SERVICE ADDR:PORT", Flags: serverFlags(), Action: e.serverAdd},
					{Name: "edit", Usage: "change the given settings of a real server, keeping the others", ArgsUsage: "SERVICE ADDR:PORT",
						Flags: serverFlags(), Action: e.serverEdit},
					{Name: "delete", Aliases: []string{"rm"}, Usage: "delete a real server", ArgsUsage: "SERVICE ADDR:PORT",
						Action: e.serverDelete},
				},
			},
			{
				Name:    "laddr",
				Aliases: []string{"local-address"},
				Usage:   "list, add and delete FULLNAT local addresses",
				Subcommands: []*cli.Command{
					{Name: "list", Aliases: []string{"ls"}, Usage: "list the local addresses of a service", ArgsUsage: "SERVICE",
						Flags: []cli.Flag{jsonFlag}, Action: e.laddrList},
					{Name: "add", Usage: "add local addresses to a service", ArgsUsage: "SERVICE ADDR...", Action: e.laddrAdd},
					{Name: "delete", Aliases: []string{"rm"}, Usage: "delete local addresses of a service", ArgsUsage: "SERVICE ADDR...",
						Action: e.laddrDelete},
				},
			},
			{
				Name:    "conn",
				Aliases: []string{"connections"},
				Usage:   "list connections and persistence templates (the module's netlink dump; /proc/net/ip_vs_conn with a stock module)",
				Flags: []cli.Flag{jsonFlag,
					&cli.BoolFlag{Name: "fullnat", Usage: "only FULLNAT connections (they list their local address and port)"},
					&cli.StringFlag{Name: "service", Usage: "only the connections of this service (tcp:ADDR:PORT, fwm:MARK ...)"},
				},
				Action: e.connList,
			},
			{
				Name:  "stats",
				Usage: "counters and rates of services and real servers, and the extension's counters",
				Flags: []cli.Flag{jsonFlag,
					&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "print again every --interval until interrupted"},
					&cli.DurationFlag{Name: "interval", Aliases: []string{"i"}, Value: 2 * time.Second, Usage: "time between prints with --watch"},
					&cli.IntFlag{Name: "count", Aliases: []string{"n"}, Usage: "with --watch, stop after this many prints (0: never)"},
				},
				Action: e.stats,
			},
			{
				Name:  "sysctl",
				Usage: "read and write the extension's sysctls (fullnat_*, synproxy_*, defence_*)",
				Subcommands: []*cli.Command{
					{Name: "list", Aliases: []string{"ls"}, Usage: "list them with their values", Flags: []cli.Flag{jsonFlag}, Action: e.sysctlList},
					{Name: "get", Usage: "print one value", ArgsUsage: "NAME", Action: e.sysctlGet},
					{Name: "set", Usage: "write one value", ArgsUsage: "NAME VALUE", Action: e.sysctlSet},
				},
			},
			{
				Name: "health",
				Usage: "exit 0 when every service (or each SERVICE given) has a real server of weight above 0, " +
					"1 otherwise: the check a cluster director's announcement follows",
				ArgsUsage: "[SERVICE...]",
				Action:    e.health,
			},
			{
				Name:   "info",
				Usage:  "IPVS version, connection table size and extension features",
				Flags:  []cli.Flag{jsonFlag},
				Action: e.info,
			},
			{
				Name:  "metrics",
				Usage: "serve Prometheus metrics on /metrics",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "listen", Aliases: []string{"l"}, Value: "localhost:9577", Usage: "address to listen on"},
					&cli.StringFlag{Name: "path", Value: "/metrics", Usage: "path of the metrics"},
				},
				Action: e.metrics,
			},
			{
				Name:  "schema",
				Usage: "print the JSON Schema of the --json output",
				Action: func(c *cli.Context) error {
					if err := noArgs(c); err != nil {
						return err
					}
					_, err := io.WriteString(e.stdout, schemaV1)
					return err
				},
			},
			{
				Name:      "completion",
				Usage:     "print the bash completion script",
				ArgsUsage: "bash",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 || c.Args().First() != "bash" {
						return usagef("completion: want the shell name, bash")
					}
					_, err := io.WriteString(e.stdout, bashCompletion)
					return err
				},
			},
		},
	}
	onUsage := func(c *cli.Context, err error, _ bool) error { return usagef("%s: %v", cmdName(c), err) }
	app.OnUsageError = func(c *cli.Context, err error, sub bool) error { return usagef("%v", err) }
	var walk func([]*cli.Command)
	walk = func(cs []*cli.Command) {
		for _, c := range cs {
			c.OnUsageError = onUsage
			if len(c.Subcommands) > 0 && c.Action == nil {
				c.Action = groupAction
			}
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
	app.Action = func(c *cli.Context) error {
		if c.NArg() > 0 {
			return usagef("unknown command %q (see lvsctl --help)", c.Args().First())
		}
		return cli.ShowAppHelp(c)
	}
	return app
}

// groupAction runs for a command group without a known subcommand.
func groupAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("%s: unknown command %q (see lvsctl %s --help)", cmdName(c), c.Args().First(), cmdName(c))
	}
	return cli.ShowSubcommandHelp(c)
}

func noArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("%s: unexpected argument %q", cmdName(c), c.Args().First())
	}
	return nil
}

// wantArgs checks the number of arguments: exactly len(names), or at least
// len(names) when more is true.
func wantArgs(c *cli.Context, more bool, names ...string) error {
	n := c.NArg()
	if n < len(names) {
		return usagef("%s: missing %s", cmdName(c), names[n])
	}
	if n > len(names) && !more {
		return usagef("%s: unexpected argument %q", cmdName(c), c.Args().Get(len(names)))
	}
	return nil
}

// interspersed moves the flags of the command line's (sub)command before
// its arguments, so that "service add tcp:192.0.2.1:80 --scheduler rr"
// works: urfave/cli v2 stops parsing flags at the first argument. A flag's
// value moves with it; "--" ends the flags as usual.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 || args[len(args)-1] == "--generate-bash-completion" {
		return args
	}
	out := []string{args[0]}
	cmds := app.Commands
	i := 1
	var cmd *cli.Command
	appValue := flagsTakingValues(app.Flags)
	for i < len(args) {
		if a := args[i]; cmd == nil && strings.HasPrefix(a, "-") {
			// A global flag before the command.
			out = append(out, a)
			if n := strings.TrimLeft(a, "-"); !strings.Contains(n, "=") && appValue[n] && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
			i++
			continue
		}
		var next *cli.Command
		for _, c := range cmds {
			if c.HasName(args[i]) {
				next = c
			}
		}
		if next == nil {
			break
		}
		cmd = next
		out = append(out, args[i])
		cmds = cmd.Subcommands
		i++
	}
	if cmd == nil || len(cmd.Subcommands) > 0 {
		return args
	}
	takesValue := flagsTakingValues(cmd.Flags)
	var flags, pos []string
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if !strings.Contains(name, "=") && takesValue[name] && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if len(pos) > 0 && pos[0] != "--" && len(flags) > 0 {
		pos = append([]string{"--"}, pos...)
	}
	return append(append(out, flags...), pos...)
}

// cmdName is the command's name as typed, without the program name.
func cmdName(c *cli.Context) string {
	return strings.TrimPrefix(c.Command.HelpName, c.App.Name+" ")
}

// explain adds what a kernel error means for lvsctl's user to the
// library's error (which names the operation, the object and the errno).
func explain(err error) error {
	hint := ""
	switch {
	case errors.Is(err, ipvs.ErrSynProxyNotAllowed):
		hint = ipvs.ErrSynProxyNotAllowed.Error()
	case errors.Is(err, ipvs.ErrProxyProtocolNotAllowed):
		hint = ipvs.ErrProxyProtocolNotAllowed.Error()
	case errors.Is(err, ipvs.ErrDumpInterrupted):
		hint = "run it again"
	case errors.Is(err, syscall.ESRCH):
		hint = "no such service"
	case errors.Is(err, ipvs.ErrNotFound) && errors.Is(err, syscall.ENOENT):
		hint = "no such real server or local address"
	case errors.Is(err, ipvs.ErrExist):
		hint = "it exists already; edit changes it"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint = "a local address must be configured on an interface of the director"
	case errors.Is(err, ipvs.ErrPermission):
		hint = "IPVS needs CAP_NET_ADMIN, even for reading"
	}
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w (%s)", err, hint)
}

// flagsTakingValues maps the names of flags to whether they take a value.
func flagsTakingValues(flags []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}
