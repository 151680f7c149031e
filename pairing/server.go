package pairing

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Paths the gate routes here.
const (
	PathPrefix = "/.clawguard/"
	pairPrefix = PathPrefix + "pair/"
	apiPrefix  = PathPrefix + "api/"
	uiPrefix   = PathPrefix + "ui/"
)

// IsAdminPath reports whether path is under the admin API or the UI, which
// only a local or admin identity may reach. Everything else under
// PathPrefix is open (the pairing protocol) or 404.
func IsAdminPath(path string) bool {
	return strings.HasPrefix(path, apiPrefix) || strings.HasPrefix(path, uiPrefix) || path == strings.TrimSuffix(uiPrefix, "/")
}

// Pairing outcomes, the values of clawguard_pairing_requests_total{result}.
const (
	ResultAutoApproved = "auto_approved" // a local request approved at once
	ResultPending      = "pending"       // a request queued for a person
	ResultApproved     = "approved"      // a person approved a request
	ResultRejected     = "rejected"      // a person rejected a request
	ResultInvalid      = "invalid"       // a refused pairing message (format, nonce, signature, time)
)

// Results lists every result label, so metrics can start each series at 0.
var Results = []string{ResultAutoApproved, ResultPending, ResultApproved, ResultRejected, ResultInvalid}

// DefaultPendingTTL is how long a request waits for a decision, and how
// long an approved device has to collect its token.
const DefaultPendingTTL = 5 * time.Minute

// Config is one gate configuration's pairing policy. Several may share one
// Store (a config reload, or two sites with one state directory).
type Config struct {
	// AutoApproveLocal approves requests from local callers at once.
	AutoApproveLocal bool
	// PendingTTL: see DefaultPendingTTL (used when zero).
	PendingTTL time.Duration
	// Limits bounds pending requests (defaults when zero).
	Limits Limits
	// OnFailure is called with the Caller of every pairing message refused
	// for its proof (nonce, signature, time, device id), so the gate's rate
	// limiter counts it. Malformed messages are not counted: they guess
	// nothing, and a broken client must not lock out others.
	OnFailure func(c Caller)
	// OnResult counts outcomes (the Result* values) for metrics.
	OnResult func(result string)
	// OnDecision is called with every decision on a device (approved,
	// rejected, auto_approved, revoked, renamed) once it is stored and
	// before its answer is written, so that a record of it (the gate's
	// audit trail) exists before anyone learns of it. Default: none.
	OnDecision func(c Caller, d Decision)
	// Logger logs admin decisions and refusals. Default: none.
	Logger *zap.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// Caller is what the gate determined about a request before handing it
// here. Set it with WithCaller.
type Caller struct {
	// Identity is the authenticated identity ("local", "user:alice", …) on
	// admin paths; empty on the open pairing paths.
	Identity string
	// Local is true when the request qualifies for local trust, which makes
	// it eligible for auto-approval.
	Local bool
	// Client is the rate-limiting key of the client (per-client caps).
	Client string
	// IP is the client's address, recorded with requests and last-seen.
	IP string
	// CrossSite is true for a browser request from a foreign origin or a
	// cross-site context; admin paths refuse it.
	CrossSite bool
}

type callerKey struct{}

// WithCaller attaches the caller to a request context.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerOf returns the Caller attached with WithCaller.
func CallerOf(r *http.Request) Caller { return callerOf(r) }

func callerOf(r *http.Request) Caller {
	c, _ := r.Context().Value(callerKey{}).(Caller)
	return c
}

// Server serves the pairing endpoints, the admin API and the UI. It is an
// http.Handler for everything under PathPrefix.
type Server struct {
	store       *Store
	cfg         Config
	mux         *http.ServeMux
	ctx         context.Context // cancelled by Close: ends live event streams
	cancel      context.CancelFunc
	subscribers atomic.Int32
}

// NewServer returns a Server for store with cfg's policy.
func NewServer(store *Store, cfg Config) *Server {
	if cfg.PendingTTL <= 0 {
		cfg.PendingTTL = DefaultPendingTTL
	}
	if cfg.Limits.MaxPending <= 0 {
		cfg.Limits.MaxPending = DefaultMaxPending
	}
	if cfg.Limits.PerClient <= 0 {
		cfg.Limits.PerClient = DefaultPerClient
	}
	if cfg.OnFailure == nil {
		cfg.OnFailure = func(Caller) {}
	}
	if cfg.OnDecision == nil {
		cfg.OnDecision = func(Caller, Decision) {}
	}
	if cfg.OnResult == nil {
		cfg.OnResult = func(string) {}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{store: store, cfg: cfg, mux: http.NewServeMux()}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	s.mux.Handle(pairPrefix+"challenge", public(s.challenge))
	s.mux.Handle(pairPrefix+"request", public(s.request))
	s.mux.Handle(pairPrefix+"poll", public(s.poll))

	s.mux.Handle(apiPrefix+"session", s.admin("GET", s.session))
	s.mux.Handle(apiPrefix+"events", s.admin("GET", s.events))
	s.mux.Handle(apiPrefix+"devices", s.admin("GET", s.listDevices))
	s.mux.Handle(apiPrefix+"pairing", s.admin("GET", s.listRequests))
	s.mux.Handle(apiPrefix+"pairing/{request_id}/approve", s.admin("POST", s.approve))
	s.mux.Handle(apiPrefix+"pairing/{request_id}/reject", s.admin("POST", s.reject))
	s.mux.Handle(apiPrefix+"devices/{device_id}/revoke", s.admin("POST", s.revoke))
	s.mux.Handle(apiPrefix+"devices/{device_id}/rename", s.admin("POST", s.rename))

	// The mux redirects /.clawguard/ui to /.clawguard/ui/.
	s.mux.Handle(uiPrefix, s.admin("GET", serveUI))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{Status: http.StatusNotFound, Code: "not_found", Msg: "no such clawguard endpoint"})
	})
	return s
}

// ServeHTTP serves a request under PathPrefix. The gate must have attached
// the Caller, and for admin paths authorised it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	s.mux.ServeHTTP(w, r)
}

// Close ends the live event streams of this server (the store stays open:
// it belongs to whoever opened it).
func (s *Server) Close() { s.cancel() }

// only restricts a handler to one method.
func only(method string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == "GET" && r.Method == "HEAD") {
			w.Header().Set("Allow", method)
			writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Msg: "use " + method})
			return
		}
		h(w, r)
	})
}

// public guards the pairing endpoints, which need no credential: POST only,
// and not from a web page of another site. Devices are programs, not pages;
// a page in the gateway user's browser must not queue requests that look
// like they came from this host.
func public(h http.HandlerFunc) http.Handler {
	return only("POST", func(w http.ResponseWriter, r *http.Request) {
		if callerOf(r).CrossSite || crossSiteFetch(r) {
			writeError(w, &Error{Status: http.StatusForbidden, Code: "cross_site", Msg: "pairing requests from web pages of other sites are refused"})
			return
		}
		h(w, r)
	})
}

// admin guards admin paths: an identity must have been established (the
// gate's job), browser requests must be same-origin, and every write must
// carry the session's CSRF token.
func (s *Server) admin(method string, h http.HandlerFunc) http.Handler {
	return only(method, func(w http.ResponseWriter, r *http.Request) {
		c := callerOf(r)
		if c.Identity == "" {
			writeError(w, &Error{Status: http.StatusForbidden, Code: "forbidden", Msg: "a local or admin identity is required"})
			return
		}
		if c.CrossSite || crossSiteFetch(r) {
			writeError(w, &Error{Status: http.StatusForbidden, Code: "cross_site", Msg: "cross-site requests to the admin API are refused"})
			return
		}
		if method == "POST" && !s.store.checkCSRF(c.Identity, r.Header.Get(CSRFHeader), s.cfg.Now()) {
			writeError(w, &Error{Status: http.StatusForbidden, Code: "csrf",
				Msg: "missing or invalid " + CSRFHeader + " header; get one from GET " + apiPrefix + "session"})
			return
		}
		h(w, r)
	})
}

// crossSiteFetch reports a browser's own statement that the request comes
// from another site (Fetch Metadata), which holds even without an Origin.
func crossSiteFetch(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	return false
}
