package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/clawguard/clawguard/pairing"
	cgtailnet "github.com/clawguard/clawguard/tsnet"
	"github.com/clawguard/clawguard/wire"
)

// The admin UI and API live on an origin of their own, which the upstream
// never serves: a page the upstream hands out through the gate (an agent's
// HTML artifact, a canvas page) runs on the gateway's origin, gets local
// trust there and could read the UI's CSRF token. On the gateway's site the
// admin paths answer 404.

// DefaultAdminListen is the admin listener's address unless admin_listen
// says otherwise.
const DefaultAdminListen = "127.0.0.1:18788"

// adminSockets holds the admin listeners on TCP by address across config
// loads: a reload hands the socket to the new config's gate instead of
// binding a second one. They are bound without SO_REUSEPORT, so a second
// process cannot share the address (and the kernel split connections
// between two gates); it fails with "address already in use".
var adminSockets = caddy.NewUsagePool()

// adminSocket is one admin listener on TCP and the gate serving it now.
type adminSocket struct {
	ln   net.Listener
	srv  *http.Server
	gate atomic.Pointer[Gate]
}

func (s *adminSocket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g := s.gate.Load(); g != nil {
		g.serveAdminOrigin(w, r)
		return
	}
	wire.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the admin listener is starting")
}

// Destruct closes the socket when the last config using it is stopped.
func (s *adminSocket) Destruct() error {
	return s.srv.Close()
}

// adminClaim is a gate's admin listener address in one config.
type adminClaim struct {
	addr     caddy.NetworkAddress
	key      string // the address as written, normalised: the pool key
	gate     *Gate
	explicit bool // from admin_listen rather than the default

	socket *adminSocket  // TCP, while started
	prev   *Gate         // the gate the socket served before this config
	srv    *http.Server  // tailnet, while started
	ln     net.Listener  // tailnet, while started
	stopCh chan struct{} // closed when Serve has returned (tailnet)
}

// parseAdminListen checks an admin listener address: a loopback host:port,
// or tailnet/<node>:<port>.
func parseAdminListen(s string) (caddy.NetworkAddress, error) {
	na, err := caddy.ParseNetworkAddress(s)
	if err != nil {
		return na, fmt.Errorf("admin_listen %q: %w", s, err)
	}
	if na.PortRangeSize() != 1 || na.StartPort == 0 {
		return na, fmt.Errorf("admin_listen %q: want one explicit port", s)
	}
	switch {
	case na.Network == "tailnet":
		return na, cgtailnet.ValidNodeName(na.Host)
	case na.Network == "tcp" || na.Network == "tcp4" || na.Network == "tcp6":
		if na.Host == "localhost" {
			return na, nil
		}
		if a, err := netip.ParseAddr(na.Host); err == nil && a.Unmap().IsLoopback() {
			return na, nil
		}
		return na, fmt.Errorf("admin_listen %q: the admin listener binds a loopback address (127.0.0.1, ::1, localhost) or a tailnet node (tailnet/<node>:<port>), never a shared network", s)
	}
	return na, fmt.Errorf("admin_listen %q: network %s is not supported (want a loopback host:port or tailnet/<node>:<port>)", s, na.Network)
}

// provisionAdminListen registers the gate's admin listeners with the app.
// Gates that leave admin_listen unset ask for the default address (the
// global option's, else DefaultAdminListen), which
// goes to the first of them in the config; an explicit admin_listen takes
// precedence over the default, and two explicit claims of one address are
// an error.
func (g *Gate) provisionAdminListen(app *App) error {
	if g.pairing == nil {
		return nil // nothing to administer
	}
	addrs, explicit := g.AdminListen, true
	if len(addrs) == 0 {
		addrs, explicit = app.AdminListen, false
	}
	if len(addrs) == 0 {
		addrs = []string{DefaultAdminListen}
	}
	if len(addrs) == 1 && addrs[0] == "off" {
		return nil
	}
	for _, a := range addrs {
		na, err := parseAdminListen(a)
		if err != nil {
			return err
		}
		if err := app.claimAdmin(&adminClaim{addr: na, key: na.String(), gate: g, explicit: explicit}); err != nil {
			return err
		}
	}
	return nil
}

// claimAdmin records c unless the address is taken (see
// provisionAdminListen).
func (a *App) claimAdmin(c *adminClaim) error {
	for i, o := range a.adminClaims {
		if o.key != c.key {
			continue
		}
		switch {
		case o.explicit && c.explicit:
			return fmt.Errorf("admin_listen %s: claimed by two clawguard handlers of this config; give each its own address, or `admin_listen off` to all but one", c.key)
		case c.explicit:
			a.adminClaims[i] = c
			c.gate.logger.Info("admin listener taken over from a handler that used the default", zap.String("address", c.key))
		default:
			if o.gate.pairing.key != c.gate.pairing.key {
				c.gate.logger.Warn("no admin listener for this handler: the default address is served by another handler with another state_dir; set admin_listen",
					zap.String("address", c.key), zap.String("state_dir", c.gate.pairing.key))
			}
		}
		return nil
	}
	a.adminClaims = append(a.adminClaims, c)
	return nil
}

// startAdmin opens (or takes over) the claimed admin listeners.
func (a *App) startAdmin() error {
	for i, c := range a.adminClaims {
		if err := c.start(a.ctx); err != nil {
			for _, s := range a.adminClaims[:i] {
				s.stop()
			}
			return err
		}
		c.gate.logger.Info("admin UI and API listening", zap.String("address", c.key))
	}
	return nil
}

// stopAdmin releases this config's admin listeners.
func (a *App) stopAdmin() {
	for _, c := range a.adminClaims {
		c.stop()
	}
}

func (c *adminClaim) start(ctx caddy.Context) error {
	if c.addr.Network == "tailnet" {
		return c.startTailnet(ctx)
	}
	v, _, err := adminSockets.LoadOrNew(c.key, func() (caddy.Destructor, error) {
		ln, err := net.Listen(c.addr.Network, c.addr.JoinHostPort(0))
		if err != nil {
			return nil, fmt.Errorf("admin_listen %s: %w%s", c.key, err, holderHint(err))
		}
		s := &adminSocket{ln: ln}
		s.srv = adminServer(s)
		go s.srv.Serve(ln)
		return s, nil
	})
	if err != nil {
		return err
	}
	c.socket = v.(*adminSocket)
	c.prev = c.socket.gate.Swap(c.gate)
	return nil
}

func (c *adminClaim) startTailnet(ctx caddy.Context) error {
	l, err := c.addr.Listen(ctx, 0, net.ListenConfig{})
	if err != nil {
		return fmt.Errorf("admin_listen %s: %w", c.key, err)
	}
	c.ln = l.(net.Listener)
	c.srv = adminServer(http.HandlerFunc(c.gate.serveAdminOrigin))
	c.srv.ConnContext = cgtailnet.ConnContext
	c.stopCh = make(chan struct{})
	go func() {
		defer close(c.stopCh)
		c.srv.Serve(c.ln)
	}()
	return nil
}

func (c *adminClaim) stop() {
	if c.socket != nil {
		// A config that failed to start hands the socket back to the gate
		// it took it from; a replaced config finds its successor there.
		c.socket.gate.CompareAndSwap(c.gate, c.prev)
		if _, err := adminSockets.Delete(c.key); err != nil {
			c.gate.logger.Error("closing the admin listener", zap.String("address", c.key), zap.Error(err))
		}
		c.socket = nil
	}
	if c.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.srv.Shutdown(ctx); err != nil {
			c.srv.Close()
		}
		<-c.stopCh
		c.srv = nil
	}
}

// adminServer serves the admin origin with timeouts that a slow client
// cannot hold open (the live event feed is a long response, so there is no
// write timeout).
func adminServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// holderHint adds advice to an address-in-use error.
func holderHint(err error) string {
	if errors.Is(err, syscall.EADDRINUSE) {
		return " (another process holds it: a second Caddy or `clawguard up`? set admin_listen to another address or stop that process)"
	}
	return ""
}

// serveAdminOrigin answers a request on the admin listener: the admin API
// and UI after authentication, "/" redirected to the UI, everything else
// 404 (a browser's /favicon.ico 204).
func (g *Gate) serveAdminOrigin(w http.ResponseWriter, r *http.Request) {
	f := g.begin(r)
	if param := credentialInURL(r); param != "" {
		g.refuseCredentialInURL(w, r, param)
		return
	}
	switch {
	case r.URL.Path == "/":
		http.Redirect(w, r, uiPath, http.StatusFound)
		return
	case r.URL.Path == "/favicon.ico":
		w.WriteHeader(http.StatusNoContent) // browsers ask; the UI has none
		return
	case !pairing.IsAdminPath(r.URL.Path):
		g.refuse(w, r, http.StatusNotFound, "not_found", "the admin listener serves only "+uiPath+" and /.clawguard/api/")
		return
	}
	v, answered := g.authorize(w, r, &f, g.adminSite)
	if answered {
		return
	}
	g.serveAdmin(w, r, v, &f)
}

// uiPath is the admin UI's address on the admin listener.
const uiPath = "/.clawguard/ui/"
