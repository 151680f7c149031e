package tsnet_test

import (
	"net/http"
	"os"
	"testing"

	"github.com/clawguard/clawguard/tsnet"
	"github.com/clawguard/clawguard/tsnet/tsnettest"
)

// TestMain keeps every tsnet node offline and on loopback (tsnettest),
// before anything runs.
func TestMain(m *testing.M) {
	tsnettest.Offline()
	os.Exit(m.Run())
}

// serveWhoamiNode starts the untagged node "side" on tn, serving on port a
// plain net/http server (no Caddy, as the sidecar does) that answers with
// what Identify says about the caller. It returns the node's settings and
// the server (closed at the end of the test).
func serveWhoamiNode(t *testing.T, tn *tsnettest.Tailnet, port uint16) (tsnet.Settings, *http.Server) {
	t.Helper()
	side, err := tsnet.NodeConfig{ControlURL: tn.ControlURL, Ephemeral: true}.Resolve("side", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tsnet.Listen("side", side, port, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tsnettest.Identify(w, r, "side")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return side, srv
}
