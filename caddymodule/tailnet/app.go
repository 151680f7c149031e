package tailnet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/clawguard/clawguard/statedir"
	"github.com/clawguard/clawguard/tsnet"
)

func init() {
	caddy.RegisterModule(App{})
	caddy.RegisterNetwork("tailnet", listenNetwork)
}

// App is the `tailnet` Caddy app: the settings of the config's tailnet
// nodes. Listeners on a node the app does not name use the defaults, so
// the app need not be configured for `bind tailnet/<node>` to work.
type App struct {
	// StateDir is clawguard's state directory: node state goes to
	// <state_dir>/tailnet/<node> and {vault.NAME} reads its vault.
	// Default: $CLAWGUARD_STATE_DIR, else $XDG_STATE_HOME/clawguard
	// (/var/lib/clawguard as root).
	StateDir string `json:"state_dir,omitempty"`

	// Nodes are the node settings by node name (the <node> of
	// tailnet/<node>). Default: none.
	Nodes map[string]tsnet.NodeConfig `json:"nodes,omitempty"`

	// Peers are the node hosts to watch by peer name: each is probed over
	// the tailnet while the config runs. Default: none.
	Peers map[string]PeerConfig `json:"peers,omitempty"`

	log     *zap.Logger
	nodes   *tsnet.NodeSet
	peers   []tsnet.PeerSpec   // validated, defaults filled in
	watches []*tsnet.PeerWatch // while started
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tailnet",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision validates every node and resolves its auth key. A malformed
// node fails the config; an auth key that does not resolve (unset
// variable, missing vault entry) only fails that node, which is logged
// and reported by Health, so the loopback listeners still come up.
func (a *App) Provision(ctx caddy.Context) error {
	a.log = ctx.Logger()
	if a.StateDir == "" {
		a.StateDir = statedir.Resolve("")
	}
	a.nodes = tsnet.NewNodeSet()
	for _, name := range slices.Sorted(maps.Keys(a.Nodes)) {
		s, err := a.Nodes[name].Resolve(name, a.StateDir)
		var secErr *tsnet.SecretError
		switch {
		case errors.As(err, &secErr):
			a.log.Error("tailnet node cannot log in; it stays down, other listeners serve", zap.String("node", name), zap.Error(err))
		case err != nil:
			return fmt.Errorf("tailnet: %w", err)
		}
		a.nodes.Set(name, s)
	}
	var err error
	if a.peers, err = a.peerSpecs(); err != nil {
		return fmt.Errorf("tailnet: %w", err)
	}
	reg := ctx.GetMetricsRegistry()
	if err := reg.Register(a.nodes); err != nil {
		return fmt.Errorf("tailnet: registering metrics: %w", err)
	}
	if len(a.peers) > 0 {
		names := make([]string, len(a.peers))
		for i, s := range a.peers {
			names[i] = s.Name
		}
		if err := reg.Register(tsnet.NewPeerCollector(names...)); err != nil {
			return fmt.Errorf("tailnet: registering peer metrics: %w", err)
		}
	}
	return nil
}

// Start starts watching the peers. Nodes start with their first listener,
// dialer or peer watch.
func (a *App) Start() error { return a.startPeers() }

// Stop stops this config's peer watches. Nodes stop with their last
// listener, which may belong to the next config; so does a peer watch
// the next config kept.
func (a *App) Stop() error {
	a.stopPeers()
	return nil
}

// listen serves port on the node called name for this config.
func (a *App) listen(name string, port uint16) (net.Listener, error) {
	if err := tsnet.ValidNodeName(name); err != nil {
		return nil, fmt.Errorf("tailnet: %w", err)
	}
	s, err := a.nodes.Get(name, a.StateDir)
	if err != nil {
		return nil, fmt.Errorf("tailnet: %w", err)
	}
	return tsnet.Listen(name, s, port, a.log)
}

// Dialer returns a Dialer through the node called name with this config's
// settings for it (the defaults for a node the app does not name).
func (a *App) Dialer(name string) (*tsnet.Dialer, error) {
	if err := tsnet.ValidNodeName(name); err != nil {
		return nil, fmt.Errorf("tailnet: %w", err)
	}
	s, err := a.nodes.Get(name, a.StateDir)
	if err != nil {
		return nil, fmt.Errorf("tailnet: %w", err)
	}
	return tsnet.NewDialer(name, s, a.log)
}

// listenNetwork is the Caddy network "tailnet": address tailnet/<node>:<port>.
func listenNetwork(ctx context.Context, _, host, portRange string, portOffset uint, _ net.ListenConfig) (any, error) {
	start, _, _ := strings.Cut(portRange, "-")
	base, err := strconv.ParseUint(start, 10, 16)
	if err != nil || base == 0 || base+uint64(portOffset) > 65535 {
		return nil, fmt.Errorf("tailnet/%s: want an explicit port, got %q", host, portRange)
	}
	cctx, ok := ctx.(caddy.Context)
	if !ok {
		return nil, fmt.Errorf("tailnet/%s: listening needs a Caddy context", host)
	}
	app, err := cctx.App("tailnet")
	if err != nil {
		return nil, err
	}
	return app.(*App).listen(host, uint16(base+uint64(portOffset)))
}

// Interface guards
var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
)
