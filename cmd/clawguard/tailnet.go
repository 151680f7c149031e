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
		summary: "tailnet status: the state of the gate's tailnet nodes and watched node hosts (exit 1 if one is down)",
		run:     runTailnet,
	})
}

const tailnetHelp = `Usage: clawguard tailnet status [--admin ADDR] [--json]

Subcommands:
  status   the state of every tailnet node of the running Caddy (read from
           its admin endpoint, GET /tailnet/nodes): state, since when, its
           tailnet name, the ports it serves and the current problem; then
           every node host it watches (the tailnet option's peers, GET
           /tailnet/peers): state, since when, address, node dialed through,
           last answer and why it is down; exits 1 if a node is not running
           or a peer is down. --json prints {"nodes": [...], "peers": [...]}
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
	asJSON := fs.Bool("json", false, `print {"nodes": [...], "peers": [...]} as JSON`)
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
	peers, err := tsnet.FetchPeers(ctx, *admin)
	if err != nil {
		return err
	}
	if *asJSON {
		out := struct {
			Nodes []tsnet.NodeHealth `json:"nodes"`
			Peers []tsnet.PeerHealth `json:"peers"`
		}{nodes, peers}
		if err := c.writeJSON(out); err != nil {
			return err
		}
	} else {
		printTailnetNodes(c, nodes)
		printTailnetPeers(c, peers)
	}
	for _, n := range nodes {
		if !n.Up() {
			return exitCode(1)
		}
	}
	for _, p := range peers {
		if p.State == tsnet.PeerDown {
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

// printTailnetPeers lists the watched node hosts after the nodes; nothing
// when the config watches none.
func printTailnetPeers(c *cli, peers []tsnet.PeerHealth) {
	if len(peers) == 0 {
		return
	}
	fmt.Fprintln(c.stdout)
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PEER\tSTATE\tSINCE\tADDRESS\tVIA\tLAST SEEN\tPROBLEM")
	for _, p := range peers {
		seen := "never"
		if !p.LastSeen.IsZero() {
			seen = p.LastSeen.Format(time.RFC3339)
		}
		problem := "-"
		if p.State == tsnet.PeerDown {
			problem = p.LastError
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Peer, p.State, p.Since.Format(time.RFC3339), p.Address, p.Via, seen, problem)
	}
	w.Flush()
}
