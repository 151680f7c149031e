package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clawguard/clawguard/tsnet"
)

func init() {
	register(&command{
		name:    "tailnet",
		summary: "tailnet status: the state of the gate's tailnet nodes (exit 1 if one is not running)",
		run:     runTailnet,
	})
}

const tailnetHelp = `Usage: clawguard tailnet status [--admin ADDR] [--json]

Subcommands:
  status   the state of every tailnet node of the running Caddy (read from
           its admin endpoint, GET /tailnet/nodes): state, since when, its
           tailnet name, the ports it serves and the current problem; exits
           1 if a node is not running
`

func runTailnet(ctx context.Context, c *cli, args []string) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		io.WriteString(c.stdout, tailnetHelp)
		return flag.ErrHelp
	}
	_, rest, err := subcommand(args, "status")
	if err != nil {
		return err
	}
	return tailnetStatus(ctx, c, rest)
}

// tailnetStatus reads GET /tailnet/nodes from Caddy's admin endpoint.
func tailnetStatus(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("tailnet status", "tailnet status [--admin ADDR] [--json]")
	admin := fs.String("admin", "localhost:2019", "Caddy's admin endpoint (host:port)")
	asJSON := fs.Bool("json", false, "print the nodes as JSON")
	stateDirFlag(fs) // accepted like every command's; the state lives in Caddy
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if strings.Contains(*admin, "/") {
		return usageError{fmt.Sprintf("--admin %q: want host:port", *admin)}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nodes, err := tsnet.FetchHealth(ctx, *admin)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := c.writeJSON(nodes); err != nil {
			return err
		}
	} else {
		printTailnetNodes(c, nodes)
	}
	for _, n := range nodes {
		if !n.Up() {
			return exitCode(1)
		}
	}
	return nil
}

func printTailnetNodes(c *cli, nodes []tsnet.NodeHealth) {
	if len(nodes) == 0 {
		fmt.Fprintln(c.stdout, "no tailnet nodes (no site binds tailnet/<node>)")
		return
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tSTATE\tSINCE\tNAME\tPORTS\tPROBLEM")
	for _, n := range nodes {
		name := n.DNSName
		if name == "" {
			name = n.Hostname
		}
		ports := make([]string, len(n.Listeners))
		for i, p := range n.Listeners {
			ports[i] = fmt.Sprint(p)
		}
		problem := n.Error
		if problem == "" {
			problem = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Node, n.State, n.Since.Format(time.RFC3339), name, strings.Join(ports, ","), problem)
	}
	w.Flush()
}
