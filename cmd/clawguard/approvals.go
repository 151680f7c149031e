package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/sandbox"
	"github.com/clawguard/clawguard/sidecar"
	"github.com/clawguard/clawguard/statedir"
	"github.com/clawguard/clawguard/wire"
)

func init() {
	register(&command{
		name:    "approvals",
		summary: "exec approvals: check a command against the policy; list and answer pending asks",
		run:     runApprovals,
	})
}

// dockerPath is the PATH Docker gives a container whose image sets none:
// the default search path for sandbox checks.
const dockerPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

const approvalsHelp = `Usage: clawguard approvals <verb> [flags]

Exec approvals decide which commands agents may run (the file is
<state_dir>/approvals.json, mode 0600; docs/approvals.md has its format).

Verbs:
  check         evaluate one command against the policy, exactly as the
                sidecar does, and print {"decision","resolved","rule","reason"};
                the exit status tells the decision: 0 allow, 3 ask, 4 deny
                (1 an error, 2 a wrong invocation). For a sandbox command,
                --image IMAGE resolves the program in that local Docker image
                as the sidecar does, --root DIR in an unpacked root
  list          the asks waiting for a person (--state decided|all for more)
  allow-once    ID   run this command, this time
  allow-always  ID   run it and record an allow entry for it (exactly these
                     arguments, or --args REGEX); refused for a bare shell or
                     interpreter and for patterns that would admit any code
  deny          ID   refuse it

list, allow-once, allow-always and deny talk to the running sidecar over its
socket (--socket, default <state_dir>/sidecar.sock) as unix:<your login>,
which is what the audit trail records as the decider.

Examples:
  clawguard approvals check --agent main --target host -- git status
  clawguard approvals check --agent main --target node -- id -u
  clawguard approvals check --agent main --image clawguard-tools:1 -- ls -la
  clawguard approvals check --agent main --root /srv/rootfs -- env FOO=1 rm -rf /
  clawguard approvals list
  clawguard approvals allow-always apr_k3x... --args '^status( .*)?$'
`

func runApprovals(ctx context.Context, c *cli, args []string) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		io.WriteString(c.stdout, approvalsHelp)
		return flag.ErrHelp
	}
	verb, args, err := subcommand(args, "check", "list", "allow-once", "allow-always", "deny")
	if err != nil {
		return err
	}
	switch verb {
	case "check":
		return approvalsCheck(ctx, c, args)
	case "list":
		return approvalsList(ctx, c, args)
	}
	return approvalsAnswer(ctx, c, approvals.Choice(verb), args)
}

// envFlags collects repeated --env NAME=VALUE flags.
type envFlags map[string]string

func (e envFlags) String() string { return "" }

func (e envFlags) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q is not NAME=VALUE", s)
	}
	e[name] = value
	return nil
}

func approvalsCheck(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("approvals check", "approvals check [flags] -- ARGV…")
	dirFlag := stateDirFlag(fs)
	file := fs.String("file", "", "approval file (default <state_dir>/approvals.json)")
	agent := fs.String("agent", "", "agent name (required)")
	target := fs.String("target", "sandbox", "where the command would run: sandbox, host or node")
	cwd := fs.String("cwd", "", "working directory (default: the current one for host and node, /workspace for sandbox)")
	pathList := fs.String("path", "", "PATH to look argv[0] up in (default: $PATH for host, the sidecar config's node_exec.path for node, Docker's default for sandbox)")
	sidecarConfig := fs.String("config", "", "node only: the sidecar's config, for node_exec.path (default <state_dir>/"+wire.FileSidecarConfig+")")
	root := fs.String("root", "", "sandbox only: the image's root filesystem directory to resolve programs in (/ for this machine's)")
	image := fs.String("image", "", "sandbox only: a local Docker image to resolve programs in, as the sidecar does (never pulled)")
	env := envFlags{}
	fs.Var(env, "env", "NAME=VALUE the request sets (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := fs.Args()
	switch {
	case *agent == "":
		return usageError{"--agent is required"}
	case len(argv) == 0:
		return usageError{"no command given: clawguard approvals check --agent A -- ARGV…"}
	}
	req := approvals.Request{Agent: *agent, Argv: argv, Cwd: *cwd, Path: *pathList, Target: approvals.Target(*target)}
	if len(env) > 0 {
		req.Env = env
	}
	stateDir := statedir.Resolve(*dirFlag)
	switch req.Target {
	case approvals.TargetHost, approvals.TargetNode:
		if *root != "" || *image != "" {
			return usageError{"--root and --image apply to --target sandbox only"}
		}
		if req.Cwd == "" {
			wd, err := os.Getwd()
			if err != nil {
				return err
			}
			req.Cwd = wd
		}
		switch {
		case req.Path != "":
		case req.Target == approvals.TargetNode:
			p, err := nodeExecPath(c, *sidecarConfig, stateDir)
			if err != nil {
				return err
			}
			req.Path = p
		default:
			req.Path = os.Getenv("PATH")
		}
	case approvals.TargetSandbox:
		switch {
		case *root != "" && *image != "":
			return usageError{"give --image or --root, not both"}
		case *image != "":
			r, closeImage, err := sidecar.ImageResolver(ctx, sandbox.Profile{Image: *image})
			if err != nil {
				return err
			}
			defer closeImage()
			req.Resolver = r
		case *root != "":
			req.Resolver = approvals.RootResolver{Root: *root}
		default:
			return usageError{"--target sandbox needs --image IMAGE (a local Docker image, as the sidecar sees it) or --root DIR (the image's root filesystem, e.g. from `docker export`; / for this machine's); or use --target host"}
		}
		if req.Cwd == "" {
			req.Cwd = "/workspace"
		}
		if req.Path == "" {
			req.Path = dockerPath
		}
	default:
		return usageError{fmt.Sprintf("--target %q is not sandbox, host or node", *target)}
	}
	path := *file
	if path == "" {
		path = approvals.DefaultPath(stateDir)
	}
	cfg, err := approvals.Load(path)
	if err != nil {
		return err
	}
	p, err := approvals.NewPolicy(cfg)
	if err != nil {
		return fmt.Errorf("approvals config %s: %w", path, err)
	}
	// One compact line, as docs/design.md shows it; reasons quote patterns, so
	// keep <, > and & readable.
	enc := json.NewEncoder(c.stdout)
	enc.SetEscapeHTML(false)
	d := p.Evaluate(req)
	if err := enc.Encode(d.Check()); err != nil {
		return err
	}
	switch d.Verdict {
	case approvals.Allow:
		return nil
	case approvals.Ask:
		return exitCode(checkExitAsk)
	}
	return exitCode(checkExitDeny)
}

// nodeExecPath is the PATH the sidecar looks node commands up in: its
// config's node_exec.path. A config without node_exec (the sidecar then
// refuses target node) gets node_exec's default, and a note saying so.
func nodeExecPath(c *cli, file, stateDir string) (string, error) {
	if file == "" {
		file = filepath.Join(stateDir, wire.FileSidecarConfig)
	}
	cfg, err := sidecar.LoadConfig(file, stateDir)
	if err != nil {
		return "", err
	}
	if cfg.NodeExec == nil {
		fmt.Fprintf(c.stderr, "note: %s has no \"node_exec\" block, so the sidecar refuses target node; judged with node_exec's default path %s\n", file, sandbox.DefaultPath)
		return sandbox.DefaultPath, nil
	}
	return cfg.NodeExec.Path, nil
}

// Exit statuses of `approvals check` beyond 0 (allow), 1 (error) and 2
// (usage).
const (
	checkExitAsk  = 3
	checkExitDeny = 4
)
