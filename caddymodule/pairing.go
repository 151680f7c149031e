package caddymodule

import (
	"crypto/ed25519"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/clawguard/clawguard/authn"
	"github.com/clawguard/clawguard/httpsig"
	"github.com/clawguard/clawguard/pairing"
)

// Pairing configures device pairing (docs/design.md, "Device pairing"): the open
// endpoints under /.clawguard/pair/, device tokens, and the admin API and UI
// under /.clawguard/api/ and /.clawguard/ui/. It is on unless Off.
type Pairing struct {
	// Off disables pairing: /.clawguard/* answers 404 and device tokens are
	// refused. Default: false.
	Off bool `json:"off,omitempty"`

	// AutoApproveLocal approves pairing requests that qualify for local
	// trust at once. Default: true.
	AutoApproveLocal *bool `json:"auto_approve_local,omitempty"`

	// PendingTTL is how long a request waits for a person's decision, and
	// how long an approved device has to collect its token. At least 1s,
	// at most 24h. Default: 5m.
	PendingTTL caddy.Duration `json:"pending_ttl,omitempty"`

	// RequireDeviceSignature makes devices prove possession of their key on
	// every request: besides the token, an RFC 9421 ed25519 signature with
	// keyid = the device id, covering @method, @target-uri and, with a body,
	// content-digest, with created and nonce (replays refused). A stolen
	// token alone is then useless. Default: false.
	RequireDeviceSignature bool `json:"require_device_signature,omitempty"`
	// Approvals forwards the exec approvals admin API (the UI's section)
	// to the sidecar (see Approvals). Default: its defaults.
	Approvals *Approvals `json:"approvals,omitempty"`
}

// Bounds of pending_ttl.
const (
	minPendingTTL = time.Second
	maxPendingTTL = 24 * time.Hour
)

// pairingStores holds the stores by state directory across config loads, so
// a reload keeps pending requests, nonces and replay caches, and two sites
// with one state directory share one store.
var pairingStores = caddy.NewUsagePool()

// storeHandle is a pooled store with what must outlive a config load.
type storeHandle struct {
	*pairing.Store
	sigNonces *httpsig.NonceCache // replay cache of device request signatures
}

// Destruct closes the store when the last config using it is unloaded.
func (h storeHandle) Destruct() error { return h.Close() }

// gatePairing is one gate's pairing state.
type gatePairing struct {
	key      string // pool key: the state directory
	store    *pairing.Store
	server   *pairing.Server
	verifier *httpsig.Ed25519Verifier // with require_device_signature
	metrics  *pairingMetrics
	sidecar  *approvalsProxy // the approvals API, forwarded to the sidecar
}

// adminIdentity is what `admins` accepts: an identity as the gate names it
// upstream, other than local (which is always an admin).
var adminIdentity = regexp.MustCompile(`^(user|token|proxy|device|hmac|tailnet):[^\s]+$`)

func checkAdmin(id string) error {
	if !adminIdentity.MatchString(id) {
		return fmt.Errorf("admins: %q is not an identity like user:alice, token:ops, proxy:bob, device:<id>, hmac:<keyid> or tailnet:<login> (local is always an admin)", id)
	}
	return nil
}

// provisionPairing checks the admins and, unless pairing is off, opens (or
// joins) the state directory's store.
func (g *Gate) provisionPairing(ctx caddy.Context) error {
	for _, a := range g.Admins {
		if err := checkAdmin(a); err != nil {
			return err
		}
	}
	cfg := g.Pairing
	if cfg == nil {
		cfg = &Pairing{}
	}
	if cfg.Off {
		return nil
	}
	ttl := time.Duration(cfg.PendingTTL)
	if ttl == 0 {
		ttl = pairing.DefaultPendingTTL
	}
	if ttl < minPendingTTL || ttl > maxPendingTTL {
		return fmt.Errorf("pairing pending_ttl: %s is outside %s..%s", ttl, minPendingTTL, maxPendingTTL)
	}
	dir, err := filepath.Abs(g.stateDir)
	if err != nil {
		return fmt.Errorf("pairing: state_dir: %w", err)
	}
	logger := g.logger.Named("pairing")
	v, _, err := pairingStores.LoadOrNew(dir, func() (caddy.Destructor, error) {
		s, err := pairing.Open(dir, pairing.Options{Logger: logger})
		if err != nil {
			return nil, err
		}
		return storeHandle{Store: s, sigNonces: httpsig.NewNonceCache(0, time.Now())}, nil
	})
	if err != nil {
		return fmt.Errorf("pairing: %w", err)
	}
	h := v.(storeHandle)
	p := &gatePairing{key: dir, store: h.Store, metrics: g.metrics.pairing}
	if p.sidecar, err = newApprovalsProxy(cfg.Approvals, dir); err != nil {
		pairingStores.Delete(dir)
		return err
	}
	if cfg.RequireDeviceSignature {
		p.verifier, err = httpsig.NewEd25519Verifier(httpsig.Ed25519Config{
			PublicKey: func(id string) (ed25519.PublicKey, bool) { return h.PublicKey(id) },
			Nonces:    h.sigNonces,
		})
		if err != nil {
			pairingStores.Delete(dir)
			return fmt.Errorf("pairing require_device_signature: %w", err)
		}
	}
	p.server = pairing.NewServer(h.Store, pairing.Config{
		AutoApproveLocal: cfg.AutoApproveLocal == nil || *cfg.AutoApproveLocal,
		PendingTTL:       ttl,
		OnFailure:        g.pairingFailure,
		OnResult:         p.metrics.result,
		OnDecision:       g.recordPairing,
		Logger:           logger,
	})
	// Set only when complete: Caddy calls Cleanup after a failed Provision.
	g.pairing = p
	p.metrics.track(h.Store)
	return nil
}

// cleanupPairing ends this config's event streams and releases the store
// (closed with the last config using it). Errors are logged: Cleanup must
// go on to release the rate limiter.
func (g *Gate) cleanupPairing() {
	p := g.pairing
	if p == nil {
		return
	}
	p.server.Close()
	p.metrics.untrack(p.store)
	if _, err := pairingStores.Delete(p.key); err != nil {
		g.logger.Error("closing the pairing store", zap.String("state_dir", p.key), zap.Error(err))
	}
}

// pairingFailure counts a refused pairing message in the rate limiter,
// under the pairing class: its lockout blocks only the pairing protocol.
func (g *Gate) pairingFailure(c pairing.Caller) {
	if g.limiter == nil {
		return
	}
	if ip, err := netip.ParseAddr(c.IP); err == nil {
		g.limiter.Fail(authn.Key(g.site, authn.ClassPairing, ip), time.Now())
	}
}

// caller describes the request for the pairing handlers.
func (g *Gate) caller(f *facts) pairing.Caller {
	return pairing.Caller{
		Client:    authn.Key("", f.class(), f.client).Client.String(),
		IP:        f.client.String(),
		CrossSite: f.foreign,
		Local:     f.local,
	}
}

// serveReserved answers a path under /.clawguard/ on the gateway's site,
// however it is spelt: the pairing protocol's endpoints (no credential;
// auto-approval needs local trust), anything else 404 — the admin API and
// UI live on the admin listener only.
func (g *Gate) serveReserved(w http.ResponseWriter, r *http.Request, f *facts) error {
	if g.pairing == nil {
		return g.refuse(w, r, http.StatusNotFound, "not_found", "device pairing is off")
	}
	if !pairing.IsPairPath(r.URL.Path) {
		return g.refuse(w, r, http.StatusNotFound, "not_found", "no such clawguard endpoint on this site (the admin UI and API are on the admin listener)")
	}
	if g.limiter != nil {
		if locked, retry := g.limiter.Locked(authn.Key(g.site, authn.ClassPairing, f.client), time.Now()); locked {
			return g.tooMany(w, r, retry)
		}
	}
	c := g.caller(f)
	g.pairing.server.ServeHTTP(w, r.WithContext(pairing.WithCaller(r.Context(), c)))
	return nil
}

// serveAdmin answers the admin API and UI (on the admin listener) for an
// authenticated request: a local identity, or one listed in admins.
func (g *Gate) serveAdmin(w http.ResponseWriter, r *http.Request, v verdict, f *facts) {
	id := v.id.String()
	if v.id.Method != authn.MethodLocal && !g.isAdmin(id) {
		g.refuse(w, r, http.StatusForbidden, "forbidden", "this identity may not administer clawguard (see the admins option)")
		return
	}
	c := g.caller(f)
	c.Identity, c.Local = id, v.id.Method == authn.MethodLocal
	g.serveAdminRoute(w, r.WithContext(pairing.WithCaller(r.Context(), c)), v.id)
}

func (g *Gate) isAdmin(id string) bool {
	for _, a := range g.Admins {
		if a == id {
			return true
		}
	}
	return false
}

// authenticateDevice checks a device token (and, with
// require_device_signature, the request's ed25519 signature by the device's
// key), recording when and from where the device was seen.
func (g *Gate) authenticateDevice(r *http.Request, cred authn.Credential, f *facts) verdict {
	refused := verdict{outcome: authFailed, method: authn.MethodDevice, code: "invalid_credentials", msg: "invalid credentials"}
	p := g.pairing
	if p == nil {
		return refused
	}
	d, ok := p.store.Authenticate(cred.Token)
	if !ok {
		return refused
	}
	if p.verifier != nil {
		res, err := p.verifier.Verify(r)
		if err == nil && res.KeyID != d.ID {
			err = fmt.Errorf("signed by device %s, token of device %s", res.KeyID, d.ID)
		}
		if err != nil {
			if c := g.logger.Check(zap.InfoLevel, "device signature refused"); c != nil {
				c.Write(zap.String("device", d.ID), zap.Error(err), zap.String("remote", r.RemoteAddr))
			}
			return refused
		}
	}
	p.store.Touch(d.ID, f.client.String(), time.Now())
	return verdict{outcome: authOK, method: authn.MethodDevice, cred: cred, id: authn.Identity{Method: authn.MethodDevice, Name: d.ID}}
}
