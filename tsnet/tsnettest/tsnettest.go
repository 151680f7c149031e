package tsnettest

import (
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"tailscale.com/envknob"
	"tailscale.com/ipn/store/mem"
	"tailscale.com/net/netns"
	"tailscale.com/tailcfg"
	ts "tailscale.com/tsnet"
	"tailscale.com/tstest/integration"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/logger"
)

// Verbose prints the control server's, DERP's and the nodes' logs.
var Verbose = flag.Bool("verbose-tailnet", false, "print control, DERP and tailnet node logs")

var offline sync.Once

// Offline keeps every tsnet node of the process offline and on loopback:
// no port-mapping probes, no host addresses, no log upload. The knobs are
// read when nodes start, so this must run before the first one does
// (Start calls it).
func Offline() {
	offline.Do(func() {
		envknob.Setenv("TS_DISABLE_PORTMAPPER", "1")
		envknob.Setenv("TS_DEBUG_OMIT_LOCAL_ADDRS", "1")
		envknob.Setenv("TS_NO_LOGS_NO_SUPPORT", "true")
		netns.SetEnabled(false)
	})
}

// Tailnet is an offline tailnet.
type Tailnet struct {
	// ControlURL is the control server's URL, for nodes' control_url.
	ControlURL string
	// Control is the control server, e.g. for its TagOwners.
	Control *testcontrol.Server
}

// Start runs a control server and a DERP relay until the test ends.
// configure, if set, adjusts the control server before it starts (e.g.
// TagOwners, so that nodes may advertise tags).
func Start(t testing.TB, configure func(*testcontrol.Server)) *Tailnet {
	t.Helper()
	Offline()
	derpMap := integration.RunDERPAndSTUN(t, logf(t), "127.0.0.1")
	control := &testcontrol.Server{
		DERPMap:        derpMap,
		DNSConfig:      &tailcfg.DNSConfig{Proxied: true},
		MagicDNSDomain: "tail-scale.ts.net",
		Logf:           logf(t),
	}
	if configure != nil {
		configure(control)
	}
	control.HTTPTestServer = httptest.NewUnstartedServer(control)
	control.HTTPTestServer.Start()
	t.Cleanup(control.HTTPTestServer.Close)
	return &Tailnet{ControlURL: control.HTTPTestServer.URL, Control: control}
}

func logf(t testing.TB) logger.Logf {
	if *Verbose {
		return t.Logf
	}
	return logger.Discard
}

// Client is a tailnet member outside the code under test: a plain tsnet
// node, closed when the test ends.
type Client struct {
	Srv   *ts.Server
	Login string       // its user's login name (empty meaning for tagged nodes)
	HTTP  *http.Client // dials over the tailnet, no keep-alives
}

// Client starts a node called hostname, advertising tags, and waits until
// it is on the tailnet.
func (tn *Tailnet) Client(t testing.TB, ctx context.Context, hostname string, tags ...string) *Client {
	t.Helper()
	srv := &ts.Server{
		Dir:           filepath.Join(t.TempDir(), hostname),
		ControlURL:    tn.ControlURL,
		Hostname:      hostname,
		Store:         new(mem.Store),
		Ephemeral:     true,
		AdvertiseTags: tags,
		UserLogf:      logger.Discard,
	}
	if *Verbose {
		srv.Logf = t.Logf
	}
	t.Cleanup(func() { srv.Close() })
	if _, err := srv.Up(ctx); err != nil {
		t.Fatalf("tailnet client %s up: %v", hostname, err)
	}
	WaitHomeDERP(t, ctx, srv)
	lc, err := srv.LocalClient()
	if err != nil {
		t.Fatal(err)
	}
	st, err := lc.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &Client{
		Srv:   srv,
		Login: st.User[st.Self.UserID].LoginName,
		HTTP: &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{DialContext: srv.Dial, DisableKeepAlives: true},
		},
	}
}

// WaitHomeDERP waits until s has a home DERP region and has heard from it:
// before that, DERP drops packets for s and a fast test loses its first
// request.
func WaitHomeDERP(t testing.TB, ctx context.Context, s *ts.Server) {
	t.Helper()
	h := s.Sys().HealthTracker.Get()
	ms := s.Sys().MagicSock.Get()
	for {
		if r := ms.GetLastNetcheckReport(ctx); r != nil && r.PreferredDERP != 0 &&
			!h.GetDERPRegionReceivedTime(r.PreferredDERP).IsZero() {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for home DERP: %v", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitReach waits until c reaches ip through the tailnet's data path (a
// TSMP ping, answered by the peer's node), for peers whose tsnet.Server
// the test cannot see.
func (c *Client) WaitReach(t testing.TB, ctx context.Context, ip netip.Addr) {
	t.Helper()
	lc, err := c.Srv.LocalClient()
	if err != nil {
		t.Fatal(err)
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		res, err := lc.Ping(pctx, ip, tailcfg.PingTSMP)
		cancel()
		if err == nil && res.Err == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s cannot reach %s over the tailnet: %v %+v", c.Srv.Hostname, ip, err, res)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitPeer waits until the node whose tailnet hostname is hostname is in
// c's view of the tailnet and reachable, and returns its IPv4 address:
// how a test finds a node it cannot see (one the code under test runs).
func (c *Client) WaitPeer(t testing.TB, ctx context.Context, hostname string) netip.Addr {
	t.Helper()
	lc, err := c.Srv.LocalClient()
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for {
		st, err := lc.Status(ctx)
		if err == nil {
			seen = seen[:0]
			for _, p := range st.Peer {
				seen = append(seen, p.HostName)
				// Until the peer has a home DERP, packets to it are
				// dropped and WireGuard retries its handshake only after
				// 5 s: wait for the control server to announce one.
				if p.HostName != hostname || p.Relay == "" {
					continue
				}
				for _, ip := range p.TailscaleIPs {
					if ip.Is4() {
						c.WaitReach(t, ctx, ip)
						return ip
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s does not see node %s on the tailnet (peers: %q): %v", c.Srv.Hostname, hostname, seen, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
