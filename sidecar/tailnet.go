package sidecar

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	cgtailnet "github.com/clawguard/clawguard/tsnet"
)

// DefaultTailnetPort is the tailnet port the sidecar serves by default.
const DefaultTailnetPort = 18791

// TailnetOptions make the sidecar serve its API on a tailnet node as well
// as on the unix socket, for a gate on another host (multi-host setups).
// Over the tailnet a request must come from a peer Policy allows (the gate
// host's node) AND carry the gate's signed identity (identity_keys): a
// tailnet peer has no unix credentials to check, and the signature proves
// the gate sent the identity headers.
type TailnetOptions struct {
	// Node names the node; its state is <state_dir>/tailnet/<node> unless
	// Config.StateDir says otherwise. Required.
	Node string
	// Config is the node's settings, the same as in Caddy's `tailnet` app
	// (auth_key as a placeholder, control_url, hostname, tags, ...).
	Config cgtailnet.NodeConfig
	// Port is the tailnet port. Default DefaultTailnetPort.
	Port uint16
	// Policy names the tailnet peers served: the gate host's node, by its
	// tag (allow_tags) or its user's login (allow_users). Required.
	Policy cgtailnet.Policy
}

// serveTailnet makes srv serve o's tailnet port too: it must run before
// srv serves anything. A nil o does nothing. The node starts in the
// background; its listener closes (and the node stops) with srv.Shutdown.
func serveTailnet(o *TailnetOptions, srv *Server, cfg *Config, stateDir string, log *slog.Logger) error {
	if o == nil {
		return nil
	}
	if _, signed := srv.opts.Verifier.(SignedIdentity); !signed || len(cfg.IdentityKeys) == 0 {
		return errors.New("tailnet: serving on the tailnet needs identity_keys in the sidecar config (the gate's signed identity; over the tailnet there are no unix credentials to check)")
	}
	if err := o.Policy.Validate(); err != nil {
		return fmt.Errorf("tailnet policy: %w", err)
	}
	settings, err := o.Config.Resolve(o.Node, stateDir)
	if err != nil {
		return fmt.Errorf("tailnet: %w", err)
	}
	port := o.Port
	if port == 0 {
		port = DefaultTailnetPort
	}
	if err := srv.opts.Registry.Register(cgtailnet.NewNodeUpCollector(o.Node)); err != nil {
		return fmt.Errorf("tailnet: registering metrics: %w", err)
	}
	l, err := cgtailnet.Listen(o.Node, settings, port, cgtailnet.LoggerFromSlog(log.With("tailnet_node", o.Node)))
	if err != nil {
		return fmt.Errorf("tailnet: %w", err)
	}
	srv.srv.Handler = &tailnetGate{s: srv, policy: o.Policy, log: log}
	log.Info("sidecar listening on the tailnet", "node", o.Node, "port", port,
		"allow_users", o.Policy.AllowUsers, "allow_tags", o.Policy.AllowTags)
	go func() {
		if err := srv.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			log.Error("tailnet listener stopped", "err", err)
		}
	}()
	return nil
}

// tailnetGate is the server's handler when it also serves the tailnet:
// requests from the unix socket go through the usual peer-credential check;
// requests over the tailnet need an allowed tailnet peer instead, then
// (except /healthz and /metrics) the gate's signed identity like any other.
type tailnetGate struct {
	s      *Server
	policy cgtailnet.Policy
	log    *slog.Logger
}

func (g *tailnetGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !cgtailnet.OverTailnet(r) {
		g.s.ServeHTTP(w, r)
		return
	}
	peer, _, err := cgtailnet.Identify(r)
	if err != nil {
		g.log.Warn("refused tailnet peer: unknown", "remote", r.RemoteAddr, "err", err)
		writeError(w, &apiError{status: http.StatusUnauthorized, code: "tailnet_peer_unknown", msg: "the tailnet node could not tell who sent this request"})
		return
	}
	if _, ok := g.policy.Allow(peer); !ok {
		g.log.Warn("refused tailnet peer", "login", peer.LoginName, "tags", peer.Tags, "node", peer.NodeName)
		writeError(w, &apiError{status: http.StatusForbidden, code: "peer_refused", msg: "this tailnet port serves only the gate's tailnet node"})
		return
	}
	g.s.mux.ServeHTTP(w, r)
}
