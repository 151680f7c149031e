package openclaw

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Node is a connection to an OpenClaw gateway as a headless node host. The
// exported fields are its options; set them before Run and do not change
// them after. Run connects, serves invokes through Handler and reconnects
// with backoff until its ctx ends.
type Node struct {
	// Gateway is the ws:// or wss:// URL of the gateway's WebSocket.
	// Required. Plain ws:// is refused except to loopback, private,
	// link-local and CGNAT addresses, localhost, *.local and *.ts.net; a
	// URL with credentials, a query or a fragment is refused.
	Gateway string

	// TLSFingerprint pins the gateway's leaf certificate by its SHA-256
	// (hex, colons allowed, optional "sha256:" prefix). With a pin the
	// chain is not checked, only the pin; wss only. Default: none, the
	// system roots verify the chain.
	TLSFingerprint string

	// Token and Password are the gateway's shared auth, already resolved
	// (never logged). Default: none; then a stored device token is sent in
	// their place.
	Token, Password string

	// Identity is the device key; its DeviceID is the node id. Required.
	Identity ed25519.PrivateKey

	// DeviceTokens keeps the device token from hello-ok and gives it back
	// for connects without Token and Password. Default: none (the token is
	// not kept).
	DeviceTokens TokenStore

	// DisplayName is the node's name in the gateway. Default: the host
	// name.
	DisplayName string

	// Version is the client version sent. Default: the binary's module
	// version, or "dev".
	Version string

	// Platform is the platform sent (and signed), as OpenClaw spells
	// Node.js's process.platform. Default: from runtime.GOOS ("linux",
	// "darwin", "win32", …).
	Platform string

	// Commands are the commands advertised; invokes of others are refused
	// without calling Handler. Default: DefaultCommands.
	Commands []string

	// Dial opens the TCP connection to the gateway (for example through a
	// tailnet node). Default: a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Header is added to the WebSocket handshake request (for example a
	// clawguard gate credential). Default: none.
	Header http.Header

	// Handler runs the invokes. Required.
	Handler Handler

	// Logger receives the node's log. Default: slog.Default().
	Logger *slog.Logger

	// MinBackoff and MaxBackoff bound the wait between connection
	// attempts; it doubles after every attempt that did not reach
	// hello-ok, with jitter (a uniform draw in its upper half). Defaults:
	// 1s and 30s.
	MinBackoff, MaxBackoff time.Duration

	// OnState is called on every State change, in order, from Run's
	// goroutine; it must not block. Default: none.
	OnState func(State)

	setupOnce sync.Once
	setupErr  error
	url       *url.URL
	pin       []byte
	deviceID  string
	platform  string
	commands  []string
	allowed   map[string]bool
	log       *slog.Logger
	client    *http.Client
	invokes   *invokeTable
	running   atomic.Bool

	mu         sync.Mutex
	sess       *session
	outbox     []outgoing
	knownToken string
}

// ID is the node id the gateway knows this node by: DeviceID of
// Identity's public key ("" without an Identity).
func (n *Node) ID() string {
	if len(n.Identity) != ed25519.PrivateKeySize {
		return ""
	}
	return DeviceID(n.Identity.Public().(ed25519.PublicKey))
}

func (n *Node) setup() error {
	n.setupOnce.Do(func() { n.setupErr = n.doSetup() })
	return n.setupErr
}

func (n *Node) doSetup() error {
	var err error
	if n.url, err = parseGateway(n.Gateway); err != nil {
		return err
	}
	if n.TLSFingerprint != "" {
		if n.url.Scheme != "wss" {
			return configErr("TLSFingerprint", "a pin needs a wss:// Gateway")
		}
		if n.pin, err = parseFingerprint(n.TLSFingerprint); err != nil {
			return err
		}
	}
	if len(n.Identity) != ed25519.PrivateKeySize {
		return configErr("Identity", "required: an ed25519.PrivateKey of %d bytes", ed25519.PrivateKeySize)
	}
	if n.Handler == nil {
		return configErr("Handler", "required")
	}
	if n.MinBackoff < 0 || n.MaxBackoff < 0 || n.MaxBackoff > 0 && n.MinBackoff > n.MaxBackoff {
		return configErr("MinBackoff", "MinBackoff %v, MaxBackoff %v: want 0 <= MinBackoff <= MaxBackoff", n.MinBackoff, n.MaxBackoff)
	}
	n.deviceID = n.ID()
	n.platform = n.Platform
	if n.platform == "" {
		n.platform = nodePlatform(runtime.GOOS)
	}
	n.commands = n.Commands
	if len(n.commands) == 0 {
		n.commands = DefaultCommands
	}
	n.allowed = make(map[string]bool, len(n.commands))
	for _, c := range n.commands {
		if c == "" {
			return configErr("Commands", "an empty command name")
		}
		n.allowed[c] = true
	}
	n.log = n.Logger
	if n.log == nil {
		n.log = slog.Default()
	}
	n.log = n.log.With("gateway", n.url.Redacted(), "node_id", n.deviceID)
	n.client = n.httpClient()
	n.invokes = newInvokeTable(n)
	return nil
}

// Run connects to the gateway and serves invokes until ctx ends, then
// returns ctx's error after every running Handler.Invoke has returned (they
// see ctx end). It returns early, with the error, on a configuration error
// (*ConfigError) and on a refusal that retrying cannot fix
// (*ConnectError with Permanent()). Everything else — a gateway that is
// down or restarting, a pairing not approved yet, a TLS pin mismatch, a
// malformed or oversized frame, a silent connection — is retried with
// backoff. Run must not be called twice at the same time.
func (n *Node) Run(ctx context.Context) error {
	if err := n.setup(); err != nil {
		return err
	}
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("openclaw: Node.Run is already running")
	}
	defer n.running.Store(false)
	runCtx, cancel := context.WithCancel(ctx)
	defer n.invokes.wait()
	defer cancel()
	n.invokes.start(runCtx)

	failures := 0
	for {
		n.report(State{Phase: PhaseConnecting})
		helloed, err := n.connect(runCtx)
		if ctx.Err() != nil {
			n.report(State{Phase: PhaseDisconnected, Err: ctx.Err()})
			return ctx.Err()
		}
		if permanent(err) {
			n.log.Error("openclaw: giving up on the gateway", "err", err)
			n.report(State{Phase: PhaseDisconnected, Err: err})
			return err
		}
		if helloed {
			failures = 0
		}
		delay := n.backoff(failures)
		failures++
		st := State{Phase: PhaseDisconnected, Err: err, RetryIn: delay}
		var ce *ConnectError
		if errors.As(err, &ce) {
			switch {
			case ce.Detail == DetailPairingRequired:
				st.Phase, st.PairingRequestID = PhasePairing, ce.RequestID
			case ce.Detail == DetailAuthDeviceTokenMismatch:
				st.RetryIn = n.minBackoff() // the stale token is gone: try without it now
			case ce.RetryAfter > delay:
				st.RetryIn = min(ce.RetryAfter, maxRetryAfter)
			}
		}
		if st.Phase == PhasePairing {
			n.log.Info("openclaw: waiting for an operator to approve this device", "request_id", st.PairingRequestID, "retry_in", st.RetryIn)
		} else {
			n.log.Warn("openclaw: gateway connection ended", "err", err, "retry_in", st.RetryIn)
		}
		n.report(st)
		t := time.NewTimer(st.RetryIn)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			n.report(State{Phase: PhaseDisconnected, Err: ctx.Err()})
			return ctx.Err()
		}
	}
}

// maxRetryAfter bounds a gateway's retryAfterMs.
const maxRetryAfter = 5 * time.Minute

func (n *Node) report(st State) {
	if n.OnState != nil {
		n.OnState(st)
	}
}

func (n *Node) minBackoff() time.Duration {
	if n.MinBackoff > 0 {
		return n.MinBackoff
	}
	return time.Second
}

// backoff is the wait after failures attempts without hello-ok: MinBackoff
// doubled per failure, at most MaxBackoff, drawn uniformly from its upper
// half so that nodes restarted together do not reconnect together.
func (n *Node) backoff(failures int) time.Duration {
	hi := n.MaxBackoff
	if hi == 0 {
		hi = 30 * time.Second
	}
	d := n.minBackoff()
	for i := 0; i < failures && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// nodePlatform is Node.js's process.platform for a GOOS.
func nodePlatform(goos string) string {
	switch goos {
	case "windows":
		return "win32"
	case "solaris", "illumos":
		return "sunos"
	}
	return goos
}

func defaultDisplayName() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "clawguard-node"
}

func defaultVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
