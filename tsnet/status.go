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
	if admin == "" || strings.ContainsAny(admin, "/?#@") {
		return nil, fmt.Errorf("reading tailnet status: admin address %q: want host:port", admin)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/tailnet/nodes", nil)
	if err != nil {
		return nil, fmt.Errorf("reading tailnet status: admin address %q: %w", admin, err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading tailnet status from Caddy's admin endpoint: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading tailnet status: admin endpoint %s answered %s (is this clawguard's Caddy?)", admin, res.Status)
	}
	var nodes []NodeHealth
	if err := json.NewDecoder(io.LimitReader(res.Body, maxStatusBytes)).Decode(&nodes); err != nil {
		return nil, fmt.Errorf("reading tailnet status from %s: %w", admin, err)
	}
	return nodes, nil
}

// maxStatusBytes bounds the admin endpoint's answer (a few hundred bytes
// per node).
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
