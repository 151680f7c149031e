package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/clawguard/clawguard/authn"
	"github.com/clawguard/clawguard/httpsig"
	"github.com/clawguard/clawguard/wire"
)

// Approvals configures the gate's half of the exec approvals admin API:
// /.clawguard/api/approvals* (list, answer, live feed), used by the UI, is
// forwarded to the sidecar's /v1/approvals* over its unix socket with the
// admin's identity and the admin role (X-Clawguard-Role: admin), after the
// admin API's own checks (local or admins identity, same-site, CSRF token on
// writes). It is part of the admin API, so it is off when pairing is off.
type Approvals struct {
	// Socket is the sidecar's unix socket. Default <state_dir>/sidecar.sock.
	Socket string `json:"socket,omitempty"`

	// IdentityKeyID and IdentityKey sign the forwarded identity (RFC 9421,
	// as the clawguard_signed transport does), which a sidecar with
	// identity_keys requires: the keyid its identity_keys name, and the key
	// as {vault.NAME}, {env.NAME}, {file./path} or a literal ("base64:…"
	// for binary keys, at least 32 bytes). Default: unsigned.
	IdentityKeyID string `json:"identity_key_id,omitempty"`
	IdentityKey   string `json:"identity_key,omitempty"`
}

const (
	// proxyTimeout bounds connecting to the sidecar and its answer's
	// headers (the live feed then stays open).
	proxyTimeout = 30 * time.Second
)

// approvalsSuffix is what may follow approvalsAPIPath: nothing, or one
// path segment (an approval ID, "events").
var approvalsSuffix = regexp.MustCompile(`^(/[A-Za-z0-9_-]{1,64})?$`)

// isApprovalsPath reports whether path belongs to the approvals API.
func isApprovalsPath(path string) bool {
	return path == wire.PathAdminApprovals || strings.HasPrefix(path, wire.PathAdminApprovals+"/")
}

// approvalsProxy forwards the approvals API to the sidecar.
type approvalsProxy struct {
	socket string
	rp     *httputil.ReverseProxy
}

type adminIdentityKey struct{}

// newApprovalsProxy prepares the forwarding for cfg (nil: the defaults).
func newApprovalsProxy(cfg *Approvals, stateDir string) (*approvalsProxy, error) {
	if cfg == nil {
		cfg = &Approvals{}
	}
	p := &approvalsProxy{socket: cfg.Socket}
	if p.socket == "" {
		p.socket = filepath.Join(stateDir, wire.FileSidecarSocket)
	}
	if !filepath.IsAbs(p.socket) {
		return nil, fmt.Errorf("pairing approvals socket: %q is not an absolute path", p.socket)
	}
	var transport http.RoundTripper = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: proxyTimeout}).DialContext(ctx, "unix", p.socket)
		},
		ResponseHeaderTimeout: proxyTimeout,
	}
	switch {
	case cfg.IdentityKeyID == "" && cfg.IdentityKey == "":
	case cfg.IdentityKeyID == "" || cfg.IdentityKey == "":
		return nil, errors.New("pairing approvals identity_key: both the keyid and the key are required")
	default:
		raw, _, err := (&secrets{stateDir: stateDir}).resolve(cfg.IdentityKey)
		if err != nil {
			return nil, fmt.Errorf("pairing approvals identity_key %s: %w", cfg.IdentityKeyID, err)
		}
		key, err := httpsig.ParseKey([]byte(raw))
		if err != nil {
			return nil, fmt.Errorf("pairing approvals identity_key %s: %w", cfg.IdentityKeyID, err)
		}
		transport = &httpsig.IdentityTransport{Base: transport, KeyID: cfg.IdentityKeyID, Key: key}
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:      p.rewrite,
		Transport:    transport,
		ErrorHandler: p.fail,
	}
	return p, nil
}

// serve forwards r for the admin id, except GET .../status, which the gate
// answers itself. The caller has applied the admin API's checks
// (pairing.Server.Guard).
func (p *approvalsProxy) serve(w http.ResponseWriter, r *http.Request, id authn.Identity) {
	suffix := strings.TrimPrefix(r.URL.Path, wire.PathAdminApprovals)
	switch {
	case !approvalsSuffix.MatchString(suffix):
		wire.WriteError(w, http.StatusNotFound, "not_found", "no such clawguard endpoint")
	case suffix == "/status" && r.Method == http.MethodGet:
		p.status(w)
	default:
		p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), adminIdentityKey{}, id)))
	}
}

// approvalsStatus is the answer of GET /.clawguard/api/approvals/status:
// whether a sidecar listens on the socket. The UI asks it first, so a gate
// without a sidecar shows a note instead of failing requests.
type approvalsStatus struct {
	Available bool   `json:"available"`
	Socket    string `json:"socket"`
	Error     string `json:"error,omitempty"`
}

func (p *approvalsProxy) status(w http.ResponseWriter) {
	st := approvalsStatus{Socket: p.socket}
	c, err := net.DialTimeout("unix", p.socket, time.Second)
	if err == nil {
		c.Close()
		st.Available = true
	} else {
		st.Error = "no sidecar listens on " + p.socket + " (is `clawguard sidecar` running?)"
	}
	wire.WriteJSON(w, http.StatusOK, st)
}

// forwardHeaders are the only request headers the sidecar gets from the
// browser: the admin's credential, cookies, CSRF token, Origin (checked by
// the gate; the sidecar's feed would compare it with its own host) and
// WebSocket subprotocols (which may carry a bearer token) stay behind.
// Connection and Upgrade are what ReverseProxy set for a WebSocket.
var forwardHeaders = []string{"Accept", "Content-Type", "Connection", "Upgrade",
	"Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions"}

func (p *approvalsProxy) rewrite(pr *httputil.ProxyRequest) {
	in := pr.Out.Header
	pr.Out.Header = http.Header{}
	for _, h := range forwardHeaders {
		if v, ok := in[h]; ok {
			pr.Out.Header[h] = v
		}
	}
	id, _ := pr.In.Context().Value(adminIdentityKey{}).(authn.Identity)
	authn.SetIdentityHeaders(pr.Out.Header, id)
	pr.Out.Header.Set(wire.HeaderRole, "admin")
	pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = "http", "sidecar", "sidecar"
	pr.Out.URL.Path = wire.PathApprovals + strings.TrimPrefix(pr.In.URL.Path, wire.PathAdminApprovals)
	pr.Out.URL.RawPath = ""
}

func (p *approvalsProxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	wire.WriteError(w, http.StatusBadGateway, "sidecar_unavailable",
		fmt.Sprintf("the sidecar at %s did not answer (is `clawguard sidecar` running?): %v", p.socket, err))
}
