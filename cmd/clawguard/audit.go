package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/clawguard/clawguard/audit"
	"github.com/clawguard/clawguard/statedir"
)

func init() {
	register(&command{
		name:    "audit",
		summary: "audit this installation; audit verify-trail checks the audit trail's hash chain",
		run:     runAudit,
	})
}

const auditHelp = `Usage: clawguard audit [flags]
       clawguard audit verify-trail [--state-dir DIR] [--dir TRAIL_DIR] [--json]

Subcommands:
  verify-trail   check every record of the audit trail (<state_dir>/trail):
                 hashes, sequence, chain across rotated files, and the head;
                 exits 1 and names the first broken record (file, line, seq,
                 why) if anything was edited, removed, reordered or inserted
`

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

// auditChecks is the security audit (checks and fixes), which is not part
// of this build yet.
func auditChecks(_ context.Context, _ *cli, _ []string) error {
	return usageError{"the security checks are not part of this build yet; available: clawguard audit verify-trail"}
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
		dir = audit.TrailDir(statedir.Resolve(*dirFlag))
	}
	rep, err := audit.VerifyTrail(dir)
	var broken *audit.TrailBreak
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
