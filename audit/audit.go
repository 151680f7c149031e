package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/clawguard/clawguard/vault"
	"github.com/clawguard/clawguard/wire"
)

// DefaultGatewayURL is where --deep looks for the running gate.
const DefaultGatewayURL = "http://127.0.0.1:18789"

// Options configures an audit run. Only StateDir is required.
type Options struct {
	// StateDir is the clawguard state directory to audit (callers resolve
	// it with statedir.Resolve). Required.
	StateDir string

	// Config is the Caddy config: a Caddyfile, or Caddy JSON if its name
	// ends in .json. Default: <StateDir>/Caddyfile when it exists, else
	// none, and the checks that need it are skipped.
	Config string

	// SidecarConfig is the sidecar's config file. Default:
	// <StateDir>/sidecar.json.
	SidecarConfig string

	// Approvals is the exec approvals file. Default:
	// <StateDir>/approvals.json.
	Approvals string

	// CaddyBinary is an external caddy binary (e.g. built with xcaddy)
	// whose Go version, Caddy version and modules are audited. Default:
	// this program, which embeds Caddy.
	CaddyBinary string

	// AllowModules are Caddy module IDs allowed besides Caddy's standard
	// modules and clawguard's own; an entry ending in ".*" allows a
	// namespace. Default: none.
	AllowModules []string

	// AllowPorts are TCP ports that may listen beyond loopback and the
	// tailnet (say 22 for sshd); such listeners are reported as info.
	// Default: none.
	AllowPorts []int

	// Deep runs the live probes of the running gate and sidecar.
	// Default: false.
	Deep bool

	// GatewayURL is the running gate, for Deep. Default:
	// DefaultGatewayURL.
	GatewayURL string

	// SidecarSocket is the running sidecar's socket, for Deep. Default:
	// <StateDir>/sidecar.sock.
	SidecarSocket string

	// ProbeTimeout bounds each live probe. Default: 3s.
	ProbeTimeout time.Duration

	// Vault is the vault used to resolve {vault.NAME} placeholders and,
	// with Fix, to store moved secrets. Default: vault.Open(StateDir),
	// opened when first needed.
	Vault *vault.Vault

	// MinimumVersions is the minimum-versions data (the format of
	// data/minimum_versions.json). Default: the data built into this
	// program.
	MinimumVersions []byte

	// ProcRoot is where /proc is mounted. Default: /proc.
	ProcRoot string
}

// withDefaults validates o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if o.StateDir == "" {
		return o, errors.New("audit: no state directory given")
	}
	abs, err := filepath.Abs(o.StateDir)
	if err != nil {
		return o, fmt.Errorf("audit: state dir: %w", err)
	}
	o.StateDir = abs
	if o.Config == "" {
		if p := filepath.Join(abs, wire.FileCaddyfile); exists(p) {
			o.Config = p
		}
	}
	if o.Config != "" {
		if o.Config, err = filepath.Abs(o.Config); err != nil {
			return o, fmt.Errorf("audit: config: %w", err)
		}
	}
	def := func(p *string, name string) error {
		if *p == "" {
			*p = filepath.Join(abs, name)
		}
		*p, err = filepath.Abs(*p)
		return err
	}
	for _, d := range []struct {
		p    *string
		name string
	}{{&o.SidecarConfig, wire.FileSidecarConfig}, {&o.Approvals, wire.FileApprovals}, {&o.SidecarSocket, wire.FileSidecarSocket}} {
		if err := def(d.p, d.name); err != nil {
			return o, fmt.Errorf("audit: %w", err)
		}
	}
	if o.GatewayURL == "" {
		o.GatewayURL = DefaultGatewayURL
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = 3 * time.Second
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	for _, p := range o.AllowPorts {
		if p < 1 || p > 65535 {
			return o, fmt.Errorf("audit: allowed port %d: want 1 to 65535", p)
		}
	}
	return o, nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// Run audits the installation described by opts and returns the report.
// Problems found are findings; an error means the audit itself could not
// run (bad options).
func Run(ctx context.Context, opts Options) (*Report, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &auditor{opts: o}
	rep := &Report{Version: 1, Time: time.Now().UTC(), Config: o.Config, StateDir: o.StateDir, Deep: o.Deep, Findings: []Finding{}}
	for _, c := range checks {
		res := CheckResult{ID: c.id, Title: c.title, Status: StatusPass}
		if c.deep && !o.Deep {
			res.Status, res.Note = StatusSkipped, "runs with --deep"
			rep.Checks = append(rep.Checks, res)
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		found, err := c.run(ctx, a)
		var sk skip
		switch {
		case errors.As(err, &sk):
			res.Status, res.Note = StatusSkipped, string(sk)
		case err != nil:
			res.Status, res.Note = StatusError, err.Error()
		}
		for _, f := range found {
			f.Check = c.id
			f.Fixable = f.fix != nil
			rep.Findings = append(rep.Findings, f)
		}
		rep.Checks = append(rep.Checks, res)
	}
	rep.finish()
	return rep, nil
}

// skip is returned by a check that had nothing to check.
type skip string

func (s skip) Error() string { return string(s) }

func isSkip(err error) bool {
	var s skip
	return errors.As(err, &s)
}

// check is one audit check.
type check struct {
	id    string
	title string
	deep  bool // runs only with Options.Deep
	run   func(ctx context.Context, a *auditor) ([]Finding, error)
}

// checks lists every check in report order. IDs are stable: scripts and
// alerts match on them.
var checks = []check{
	{id: "config.parse", title: "config files parse", run: checkConfigParse},
	{id: "fs.config.perms", title: "config files are private (0600)", run: checkConfigPerms},
	{id: "fs.state_dir.perms", title: "the state directory is private (0700)", run: checkStateDirPerms},
	{id: "fs.state_files.perms", title: "state files are private (0600)", run: checkStateFilePerms},
	{id: "fs.vault.perms", title: "the vault file and key are private (0600)", run: checkVaultPerms},
	{id: "runtime.go_version", title: "Go has the known security fixes", run: checkGoVersion},
	{id: "runtime.caddy_version", title: "Caddy has the known security fixes", run: checkCaddyVersion},
	{id: "secrets.plaintext", title: "no plaintext secrets in config and env files", run: checkPlaintextSecrets},
	{id: "plugins.allowlist", title: "only standard and allowed Caddy modules", run: checkPlugins},
	{id: "network.open_interfaces", title: "nothing listens beyond loopback and the tailnet", run: checkOpenInterfaces},
	{id: "auth.completeness", title: "the gate authenticates every exposed route", run: checkAuthCompleteness},
	{id: "auth.password_length", title: "password users know bcrypt's 72-byte limit", run: checkPasswordLength},
	{id: "auth.hmac_replay_scope", title: "gates sharing an HMAC key share a replay cache", run: checkHMACReplayScope},
	{id: "approvals.mode_full", title: "no agent runs commands without approval", run: checkModeFull},
	{id: "approvals.elevated_enabled", title: "no agent runs commands on the host", run: checkElevated},
	{id: "approvals.node_enabled", title: "no agent runs commands on a node's host without approval", run: checkNode},
	{id: "sandbox.dangerous_profile", title: "sandbox profiles keep sandboxes contained", run: checkDangerousProfiles},
	{id: "sandbox.network_enabled", title: "sandboxes have no network", run: checkSandboxNetwork},
	{id: "tailnet.funnel_or_public", title: "tailnet sites stay on the tailnet", run: checkTailnetPublic},
	{id: "deep.gate_auth", title: "the running gate refuses unauthenticated remote requests", deep: true, run: probeGateAuth},
	{id: "deep.gate_url_token", title: "the running gate refuses credentials in the URL", deep: true, run: probeGateURLToken},
	{id: "deep.admin_loopback", title: "Caddy's admin endpoint answers on loopback only", deep: true, run: probeAdminLoopback},
	{id: "deep.sidecar_socket", title: "the sidecar socket is private (0600)", deep: true, run: probeSidecarSocket},
	{id: "deep.tailnet_nodes", title: "the running Caddy's tailnet nodes are up", deep: true, run: probeTailnetNodes},
	{id: "deep.tailnet_peers", title: "the node hosts the gate watches are up", deep: true, run: probeTailnetPeers},
}

// CheckIDs returns the IDs of every check, in report order.
func CheckIDs() []string {
	ids := make([]string, len(checks))
	for i, c := range checks {
		ids[i] = c.id
	}
	return ids
}

// auditor holds what the checks of one run share, loaded on first use.
type auditor struct {
	opts Options

	caddy     lazy[*caddyConfig]
	sockets   lazy[[]socket]
	vaultOnce lazy[*vault.Vault]
	sidecar   lazy[*sidecarFile]
	approvals lazy[*approvalsConfig]
	cfgFiles  lazy[[]string]
}

// lazy is a value computed once, on first use.
type lazy[T any] struct {
	done bool
	v    T
	err  error
}

func (l *lazy[T]) get(load func() (T, error)) (T, error) {
	if !l.done {
		l.v, l.err = load()
		l.done = true
	}
	return l.v, l.err
}

// config returns the Caddy config, or skip when there is none.
func (a *auditor) config() (*caddyConfig, error) {
	return a.caddy.get(func() (*caddyConfig, error) {
		if a.opts.Config == "" {
			return nil, skip("no Caddy config (none given, and no " + filepath.Join(a.opts.StateDir, wire.FileCaddyfile) + ")")
		}
		return loadCaddyConfig(a.opts.Config)
	})
}

// adapted returns the Caddy config only if it adapted, else skip.
func (a *auditor) adapted() (*caddyConfig, error) {
	c, err := a.config()
	if err != nil {
		return nil, err
	}
	if c.adaptErr != nil {
		return nil, skip("the Caddy config does not load (see config.parse)")
	}
	return c, nil
}

// vault returns the vault, opening it on first use.
func (a *auditor) vault() (*vault.Vault, error) {
	return a.vaultOnce.get(func() (*vault.Vault, error) {
		if a.opts.Vault != nil {
			return a.opts.Vault, nil
		}
		return vault.Open(a.opts.StateDir)
	})
}

// configDir is the directory of the Caddy config, or "" without one.
func (a *auditor) configDir() string {
	if a.opts.Config == "" {
		return ""
	}
	return filepath.Dir(a.opts.Config)
}

// notExist reports whether err means a file is missing.
func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
