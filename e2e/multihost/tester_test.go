package multihost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"
	"tailscale.com/ipn/store/mem"
	ts "tailscale.com/tsnet"
	"tailscale.com/types/logger"

	"github.com/clawguard/clawguard/sidecar"
	"github.com/clawguard/clawguard/tsnet/tsnettest"
	"github.com/clawguard/clawguard/wire"
)

// requestTimeout bounds every request of the test's clients: a request that
// reaches it hung.
const requestTimeout = 20 * time.Second

// join puts the test process on the lab's tailnet as node hostname with
// tags, logging in with authKey. It returns Up's error (a refused key);
// other failures fail t.
func join(t *testing.T, ctx context.Context, l lab, authKey, hostname string, tags ...string) (*tsnettest.Client, error) {
	t.Helper()
	tsnettest.Offline()
	srv := &ts.Server{
		Dir:           filepath.Join(t.TempDir(), hostname),
		ControlURL:    l.controlURL,
		AuthKey:       authKey,
		Hostname:      hostname,
		Store:         new(mem.Store),
		Ephemeral:     true,
		AdvertiseTags: tags,
		UserLogf:      logger.Discard,
	}
	if *tsnettest.Verbose {
		srv.Logf = t.Logf
	}
	t.Cleanup(func() { srv.Close() })
	uctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := srv.Up(uctx); err != nil {
		return nil, err
	}
	tsnettest.WaitHomeDERP(t, ctx, srv)
	return &tsnettest.Client{Srv: srv, HTTP: &http.Client{
		Timeout:   requestTimeout,
		Transport: &http.Transport{DialContext: srv.Dial, DisableKeepAlives: true},
	}}, nil
}

// result is one request's outcome as the client saw it.
type result struct {
	status    int // 0: no response
	body      string
	took      time.Duration
	connected bool // a connection to the server was made
	err       error
}

func fetch(c *tsnettest.Client, url string) result {
	start := time.Now()
	res, connected, err := c.Get(url)
	r := result{took: time.Since(start), connected: connected, err: err}
	if err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		r.status, r.body, r.took = res.StatusCode, string(b), time.Since(start)
	}
	return r
}

// execOn asks node host n's sidecar, through the gate, to run argv on its
// own host (target "node") for agent "main".
func execOn(c *tsnettest.Client, n nodeHost, argv ...string) (sidecar.ExecResponse, result) {
	body, _ := json.Marshal(sidecar.ExecRequest{Agent: "main", Target: sidecar.TargetNode, Argv: argv, Cwd: "/"})
	start := time.Now()
	res, err := c.HTTP.Post(gateURL(n, wire.PathExec), "application/json", bytes.NewReader(body))
	r := result{took: time.Since(start), err: err}
	var out sidecar.ExecResponse
	if err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		r.status, r.body, r.took = res.StatusCode, string(b), time.Since(start)
		json.Unmarshal(b, &out)
	}
	return out, r
}

// challenge opens a WebSocket to url over the tailnet and reads the first
// frame, which an OpenClaw gateway sends unasked: its connect.challenge.
// It returns the challenge's nonce.
func challenge(ctx context.Context, c *tsnettest.Client, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: c.HTTP})
	if err != nil {
		return "", err
	}
	defer conn.CloseNow()
	_, b, err := conn.Read(ctx)
	if err != nil {
		return "", fmt.Errorf("reading the first frame: %w", err)
	}
	var f struct {
		Type, Event string
		Payload     struct{ Nonce string }
	}
	if err := json.Unmarshal(b, &f); err != nil || f.Type != "event" || f.Event != "connect.challenge" || f.Payload.Nonce == "" {
		return "", fmt.Errorf("first frame %q, want a connect.challenge event with a nonce (%v)", b, err)
	}
	conn.Close(websocket.StatusNormalClosure, "")
	return f.Payload.Nonce, nil
}
