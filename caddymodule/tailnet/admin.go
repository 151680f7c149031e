package tailnet

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/clawguard/clawguard/tsnet"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI serves GET /tailnet/nodes on Caddy's admin endpoint: the Health
// of every node, for `clawguard audit` and operators.
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.tailnet",
		New: func() caddy.Module { return adminAPI{} },
	}
}

// Routes returns the admin routes.
func (adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/tailnet/nodes", Handler: caddy.AdminHandlerFunc(serveNodes)}}
}

func serveNodes(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errMethod}
	}
	nodes := tsnet.Health()
	if nodes == nil {
		nodes = []tsnet.NodeHealth{}
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(nodes)
}

var errMethod = errors.New("method not allowed; use GET")

// Interface guards
var _ caddy.AdminRouter = adminAPI{}
