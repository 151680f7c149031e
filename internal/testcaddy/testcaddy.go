package testcaddy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile" // the caddyfile adapter
	_ "github.com/caddyserver/caddy/v2/modules/standard"      // reverse_proxy, respond, …

	"github.com/clawguard/clawguard/internal/testport"
)

// FreePort returns a loopback TCP port reserved for the rest of the test
// across every process on the machine (see internal/testport), so that two
// test binaries never give their Caddys the same port.
func FreePort(t testing.TB) int {
	t.Helper()
	return testport.Free(t)
}

// Adapt turns a Caddyfile into Caddy JSON with the real adapter.
func Adapt(caddyfile string) ([]byte, error) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	cfg, warnings, err := adapter.Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		if w.Message != "" {
			// Warnings are not fatal for Caddy either, but tests should see them.
			fmt.Printf("caddyfile warning: %s:%d: %s\n", w.File, w.Line, w.Message)
		}
	}
	return cfg, nil
}

// Load adapts and loads caddyfile, failing the test on error, and stops Caddy
// when the test ends.
func Load(t testing.TB, caddyfile string) {
	t.Helper()
	if err := LoadErr(caddyfile); err != nil {
		t.Fatalf("loading Caddyfile: %v\n%s", err, caddyfile)
	}
	t.Cleanup(Stop)
}

// LoadErr adapts and loads caddyfile (replacing any running config) and
// returns the error instead of failing, for tests of bad configs and reloads.
// It returns once the replaced config's listeners are closed.
func LoadErr(caddyfile string) error {
	cfg, err := Adapt(caddyfile)
	if err != nil {
		return err
	}
	return LoadJSON(cfg)
}

// LoadJSON loads a JSON config as LoadErr does.
func LoadJSON(cfg []byte) error {
	before := listening()
	if err := caddy.Load(cfg, true); err != nil {
		return err
	}
	recordOpened(cfg, before, listening())
	settleReload()
	return nil
}

// Stop stops Caddy and returns once its listeners are closed, so that the
// next config, or another test binary given the same port, can bind.
func Stop() {
	if err := caddy.Stop(); err != nil {
		fmt.Printf("stopping caddy: %v\n", err)
	}
	settleStop()
}

// Client returns an HTTP client whose connections originate from localIP
// (e.g. "127.0.0.2" to act as another loopback client) and that neither
// follows redirects nor reuses connections across tests.
func Client(localIP string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if localIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(localIP)}
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Global is the global options block every test config starts with: admin
// on its own port, no automatic HTTPS, nothing persisted, logs discarded,
// no storage checks or cleaning (their lock-refreshing goroutines would
// outlive a test), and no clawguard admin listener unless a gate sets its
// admin_listen (parallel test binaries would share the default). extra are further option lines (indented, each ending
// in a newline), e.g. a tailnet block.
func Global(adminPort int, extra ...string) string {
	return fmt.Sprintf(`{
	admin localhost:%d
	auto_https off
	persist_config off
	skip_install_trust
	storage_check off
	storage_clean_interval off
	log {
		output discard
	}
	clawguard {
		admin_listen off
	}
%s}
`, adminPort, strings.Join(extra, ""))
}
