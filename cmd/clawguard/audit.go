package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/term"

	"github.com/clawguard/clawguard/audit"
	"github.com/clawguard/clawguard/statedir"
	"github.com/clawguard/clawguard/trail"
)

func init() {
	register(&command{
		name:    "audit",
		summary: "audit this installation; audit verify-trail checks the audit trail's hash chain",
		run:     runAudit,
	})
}

var auditHelp = `Usage: clawguard audit [--config Caddyfile] [--state-dir DIR] [--json] [--fix [--dry-run]]
                       [--deep [--gateway URL] [--sidecar-socket PATH]] [--caddy PATH]
                       [--allow-module ID]... [--allow-port N]...
       clawguard audit verify-trail [--state-dir DIR] [--dir TRAIL_DIR] [--json]

Without a subcommand, audits this installation: file permissions, Go and
Caddy versions, plaintext secrets, Caddy plugins, listening sockets, the
gate's authentication, exec approvals, sandbox profiles and tailnet
exposure. Exit status 0 when no finding is critical, 1 otherwise.

Flags:
  --config FILE         the Caddyfile (or Caddy JSON) to audit (default
                        <state_dir>/Caddyfile, else ./Caddyfile)
  --json                print the report (and with --fix the plan and its
                        results) as JSON
  --fix                 print a plan, then fix what can be fixed safely:
                        chmod (only ever removing access), move plaintext
                        secrets into the vault and write {vault.NAME} in
                        their place (backup kept in <state_dir>/backups),
                        remove "rate_limit off"; then audit again
  --dry-run             with --fix: print the plan only
  --deep                also probe the running gate (--gateway, default
                        ` + audit.DefaultGatewayURL + `) and sidecar socket
  --caddy PATH          audit this caddy binary's Go/Caddy versions and
                        modules instead of clawguard's own
  --allow-module ID     allow a non-standard Caddy module (repeatable;
                        "ns.*" allows a namespace)
  --allow-port N        a TCP port meant to be open beyond loopback
                        (repeatable); reported as info
  --sidecar-config FILE, --approvals FILE
                        default <state_dir>/sidecar.json, approvals.json

Checks: ` + auditCheckList() + `

Subcommands:
  verify-trail   check every record of the audit trail (<state_dir>/trail):
                 hashes, sequence, chain across rotated files, and the head;
                 exits 1 and names the first broken record (file, line, seq,
                 why) if anything was edited, removed, reordered or inserted
`

// auditCheckList lists the check IDs, wrapped for the help text.
func auditCheckList() string {
	var b strings.Builder
	col := len("Checks: ")
	for i, id := range audit.CheckIDs() {
		if i > 0 {
			b.WriteString(",")
			col++
			if col+len(id)+1 > 78 {
				b.WriteString("\n ")
				col = 1
			}
			b.WriteString(" ")
			col++
		}
		b.WriteString(id)
		col += len(id)
	}
	return b.String() + "\n  (the deep.* checks run with --deep)"
}

// runAudit dispatches `clawguard audit <subcommand>`; without one it runs
// the security checks.
func runAudit(ctx context.Context, c *cli, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "verify-trail":
			return auditVerifyTrail(c, args[1:])
		case "-h", "--help", "help":
			io.WriteString(c.stdout, auditHelp)
			return flag.ErrHelp
		}
	}
	return auditChecks(ctx, c, args)
}

// auditChecks runs the security audit: the checks, and with --fix the plan
// and its application, then the checks again.
func auditChecks(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("audit", "audit [--config Caddyfile] [--state-dir DIR] [--json] [--fix [--dry-run]] [--deep] … (see clawguard audit --help)")
	dirFlag := stateDirFlag(fs)
	config := fs.String("config", "", "the Caddyfile or Caddy JSON to audit (default <state_dir>/Caddyfile, else ./Caddyfile)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fix := fs.Bool("fix", false, "print a plan, fix what can be fixed safely, then audit again")
	dryRun := fs.Bool("dry-run", false, "with --fix: print the plan and change nothing")
	deep := fs.Bool("deep", false, "also probe the running gate and sidecar")
	gateway := fs.String("gateway", audit.DefaultGatewayURL, "the running gate, for --deep")
	socket := fs.String("sidecar-socket", "", "the running sidecar's socket, for --deep (default <state_dir>/sidecar.sock)")
	sidecarCfg := fs.String("sidecar-config", "", "the sidecar config (default <state_dir>/sidecar.json)")
	approvalsFile := fs.String("approvals", "", "the approvals file (default <state_dir>/approvals.json)")
	caddyBin := fs.String("caddy", "", "audit this caddy binary's versions and modules instead of clawguard's own")
	var modules, ports auditListFlag
	fs.Var(&modules, "allow-module", "a non-standard Caddy module ID to allow (repeatable, or comma-separated; \"ns.*\" for a namespace)")
	fs.Var(&ports, "allow-port", "a TCP port meant to be open beyond loopback (repeatable, or comma-separated)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if *dryRun && !*fix {
		return usageError{"--dry-run goes with --fix"}
	}
	opts := audit.Options{
		StateDir: statedir.Resolve(*dirFlag), Config: *config, SidecarConfig: *sidecarCfg, Approvals: *approvalsFile,
		CaddyBinary: *caddyBin, AllowModules: modules, Deep: *deep, GatewayURL: *gateway, SidecarSocket: *socket,
	}
	for _, p := range ports {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return usageError{fmt.Sprintf("--allow-port %q: want a port number", p)}
		}
		opts.AllowPorts = append(opts.AllowPorts, n)
	}
	if opts.Config == "" && !auditFileExists(filepath.Join(opts.StateDir, "Caddyfile")) && auditFileExists("Caddyfile") {
		opts.Config = "Caddyfile"
	}
	color := !*asJSON && os.Getenv("NO_COLOR") == "" && auditIsTerminal(c.stdout)
	rep, err := audit.Run(ctx, opts)
	if err != nil {
		return err
	}
	if *fix {
		if rep, err = auditFix(ctx, c, opts, rep, *dryRun, *asJSON, color); err != nil {
			return err
		}
	}
	if *asJSON {
		if err := c.writeJSON(rep); err != nil {
			return err
		}
	} else if err := rep.WriteText(c.stdout, color); err != nil {
		return err
	} else if *fix && *dryRun {
		// Last, where a person reads first: the plan above was not applied.
		fmt.Fprintln(c.stdout, "\n--dry-run: nothing was changed (run `clawguard audit --fix` without --dry-run to apply the plan)")
	}
	if rep.Critical() {
		return exitCode(1)
	}
	return nil
}

// auditFix prints the plan (unless JSON is wanted), applies it unless this
// is a dry run, and returns the report to print: the audit after the fix,
// carrying the plan's outcome.
func auditFix(ctx context.Context, c *cli, opts audit.Options, rep *audit.Report, dryRun, asJSON, color bool) (*audit.Report, error) {
	plan, err := audit.PlanFix(ctx, opts, rep)
	if err != nil {
		return nil, err
	}
	planned := plan.Report()
	if !asJSON {
		if err := planned.WriteText(c.stdout, color); err != nil {
			return nil, err
		}
		fmt.Fprintln(c.stdout)
	}
	if dryRun || plan.Empty() {
		rep.Fix = planned
		return rep, nil
	}
	done := plan.Apply(ctx)
	if !asJSON {
		if err := done.WriteText(c.stdout, color); err != nil {
			return nil, err
		}
		fmt.Fprintln(c.stdout)
	}
	after, err := audit.Run(ctx, opts)
	if err != nil {
		return nil, err
	}
	after.Fix = done
	return after, nil
}

// auditListFlag is a repeatable flag that also splits on commas.
type auditListFlag []string

func (l *auditListFlag) String() string { return strings.Join(*l, ",") }

func (l *auditListFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func auditFileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// isTerminal reports whether w is a terminal (colour is for people only).
func auditIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func auditVerifyTrail(c *cli, args []string) error {
	fs := c.flagSet("audit verify-trail", "audit verify-trail [--state-dir DIR] [--dir TRAIL_DIR] [--json]")
	dirFlag := stateDirFlag(fs)
	trailDir := fs.String("dir", "", "trail directory (default <state_dir>/trail)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	dir := *trailDir
	if dir == "" {
		dir = trail.Dir(statedir.Resolve(*dirFlag))
	}
	rep, err := trail.Verify(dir)
	var broken *trail.Break
	if err != nil && !errors.As(err, &broken) {
		return err
	}
	if *asJSON {
		if err := c.writeJSON(rep); err != nil {
			return err
		}
	} else if broken != nil {
		fmt.Fprintf(c.stdout, "%s\n%d records verified before it.\n", broken, rep.Records)
	} else {
		fmt.Fprintf(c.stdout, "audit trail OK: %d records in %d file(s) in %s\n", rep.Records, rep.Files, dir)
		if rep.Records > 0 {
			fmt.Fprintf(c.stdout, "last seq %d, hash %s (keep a copy elsewhere to detect a rewrite of the whole trail)\n", rep.LastSeq, rep.LastHash)
		}
	}
	if broken != nil {
		return exitCode(1)
	}
	return nil
}
