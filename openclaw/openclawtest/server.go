package openclawtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawguard/clawguard/internal/testport"
	"github.com/clawguard/clawguard/openclaw"
	"github.com/coder/websocket"
)

// Options configure a double. The auth mode follows from them as in
// OpenClaw's resolveGatewayAuth: trusted-proxy with TrustedProxy, else
// password when Password is set, else token when Token is set, else none.
type Options struct {
	// Addr is the listen address. Default: with Start a loopback port
	// reserved for the test, with New 127.0.0.1:0.
	Addr string
	// Token and Password are the shared secrets (gateway.auth.token,
	// gateway.auth.password). Default: none.
	Token, Password string
	// TrustedProxy selects trusted-proxy auth (gateway.auth.mode
	// "trusted-proxy"). A Token with it is refused, as OpenClaw does.
	TrustedProxy *TrustedProxy
	// TLS serves wss with a self-signed certificate made at New
	// (Fingerprint is its SHA-256). Default: plain ws.
	TLS bool
	// TickInterval is policy.tickIntervalMs and how often tick events
	// are sent. Default: 15s, OpenClaw's.
	TickInterval time.Duration
	// MaxPayload is policy.maxPayload and the read limit after hello.
	// Default: 25 MiB, OpenClaw's MAX_PAYLOAD_BYTES.
	MaxPayload int
	// HandshakeTimeout bounds the wait for the connect request. Default:
	// 15s.
	HandshakeTimeout time.Duration
	// Logf receives the double's log. Default: none.
	Logf func(format string, args ...any)
}

// Server is a running double.
type Server struct {
	opts    Options
	mode    string
	cert    *tls.Certificate
	fp      string
	started time.Time

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change, for waits
	addr     string
	hs       *http.Server
	conns    map[*conn]bool
	nodes    map[string]*conn
	connects map[string]int
	devices  map[string]*Device
	pending  map[string]*PairingRequest
	invokes  map[string]*pendingInvoke
	received []Received
	silent   bool
}

// Auth modes, as gateway.auth.mode.
const (
	ModeNone         = "none"
	ModeToken        = "token"
	ModePassword     = "password"
	ModeTrustedProxy = "trusted-proxy"
)

// Start starts a double for t, stopped at t's end.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:" + strconv.Itoa(testport.Free(t))
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// New makes a double; Restart starts it.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.TickInterval <= 0 {
		opts.TickInterval = 15 * time.Second
	}
	if opts.MaxPayload <= 0 {
		opts.MaxPayload = openclaw.MaxFrame
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 15 * time.Second
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	s := &Server{
		opts: opts, addr: opts.Addr, started: time.Now(), changed: make(chan struct{}),
		conns: map[*conn]bool{}, nodes: map[string]*conn{}, connects: map[string]int{},
		devices: map[string]*Device{}, pending: map[string]*PairingRequest{},
		invokes: map[string]*pendingInvoke{},
	}
	switch {
	case opts.TrustedProxy != nil:
		if opts.Token != "" {
			return nil, errors.New("openclawtest: trusted-proxy and token auth are mutually exclusive (as in OpenClaw)")
		}
		if err := opts.TrustedProxy.check(); err != nil {
			return nil, err
		}
		s.mode = ModeTrustedProxy
	case opts.Password != "":
		s.mode = ModePassword
	case opts.Token != "":
		s.mode = ModeToken
	default:
		s.mode = ModeNone
	}
	if opts.TLS {
		cert, err := selfSigned()
		if err != nil {
			return nil, err
		}
		s.cert = &cert
		s.fp = openclaw.Fingerprint(cert.Certificate[0])
	}
	return s, nil
}

// Mode is the auth mode.
func (s *Server) Mode() string { return s.mode }

// Addr is the listen address (host:port).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL is the gateway's WebSocket URL.
func (s *Server) URL() string {
	scheme := "ws"
	if s.cert != nil {
		scheme = "wss"
	}
	return scheme + "://" + s.Addr()
}

// Fingerprint is the hex SHA-256 of the TLS certificate ("" without TLS).
func (s *Server) Fingerprint() string { return s.fp }

// Restart starts serving on the double's address (the same one after a
// Stop). Pairing state, device tokens and the received log are kept.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hs != nil {
		return errors.New("openclawtest: already running")
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("openclawtest: listen %s: %w", s.addr, err)
	}
	s.addr = ln.Addr().String()
	if s.cert != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*s.cert}, MinVersion: tls.VersionTLS12})
	}
	s.hs = &http.Server{Handler: http.HandlerFunc(s.serveWS), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(logfWriter(s.opts.Logf), "openclawtest: ", 0)}
	go s.hs.Serve(ln)
	s.opts.Logf("openclawtest: serving %s (auth %s)", s.addr, s.mode)
	return nil
}

// Stop sends every connection OpenClaw's shutdown event, closes them with
// 1012 (service restart) and stops listening. Invokes waiting on a node
// end with its disconnection. Restart serves again.
func (s *Server) Stop() {
	s.mu.Lock()
	hs := s.hs
	s.hs = nil
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if hs == nil {
		return
	}
	hs.Close()
	for _, c := range conns {
		c.event(openclaw.EventShutdown, map[string]any{"reason": "gateway stopping", "restartExpectedMs": 1000})
		c.ws.Close(websocket.StatusServiceRestart, "gateway stopping")
	}
}

// logfWriter sends the HTTP server's log (TLS handshake errors of refused
// pins, …) to Options.Logf.
type logfWriter func(format string, args ...any)

func (w logfWriter) Write(p []byte) (int, error) {
	w("%s", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// notify wakes every wait; s.mu must be held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor waits until cond (called with s.mu held) is true.
func (s *Server) waitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "openclawtest"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("openclawtest: certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// newID is a random id in OpenClaw's UUID form.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
