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

// adminAPI serves GET /tailnet/nodes and GET /tailnet/peers on Caddy's
// admin endpoint: the Health of every node and of every watched node host,
// for `clawguard tailnet status`, `clawguard audit` and operators.
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
	return []caddy.AdminRoute{
		{Pattern: "/tailnet/nodes", Handler: serveList(tsnet.Health)},
		{Pattern: "/tailnet/peers", Handler: serveList(tsnet.Peers)},
	}
}

// serveList answers GET with the JSON array list returns ([] when empty).
func serveList[T any](list func() []T) caddy.AdminHandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet {
			return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errMethod}
		}
		items := list()
		if items == nil {
			items = []T{}
		}
		w.Header().Set("Content-Type", "application/json")
		return json.NewEncoder(w).Encode(items)
	}
}

var errMethod = errors.New("method not allowed; use GET")

// Interface guards
var _ caddy.AdminRouter = adminAPI{}
