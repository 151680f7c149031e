package tsnet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// FetchHealth reads the Health of a running Caddy's tailnet nodes from its
// admin endpoint (GET /tailnet/nodes on admin, host:port). It is what
// `clawguard tailnet status` and `clawguard audit` report from.
func FetchHealth(ctx context.Context, admin string) ([]NodeHealth, error) {
	var nodes []NodeHealth
	if err := fetchAdmin(ctx, admin, "/tailnet/nodes", "tailnet status", &nodes); err != nil {
		return nil, err
	}
	return nodes, nil
}

// FetchPeers reads the health of the node hosts a running Caddy watches
// (the tailnet app's peers) from its admin endpoint (GET /tailnet/peers).
func FetchPeers(ctx context.Context, admin string) ([]PeerHealth, error) {
	var peers []PeerHealth
	if err := fetchAdmin(ctx, admin, "/tailnet/peers", "tailnet peers", &peers); err != nil {
		return nil, err
	}
	return peers, nil
}

// fetchAdmin GETs path from Caddy's admin endpoint admin (host:port) and
// decodes the JSON answer into v; what names the errors.
func fetchAdmin(ctx context.Context, admin, path, what string, v any) error {
	if admin == "" || strings.ContainsAny(admin, "/?#@") {
		return fmt.Errorf("reading %s: admin address %q: want host:port", what, admin)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+path, nil)
	if err != nil {
		return fmt.Errorf("reading %s: admin address %q: %w", what, admin, err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reading %s from Caddy's admin endpoint: %w", what, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("reading %s: admin endpoint %s answered %s to GET %s (is this clawguard's Caddy?)", what, admin, res.Status, path)
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, maxStatusBytes)).Decode(v); err != nil {
		return fmt.Errorf("reading %s from %s: %w", what, admin, err)
	}
	return nil
}

// maxStatusBytes bounds the admin endpoint's answer (a few hundred bytes
// per node or peer).
const maxStatusBytes = 1 << 20

// Problem describes what is wrong with the node for people (the audit, the
// status command), or returns "" for a running node.
func (h NodeHealth) Problem() string {
	if h.Up() {
		return ""
	}
	var why string
	switch h.State {
	case StateNeedsLogin:
		why = "needs to log in: give it an auth_key, or visit the login URL in Caddy's log"
	case StateNeedsMachineAuth:
		why = "waits for an admin to approve it in the tailnet's admin console"
	case StateStarting:
		why = "is still starting (or waiting for the control server)"
	case StateStopped:
		why = "is stopped"
	default:
		why = "has failed and is retrying"
	}
	msg := fmt.Sprintf("tailnet node %s %s, since %s", h.Node, why, h.Since.Format(time.RFC3339))
	if h.Error != "" {
		msg += ": " + h.Error
	}
	return msg
}
