package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/audit"
	"github.com/clawguard/clawguard/sidecar"
	"github.com/clawguard/clawguard/statedir"
	"github.com/clawguard/clawguard/wire"
	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	register(&command{
		name:    "sidecar",
		summary: "run the sidecar daemon: exec API on a unix socket, Docker sandboxes, /metrics",
		run:     runSidecar,
	})
}

func runSidecar(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("sidecar", "sidecar "+daemonUsage+" [--check [--json]] "+tailnetUsage)
	df := addDaemonFlags(fs)
	check := fs.Bool("check", false, "validate the config file and exit (prints the effective config with --json)")
	asJSON := fs.Bool("json", false, "with --check: print the effective config, defaults filled in, as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	o, err := df.options(c, fs)
	if err != nil {
		return err
	}
	if *check {
		return checkSidecarConfig(c, o.ConfigPath, o.StateDir, *asJSON)
	}
	return sidecar.Run(ctx, o)
}

// daemonFlags are the flags of the commands that run the sidecar daemon
// (sidecar, node).
type daemonFlags struct {
	stateDir, config, socket, format, level *string
	auditEvery                              *time.Duration
	tailnet                                 *tailnetFlags
}

const daemonUsage = "[--state-dir DIR] [--config FILE] [--socket PATH] [--log-format json|text] [--log-level LEVEL] [--audit-interval 15m]"

func addDaemonFlags(fs *flag.FlagSet) *daemonFlags {
	return &daemonFlags{
		stateDir:   stateDirFlag(fs),
		config:     fs.String("config", "", "config file (default <state_dir>/"+wire.FileSidecarConfig+"; a missing file means defaults: the approvals policy decides, no host commands)"),
		socket:     fs.String("socket", "", "unix socket path, mode 0600 (default <state_dir>/"+wire.FileSidecarSocket+"); the sidecar never listens on TCP (beyond --tailnet)"),
		auditEvery: fs.Duration("audit-interval", audit.DefaultMonitorInterval, "how often to re-run the security audit for clawguard_audit_findings (0 or less: never)"),
		format:     fs.String("log-format", "json", "log format: json or text (logs go to stderr)"),
		level:      fs.String("log-level", "info", "log level: debug, info, warn or error"),
		tailnet:    addTailnetFlags(fs),
	}
}

// options checks the parsed flags and returns the daemon's options.
func (f *daemonFlags) options(c *cli, fs *flag.FlagSet) (sidecar.DaemonOptions, error) {
	tailnet, err := f.tailnet.options(fs)
	if err != nil {
		return sidecar.DaemonOptions{}, err
	}
	logger, err := sidecarLogger(c.stderr, *f.format, *f.level)
	if err != nil {
		return sidecar.DaemonOptions{}, err
	}
	dir, err := filepath.Abs(statedir.Resolve(*f.stateDir))
	if err != nil {
		return sidecar.DaemonOptions{}, err
	}
	cfgPath := *f.config
	if cfgPath == "" {
		cfgPath = filepath.Join(dir, wire.FileSidecarConfig)
	}
	socket := *f.socket
	if socket != "" {
		if socket, err = filepath.Abs(socket); err != nil {
			return sidecar.DaemonOptions{}, err
		}
	}
	return sidecar.DaemonOptions{StateDir: dir, ConfigPath: cfgPath, SocketPath: socket, Logger: logger, Tailnet: tailnet,
		Background: sidecarAudit(*f.auditEvery, audit.Options{StateDir: dir, SidecarConfig: cfgPath, SidecarSocket: socket}, logger),
	}, nil
}

// checkSidecarConfig is `sidecar --check`: validate the config file and
// say which policy it runs on.
func checkSidecarConfig(c *cli, cfgPath, dir string, asJSON bool) error {
	cfg, err := sidecar.LoadConfig(cfgPath, dir)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(cfgPath); errors.Is(err, os.ErrNotExist) {
		// Nothing to check: say so rather than "OK" (a typo in --config or
		// --state-dir looks just like this).
		if asJSON {
			if err := c.writeJSON(cfg); err != nil {
				return err
			}
		}
		return fmt.Errorf("%s is missing: there is no config file to check; without it the sidecar runs on the defaults (no sandbox profiles, so sandbox commands are refused with no_sandbox_profile; the approvals file decides). Create it (docs/sandboxes.md, \"Config file\") or name another with --config", cfgPath)
	}
	policy := "exec_allow (the approvals file is not used while it is set)"
	if len(cfg.ExecAllow) == 0 {
		// The file the sidecar would refuse to start on.
		store, err := approvals.OpenStore(approvals.DefaultPath(dir))
		if err != nil {
			return err
		}
		policy = "approvals " + store.Path()
	}
	if asJSON {
		return c.writeJSON(cfg)
	}
	fmt.Fprintf(c.stdout, "%s: OK (%d sandbox profiles, %d exec_allow rules, instance %s)\npolicy: %s; gateway_host %t\n",
		cfgPath, len(cfg.Sandboxes), len(cfg.ExecAllow), cfg.Instance, policy, cfg.GatewayHost)
	return nil
}

func sidecarLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("--log-level %q: one of debug, info, warn, error", level)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Sprintf("--log-format %q: json or text", format)}
}

// sidecarAudit is the sidecar's periodic security audit, every interval;
// zero or less turns it off.
func sidecarAudit(every time.Duration, opts audit.Options, log *slog.Logger) func(context.Context, prometheus.Registerer) error {
	if every <= 0 {
		return nil
	}
	return audit.Monitor(every, opts, func(err error) { log.Warn("security audit failed", "err", err) })
}
