package sidecar

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/clawguard/clawguard/sandbox"
	"github.com/clawguard/clawguard/wire"
)

// Options configure a Server.
type Options struct {
	// Sandboxes runs sandbox commands and lists sandboxes. Required.
	Sandboxes *sandbox.Manager
	// Host runs target "host" (elevated) commands. Nil: they are refused.
	Host Runner
	// Node runs target "node" commands. Nil: they are refused.
	Node Runner
	// Policy decides every request. Required: there is no allow-all default;
	// use Allowlist(nil) to deny everything.
	Policy Policy
	// Verifier establishes the caller's identity. Default TrustedHeaders.
	Verifier Verifier
	// AllowedUIDs are the peer UIDs served. Default: this process's UID.
	AllowedUIDs []uint32
	// Registry receives the exec metrics and is served at /metrics.
	// Default: a new registry.
	Registry *prometheus.Registry
	// Logger receives structured logs. Default: discard.
	Logger *slog.Logger
	// ConfigFile names the sidecar's config file in refusals a change to
	// it would fix (no_sandbox_profile). Default: "the sidecar config".
	ConfigFile string
	// Health, if set, adds fields to GET /healthz (restart_needed).
	Health func() map[string]string
}

// Server is the sidecar's HTTP API.
type Server struct {
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	srv     *http.Server
	metrics *execMetrics
	allowed map[uint32]bool
	sandbox Runner

	// base ends when the server shuts down: running commands, policy waits
	// and streams are cancelled.
	base   context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	closing  bool
	detached sync.WaitGroup // WebSocket streams (hijacked) and in-process Execs: http.Server does not track them
}

// track counts in work that Shutdown must wait for beside http.Server's;
// false once the server is shutting down. Done on s.detached ends it.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.detached.Add(1)
	return true
}

// New builds a Server; Serve starts it.
func New(o Options) (*Server, error) {
	if o.Sandboxes == nil {
		return nil, errors.New("sidecar: Options.Sandboxes is required")
	}
	if o.Policy == nil {
		return nil, errors.New("sidecar: Options.Policy is required (Allowlist(nil) denies everything)")
	}
	if o.Verifier == nil {
		o.Verifier = TrustedHeaders{}
	}
	if len(o.AllowedUIDs) == 0 {
		o.AllowedUIDs = []uint32{uint32(os.Getuid())}
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newExecMetrics(o.Registry)
	if err != nil {
		return nil, fmt.Errorf("sidecar: metrics: %w", err)
	}
	s := &Server{
		opts: o, log: o.Logger, mux: http.NewServeMux(), metrics: m,
		allowed: map[uint32]bool{}, sandbox: sandboxRunner{o.Sandboxes},
	}
	for _, u := range o.AllowedUIDs {
		s.allowed[u] = true
	}
	s.base, s.cancel = context.WithCancel(context.Background())
	s.Handle("POST "+wire.PathExec, http.HandlerFunc(s.handleExec))
	s.Handle("GET "+wire.PathExecStream, http.HandlerFunc(s.handleStream))
	s.Handle("GET "+wire.PathSandboxes, http.HandlerFunc(s.handleListSandboxes))
	s.Handle("DELETE "+wire.PathSandboxes+"/{id}", http.HandlerFunc(s.handleDeleteSandbox))
	// Health and metrics need an allowed peer but no identity: probes and
	// scrapers on the host do not carry the gate's headers.
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelError)}))
	s.srv = &http.Server{
		Handler:           s,
		ConnContext:       peerContext,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Handle mounts h at pattern (http.ServeMux syntax, e.g. "GET
// /v1/approvals") behind the same checks as the built-in routes: an
// allowed peer and a verified identity (IdentityFrom). This is how the
// approvals API joins the sidecar.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.requireIdentity(h))
}

// ServeHTTP refuses peers whose UID is not allowed, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	peer, ok := peerFrom(r.Context())
	if !ok || !s.allowed[peer.UID] {
		s.log.Warn("refused peer", "uid", peer.UID, "pid", peer.PID, "known", ok)
		writeError(w, &apiError{status: http.StatusForbidden, code: "peer_refused", msg: "this socket serves only the gate's user"})
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) requireIdentity(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, _ := peerFrom(r.Context())
		id, err := s.opts.Verifier.Verify(r, peer)
		if err != nil {
			s.log.Warn("refused request without identity", "path", r.URL.Path, "uid", peer.UID, "err", err)
			writeError(w, &apiError{status: http.StatusUnauthorized, code: "no_identity", msg: err.Error()})
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// Serve serves l until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve(l net.Listener) error {
	if err := s.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting, cancels running commands and pending policy
// decisions, and waits for the handlers, streams and in-process Execs to
// finish.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.cancel()
	err := s.srv.Shutdown(ctx)
	done := make(chan struct{})
	go func() { s.detached.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("sidecar: shutdown: %w", ctx.Err())
	}
	return err
}

// Listen creates the unix socket at path, mode 0600. A stale socket left by
// a crash is replaced; a live one (another sidecar) or any other file there
// is an error.
func Listen(path string) (net.Listener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("socket %s: path is %d bytes; unix sockets allow %d (use --socket with a shorter path)", path, len(path), maxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %s: another sidecar is listening on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("socket %s: remove stale: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	// The state dir is 0700 already; 0600 also covers a --socket elsewhere,
	// and SO_PEERCRED is checked on every connection regardless.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	return l, nil
}

// maxSocketPath is the longest path a unix socket address holds on Linux.
const maxSocketPath = 107

// apiError is a refusal or failure with its HTTP status and stable code.
type apiError struct {
	status   int
	code     string
	msg      string
	decision *Decision
}

// errorBody is wire.ErrorBody with the policy's decision on a refused exec.
type errorBody struct {
	wire.ErrorBody
	Decision   string `json:"decision,omitempty"`
	ApprovalID string `json:"approval_id,omitempty"`
}

func (e *apiError) body() errorBody {
	b := errorBody{ErrorBody: wire.ErrorBody{Error: e.msg, Code: e.code}}
	if e.decision != nil {
		b.Decision, b.ApprovalID = e.decision.Decision, e.decision.ApprovalID
	}
	return b
}

func writeError(w http.ResponseWriter, e *apiError) {
	wire.WriteJSON(w, e.status, e.body())
}

var _ http.Handler = (*Server)(nil)
