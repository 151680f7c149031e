package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"

	"github.com/clawguard/clawguard/internal/secretref"
	"github.com/clawguard/clawguard/nodehost"
	"github.com/clawguard/clawguard/openclaw"
	"github.com/clawguard/clawguard/sidecar"
	"github.com/clawguard/clawguard/tsnet"
	"github.com/clawguard/clawguard/vault"
	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	register(&command{
		name:    "node",
		summary: "run the sidecar as an OpenClaw headless node host: connect to a gateway, serve system.run/system.which through the exec approvals",
		run:     runNode,
	})
}

// The vault entries of `clawguard node`: the device key (an Ed25519 seed,
// created on first start) and the device token the gateway issues.
const (
	vaultDeviceKey   = "openclaw_device_key"
	vaultDeviceToken = "openclaw_device_token"
)

func runNode(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("node", "node --gateway ws://HOST:PORT [--tls-fingerprint SHA256] [--token {vault.X}|{env.X}|{file.X}] [--password …] [--gate-token …] [--display-name NAME] [--gateway-direct] "+daemonUsage+" "+tailnetUsage)
	gateway := fs.String("gateway", "", "the OpenClaw gateway's WebSocket URL, ws:// or wss:// (ws:// only to loopback, private and tailnet addresses); through the clawguard gate or direct. Required")
	pin := fs.String("tls-fingerprint", "", "with wss://: the SHA-256 of the gateway's certificate (hex); only that certificate is accepted")
	token := fs.String("token", "", "the gateway's shared token as a placeholder: {vault.NAME}, {env.NAME} or {file./path}, never the token itself (default: none; the device token is used once paired)")
	password := fs.String("password", "", "the gateway's shared password, as a placeholder like --token")
	gateToken := fs.String("gate-token", "", "when a clawguard gate fronts the gateway: its token (or this machine's device token), as a placeholder like --token, sent as Authorization: Bearer on the WebSocket handshake (over the tailnet the gate's tailnet_identity needs none)")
	display := fs.String("display-name", "", "the node's name in the gateway (default: the host name)")
	direct := fs.Bool("gateway-direct", false, "with --tailnet: dial the gateway over this host's network rather than through the tailnet node")
	df := addDaemonFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	if *gateway == "" {
		return usageError{"--gateway: required, e.g. ws://127.0.0.1:18789"}
	}
	gw, err := url.Parse(*gateway)
	if err != nil || gw.Host == "" {
		return usageError{fmt.Sprintf("--gateway %q: want ws://HOST:PORT or wss://HOST:PORT", *gateway)}
	}
	o, err := df.options(c, fs)
	if err != nil {
		return err
	}
	if *direct && o.Tailnet == nil {
		return usageError{"--gateway-direct: only with --tailnet NODE"}
	}
	// One vault for the placeholders and the device's key and token: each
	// open derives its key with scrypt.
	vlt, err := vault.Open(o.StateDir)
	if err != nil {
		return fmt.Errorf("node: the device key lives in the vault: %w", err)
	}
	shared := map[string]*string{"--token": token, "--password": password, "--gate-token": gateToken}
	for name, v := range shared {
		if *v == "" {
			continue
		}
		if secretref.IsLiteral(*v) {
			return usageError{name + ": give a placeholder ({vault.NAME}, {env.NAME} or {file./path}), never the secret itself: arguments are visible to every user of this machine"}
		}
		if *v, err = secretref.Resolve(*v, vlt.Get); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	key, err := deviceKey(vlt)
	if err != nil {
		return err
	}

	st := newNodeStatus()
	n := &openclaw.Node{
		Gateway: *gateway, TLSFingerprint: *pin, Token: *token, Password: *password,
		Identity: key, DeviceTokens: vaultTokens{vlt}, DisplayName: *display,
		Logger: o.Logger.With("gateway", gw.Host), OnState: st.report(o.Logger, gw.Host, openclaw.DeviceID(key.Public().(ed25519.PublicKey))),
	}
	if *gateToken != "" {
		n.Header = http.Header{"Authorization": {"Bearer " + *gateToken}}
	}
	if o.Tailnet != nil && !*direct {
		settings, err := o.Tailnet.Config.Resolve(o.Tailnet.Node, o.StateDir)
		if err != nil {
			return fmt.Errorf("--tailnet: %w", err)
		}
		d, err := tsnet.NewDialer(o.Tailnet.Node, settings, tsnet.LoggerFromSlog(o.Logger.With("tailnet_node", o.Tailnet.Node)))
		if err != nil {
			return fmt.Errorf("--tailnet: %w", err)
		}
		defer d.Close()
		n.Dial = d.Dial
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	audit := o.Background
	o.Background = func(ctx context.Context, reg prometheus.Registerer) error {
		if err := st.register(reg); err != nil {
			return err
		}
		if audit != nil {
			return audit(ctx, reg)
		}
		return nil
	}
	o.OnServer = func(srv *sidecar.Server) {
		n.Handler = &nodehost.Handler{Sidecar: srv, Gateway: gw.Host, OnInvoke: st.invoked, Logger: o.Logger}
		wg.Go(func() {
			if err := n.Run(ctx); err != nil && ctx.Err() == nil {
				cancel(fmt.Errorf("node: %w", err))
			}
		})
	}
	err = sidecar.Run(ctx, o)
	cancel(nil)
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// deviceKey returns the node's device key from the vault, creating it on
// first use.
func deviceKey(v *vault.Vault) (ed25519.PrivateKey, error) {
	seed, err := v.Get(vaultDeviceKey)
	switch {
	case errors.Is(err, vault.ErrNotFound):
		seed = make([]byte, ed25519.SeedSize)
		rand.Read(seed)
		if err := v.Set(vaultDeviceKey, seed); err != nil {
			return nil, fmt.Errorf("node: storing the new device key: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("node: reading the device key: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("node: vault entry %s: %d bytes, want an Ed25519 seed of %d (remove it to make a new device, which must pair again)", vaultDeviceKey, len(seed), ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// vaultTokens keeps the gateway's device token in the vault.
type vaultTokens struct{ v *vault.Vault }

func (t vaultTokens) LoadDeviceToken() (string, error) {
	b, err := t.v.Get(vaultDeviceToken)
	if errors.Is(err, vault.ErrNotFound) {
		return "", nil
	}
	return string(b), err
}

func (t vaultTokens) SaveDeviceToken(token string) error {
	if token == "" {
		if err := t.v.Delete(vaultDeviceToken); err != nil && !errors.Is(err, vault.ErrNotFound) {
			return err
		}
		return nil
	}
	return t.v.Set(vaultDeviceToken, []byte(token))
}

// nodeStatus is the connection's state as metrics:
// clawguard_openclaw_gateway_connected and clawguard_openclaw_invokes_total.
type nodeStatus struct {
	connected prometheus.Gauge
	invokes   *prometheus.CounterVec
}

func newNodeStatus() *nodeStatus {
	return &nodeStatus{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "clawguard_openclaw_gateway_connected",
			Help: "Whether the node is connected to its OpenClaw gateway and serving invokes (1) or not (0: connecting, waiting for pairing, disconnected)."}),
		invokes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clawguard_openclaw_invokes_total",
			Help: "Invokes from the OpenClaw gateway by command and result (ok, denied, invalid, error)."}, []string{"command", "result"}),
	}
}

func (s *nodeStatus) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{s.connected, s.invokes} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("node: registering metrics: %w", err)
		}
	}
	return nil
}

func (s *nodeStatus) invoked(command, result string) {
	s.invokes.WithLabelValues(command, result).Inc()
}

// report logs each state change once and sets the gauge.
func (s *nodeStatus) report(log *slog.Logger, gateway, deviceID string) func(openclaw.State) {
	return func(st openclaw.State) {
		up := 0.0
		switch st.Phase {
		case openclaw.PhaseConnected:
			up = 1
			log.Info("connected to the OpenClaw gateway", "gateway", gateway, "device_id", deviceID, "protocol", st.Protocol)
		case openclaw.PhasePairing:
			log.Warn("waiting for this node to be approved on the OpenClaw gateway (its pending node pairing requests)",
				"gateway", gateway, "device_id", deviceID, "request_id", st.PairingRequestID, "retry_in", st.RetryIn.String())
		case openclaw.PhaseDisconnected:
			log.Warn("not connected to the OpenClaw gateway", "gateway", gateway, "err", st.Err, "retry_in", st.RetryIn.String())
		}
		s.connected.Set(up)
	}
}
