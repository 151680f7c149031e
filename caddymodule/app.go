package caddymodule

import (
	"github.com/caddyserver/caddy/v2"

	"github.com/clawguard/clawguard/statedir"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the `clawguard` Caddy app: what every clawguard handler of a config
// shares — the state directory default and the metrics collectors registered
// into the config's metrics registry. Handlers load it with ctx.App, so it
// need not be configured explicitly.
type App struct {
	// StateDir is the default state directory of the handlers.
	// Default: $CLAWGUARD_STATE_DIR, else $XDG_STATE_HOME/clawguard
	// (/var/lib/clawguard as root).
	StateDir string `json:"state_dir,omitempty"`

	// AdminListen is the admin listener of the handlers that do not set
	// their own admin_listen (see Gate.AdminListen). Default:
	// 127.0.0.1:18788.
	AdminListen []string `json:"admin_listen,omitempty"`

	metrics     *gateMetrics
	ctx         caddy.Context
	adminClaims []*adminClaim // the admin listeners of this config's gates
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "clawguard",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision registers the gate's collectors in this config's registry. Caddy
// makes a new registry for every config load, so a reload registers afresh
// instead of colliding with the old config's collectors.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	if a.StateDir == "" {
		a.StateDir = statedir.Resolve("")
	}
	m, err := newGateMetrics(ctx.GetMetricsRegistry())
	if err != nil {
		return err
	}
	a.metrics = m
	return nil
}

// Start opens the admin listeners the gates claimed (admin_listen), or takes
// them over from the previous config.
func (a *App) Start() error { return a.startAdmin() }

// Stop releases this config's admin listeners; shared limiters are released
// by their handlers.
func (a *App) Stop() error {
	a.stopAdmin()
	return nil
}

// loadApp returns the config's clawguard app, provisioning it on first use.
func loadApp(ctx caddy.Context) (*App, error) {
	a, err := ctx.App("clawguard")
	if err != nil {
		return nil, err
	}
	return a.(*App), nil
}

// Interface guards
var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
)
