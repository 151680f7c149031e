package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/clawguard/clawguard/statedir"
)

// command is one `clawguard <name>` subcommand.
type command struct {
	name    string
	summary string // one line for the command list
	run     func(ctx context.Context, cli *cli, args []string) error
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("clawguard: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// cli carries the process's streams so commands can be tested in-process.
type cli struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// usageShown records that a FlagSet printed its usage, which the flag
	// package does on a parse error (after printing the error itself).
	usageShown bool
}

// exitCode lets a command end with a status other than 1 without printing an
// error (e.g. `audit` exits 1 when it finds a critical issue).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError marks a wrong invocation: exit 2, like flag's own errors.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &cli{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, c *cli, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		c.printUsage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(c.stderr, "clawguard: unknown command %q (see clawguard --help)\n", args[0])
		return 2
	}
	err := cmd.run(ctx, c, args[1:])
	var ec exitCode
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ec):
		return int(ec)
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "clawguard %s: %s\n", cmd.name, ue.msg)
		return 2
	case c.usageShown:
		return 2 // a flag error, already reported by the flag package
	default:
		fmt.Fprintf(c.stderr, "clawguard %s: %v\n", cmd.name, err)
		return 1
	}
}

func (c *cli) printUsage() {
	fmt.Fprintln(c.stdout, "clawguard — security sidecar for self-hosted AI-agent gateways")
	fmt.Fprintln(c.stdout, "\nUsage: clawguard <command> [flags] [args]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(c.stdout, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(c.stdout, "\nRun 'clawguard <command> --help' for a command's flags.")
	fmt.Fprintf(c.stdout, "Every command takes --state-dir (default $%s, else %s).\n", statedir.EnvVar, statedir.Default())
}

// flagSet returns a FlagSet for a subcommand that reports errors instead of
// exiting, with usage text written to the command's stderr.
func (c *cli) flagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("clawguard "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		c.usageShown = true
		fmt.Fprintf(c.stderr, "Usage: clawguard %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// stateDirFlag adds the --state-dir flag every command takes.
func stateDirFlag(fs *flag.FlagSet) *string {
	return fs.String("state-dir", "", "state directory (default $"+statedir.EnvVar+", else "+statedir.Default()+")")
}

// writeJSON prints v as indented JSON, the format of every --json output.
func (c *cli) writeJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// subcommand splits "<verb> args..." for commands with verbs (vault, devices,
// approvals) and names the valid verbs when it is missing or unknown.
func subcommand(args []string, verbs ...string) (string, []string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return "", nil, usageError{"missing subcommand; one of: " + strings.Join(verbs, ", ")}
	}
	for _, v := range verbs {
		if args[0] == v {
			return v, args[1:], nil
		}
	}
	return "", nil, usageError{fmt.Sprintf("unknown subcommand %q; one of: %s", args[0], strings.Join(verbs, ", "))}
}
