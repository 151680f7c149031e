package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/clawguard/clawguard/httpsig"
	"github.com/clawguard/clawguard/sandbox"
	"github.com/clawguard/clawguard/statedir"
	"github.com/clawguard/clawguard/vault"
	"github.com/clawguard/clawguard/wire"
)

// DaemonOptions configure Run.
type DaemonOptions struct {
	// StateDir is the state directory (statedir.Resolve). Required.
	StateDir string
	// ConfigPath is the config file. Default <StateDir>/sidecar.json.
	ConfigPath string
	// SocketPath is the unix socket. Default <StateDir>/sidecar.sock.
	SocketPath string
	// Logger receives structured logs. Default: discard.
	Logger *slog.Logger
	// Secrets resolves profile secrets and identity keys. Default: the
	// vault of StateDir.
	Secrets sandbox.SecretSource
	// Policy decides requests. Default: the exec approvals policy
	// (<StateDir>/approvals.json; see plugApprovals), or the config's
	// exec_allow list while that is set.
	Policy Policy
	// Host runs target "host" requests. Default: with the approvals
	// policy, the host runner (it runs only with gateway_host); else nil,
	// and they are refused.
	Host Runner
	// Node runs target "node" requests. Default: with the approvals
	// policy, the host runner for node_exec (it runs only with node_exec);
	// else nil, and they are refused.
	Node Runner
	// Handlers are mounted next to the built-in routes (Server.Handle),
	// e.g. the approvals API.
	Handlers map[string]http.Handler
	// Ready, if set, is called once the socket accepts connections.
	Ready func(socket string)
	// OnServer, if set, is called once with the serving Server, just
	// before Ready: the in-process API (Server.Exec, DefaultTarget, Which)
	// for a program that runs the sidecar inside itself. Once Run is
	// shutting down, Exec answers shutting_down. Default nil.
	OnServer func(*Server)
	// Tailnet, if set, serves the API on a tailnet node too (tailnet.go).
	// Default nil: the socket only.
	Tailnet *TailnetOptions
	// Background, if set, starts work that lives as long as the daemon and
	// reports through its metrics registry: the CLI's periodic security
	// audit (audit.Monitor, clawguard_audit_findings). Default nil.
	Background func(ctx context.Context, reg prometheus.Registerer) error
	// ConfigPoll is how often the config file is compared with what the
	// sidecar started on; a change is reported, not applied (configWatch).
	// Default DefaultConfigPoll.
	ConfigPoll time.Duration
}

// shutdownTimeout bounds how long shutdown may take (running commands are
// cancelled, their containers removed).
const shutdownTimeout = time.Minute

// Run runs the sidecar until ctx ends, then shuts it down: the listener
// closes, running commands and pending decisions are cancelled, per-session
// sandboxes are removed, and the socket file goes away.
func Run(ctx context.Context, o DaemonOptions) error {
	if o.StateDir == "" {
		return errors.New("sidecar: no state directory")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := statedir.Ensure(o.StateDir); err != nil {
		return err
	}
	if o.ConfigPath == "" {
		o.ConfigPath = filepath.Join(o.StateDir, wire.FileSidecarConfig)
	}
	if o.SocketPath == "" {
		o.SocketPath = filepath.Join(o.StateDir, wire.FileSidecarSocket)
	}
	cfg, loaded, err := loadConfig(o.ConfigPath, o.StateDir)
	if err != nil {
		return err
	}
	if o.ConfigPoll <= 0 {
		o.ConfigPoll = DefaultConfigPoll
	}
	if o.Secrets == nil {
		v, err := vault.Open(o.StateDir)
		if err != nil {
			// Without key material there is no vault; only configs that
			// use secrets need one, and they fail when they do.
			o.Logger.Warn("vault unavailable; profile secrets and identity keys cannot be read", "err", err)
		} else {
			o.Secrets = v
		}
	}
	verifier, err := identityVerifier(cfg, o.Secrets)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	watch, err := newConfigWatch(o.ConfigPath, o.StateDir, loaded, o.Logger, reg)
	if err != nil {
		return err
	}
	cli, err := sandbox.NewClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	mgr, err := sandbox.New(ctx, sandbox.Options{
		Client: cli, Instance: cfg.Instance, Profiles: cfg.Sandboxes, WorkspaceRoot: cfg.WorkspaceRoot,
		ProtectedPaths: []string{o.StateDir}, Secrets: o.Secrets, Logger: o.Logger,
		Registerer: reg, PruneInterval: time.Duration(cfg.PruneInterval), MaxSandboxes: cfg.MaxSandboxes,
	})
	if err != nil {
		return err
	}
	if o.Background != nil {
		if err := o.Background(ctx, reg); err != nil {
			mgr.Close(context.Background())
			return err
		}
	}
	closeApprovals, err := o.plugApprovals(ctx, cfg, cli, mgr, reg)
	if err != nil {
		mgr.Close(context.Background())
		return err
	}
	defer closeApprovals() // before cli.Close
	srv, err := New(Options{
		Sandboxes: mgr, Host: o.Host, Node: o.Node, Policy: o.Policy, Verifier: verifier,
		AllowedUIDs: cfg.AllowedUIDs, Registry: reg, Logger: o.Logger,
		ConfigFile: o.ConfigPath, Health: watch.status,
	})
	if err != nil {
		mgr.Close(context.Background())
		return err
	}
	for pattern, h := range o.Handlers {
		srv.Handle(pattern, h)
	}
	l, err := Listen(o.SocketPath)
	if err != nil {
		mgr.Close(context.Background())
		return err
	}
	if err := serveTailnet(o.Tailnet, srv, cfg, o.StateDir, o.Logger); err != nil {
		l.Close()
		mgr.Close(context.Background())
		return err
	}
	o.Logger.Info("sidecar listening", "socket", o.SocketPath, "config", o.ConfigPath, "instance", cfg.Instance,
		"profiles", len(cfg.Sandboxes), "allowed_uids", cfg.AllowedUIDs, "signed_identity", len(cfg.IdentityKeys) > 0)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	go watch.run(ctx, o.ConfigPoll)
	if o.OnServer != nil {
		o.OnServer(srv)
	}
	if o.Ready != nil {
		o.Ready(o.SocketPath)
	}

	var serveErr error
	select {
	case <-ctx.Done():
		o.Logger.Info("sidecar shutting down")
	case serveErr = <-served:
		o.Logger.Error("sidecar stopped serving", "err", serveErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	errs := []error{serveErr}
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, err)
	}
	if err := mgr.Close(sctx); err != nil {
		errs = append(errs, err)
	}
	o.Logger.Info("sidecar stopped")
	return errors.Join(errs...)
}

// identityVerifier builds the signed-identity verifier when the config names
// identity keys, else trusts the headers of allowed peers.
func identityVerifier(cfg *Config, secrets sandbox.SecretSource) (Verifier, error) {
	if len(cfg.IdentityKeys) == 0 {
		return TrustedHeaders{}, nil
	}
	if secrets == nil {
		return nil, errors.New("identity_keys: the keys live in the vault, which is not available")
	}
	keys := map[string][]byte{}
	for id, entry := range cfg.IdentityKeys {
		raw, err := secrets.Get(entry)
		if err != nil {
			return nil, fmt.Errorf("identity_keys[%q]: %w", id, err)
		}
		k, err := httpsig.ParseKey(raw)
		if err != nil {
			return nil, fmt.Errorf("identity_keys[%q]: vault entry %q: %w", id, entry, err)
		}
		keys[id] = k
	}
	v, err := httpsig.NewVerifier(httpsig.Config{Keys: keys, Identity: true})
	if err != nil {
		return nil, fmt.Errorf("identity_keys: %w", err)
	}
	return SignedIdentity{V: v}, nil
}
