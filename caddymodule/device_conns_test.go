package caddymodule

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/clawguard/clawguard/authn"
	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/pairclient"
	"github.com/clawguard/clawguard/pairing"
)

// startLiveGate runs the gate (pairing on, no admin listener) in front
// of the test upstream plus /stream, a response that never ends: a line
// every 50 ms until the request's context ends.
func startLiveGate(t *testing.T) *pairEnv {
	t.Helper()
	up := upstream(t)
	mux := http.NewServeMux()
	mux.Handle("/", up.Config.Handler)
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				return
			}
			rc.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	dir := filepath.Join(t.TempDir(), "state")
	port, admin := testcaddy.FreePort(t), testcaddy.FreePort(t)
	cfg := testcaddy.Global(admin) + fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	clawguard {
		state_dir %s
		admin_listen off
	}
	reverse_proxy %s
}
`, port, dir, strings.TrimPrefix(srv.URL, "http://"))
	testcaddy.Load(t, cfg)
	return &pairEnv{base: fmt.Sprintf("http://127.0.0.1:%d", port), admin: admin, dir: dir, cfg: cfg}
}

// pairLocalDevice pairs a new device from loopback (approved at once).
func pairLocalDevice(t *testing.T, e *pairEnv, name string) *pairclient.Result {
	t.Helper()
	res, err := pairclient.Pair(context.Background(), pairclient.Options{Gateway: e.base, Name: name, Key: newKey(t), HTTPClient: testcaddy.Client("")})
	if err != nil {
		t.Fatalf("pairing %s: %v", name, err)
	}
	return res
}

// chatter opens a WebSocket through the gate with token and sends a message
// every 50 ms, reading each echo; the channel receives the time the first
// read or write failed.
func chatter(t *testing.T, e *pairEnv, token string) <-chan time.Time {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, _, err := websocket.Dial(ctx, strings.Replace(e.base, "http", "ws", 1)+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}},
	})
	if err != nil {
		cancel()
		t.Fatalf("WebSocket through the gate: %v", err)
	}
	if _, hello, err := c.Read(ctx); err != nil || !strings.HasPrefix(string(hello), "hello device:") {
		cancel()
		t.Fatalf("upstream greeting %q, %v", hello, err)
	}
	failed := make(chan time.Time, 1)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); c.CloseNow(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			msg := fmt.Sprint(i)
			err := c.Write(ctx, websocket.MessageText, []byte(msg))
			var echo []byte
			if err == nil {
				_, echo, err = c.Read(ctx)
			}
			if err == nil && string(echo) != "echo: "+msg {
				err = fmt.Errorf("echo %q of %q", echo, msg)
			}
			if err != nil {
				failed <- time.Now()
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return failed
}

// streamAs starts GET /stream with token and reads it; the channel receives
// the time the response broke off.
func streamAs(t *testing.T, e *pairEnv, token string) <-chan time.Time {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.base+"/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("streaming request: %v", err)
	}
	if resp.StatusCode != 200 {
		cancel()
		t.Fatalf("streaming request: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() {
		cancel()
		t.Fatalf("streaming request: no first line: %v", sc.Err())
	}
	ended := make(chan time.Time, 1)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	go func() {
		defer close(done)
		for sc.Scan() {
		}
		ended <- time.Now()
	}()
	return ended
}

// checkRevocationEndsLive pairs a victim and a bystander, opens a WebSocket
// for each and a never-ending response for both, revokes the victim with
// revoke (which returns when the revocation was written) and checks that
// the victim's connections end within a second of it and the bystander's
// stay open.
func checkRevocationEndsLive(t *testing.T, revoke func(e *pairEnv, deviceID string) time.Time) {
	e := startLiveGate(t)
	victim, bystander := pairLocalDevice(t, e, "victim"), pairLocalDevice(t, e, "bystander")
	victimWS, victimStream := chatter(t, e, victim.Token), streamAs(t, e, victim.Token)
	bystanderWS, bystanderStream := chatter(t, e, bystander.Token), streamAs(t, e, bystander.Token)

	// Both work for a while before the revocation.
	select {
	case <-victimWS:
		t.Fatal("the victim's WebSocket failed before the revocation")
	case <-victimStream:
		t.Fatal("the victim's stream ended before the revocation")
	case <-time.After(300 * time.Millisecond):
	}

	at := revoke(e, victim.DeviceID)
	for what, ch := range map[string]<-chan time.Time{"WebSocket": victimWS, "streaming response": victimStream} {
		select {
		case end := <-ch:
			d := end.Sub(at)
			t.Logf("the revoked device's %s ended %s after the revocation was written", what, d.Round(time.Millisecond))
			if d > time.Second {
				t.Errorf("the revoked device's %s ended %s after the revocation, want < 1s", what, d)
			}
		case <-time.After(time.Until(at.Add(1500 * time.Millisecond))):
			t.Errorf("the revoked device's %s is still open 1.5 s after the revocation", what)
		}
	}
	select {
	case <-bystanderWS:
		t.Error("the other device's WebSocket was closed by the revocation")
	case <-bystanderStream:
		t.Error("the other device's stream was ended by the revocation")
	case <-time.After(300 * time.Millisecond):
	}
	if st, _ := getAs(t, e, http.DefaultClient, victim.Token, "/"); st != 401 {
		t.Errorf("revoked token on a new request: %d", st)
	}
}

// TestRevocationInThisProcessEndsLiveConnections revokes through the gate's
// own store, as the admin API, the UI and the CLI (through the API) do.
func TestRevocationInThisProcessEndsLiveConnections(t *testing.T) {
	checkRevocationEndsLive(t, func(e *pairEnv, id string) time.Time {
		var store *pairing.Store
		pairingStores.Range(func(key, value any) bool {
			if key == e.dir {
				store = value.(storeHandle).Store
			}
			return store == nil
		})
		if store == nil {
			t.Fatalf("no pooled pairing store for %s", e.dir)
		}
		if _, err := store.Revoke(id, "test:this-process"); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	})
}

// TestRevocationByAnotherProcessEndsLiveConnections revokes in another
// process writing the same state dir's store, which the gate's store sees
// through its file watcher.
func TestRevocationByAnotherProcessEndsLiveConnections(t *testing.T) {
	checkRevocationEndsLive(t, func(e *pairEnv, id string) time.Time {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRevokeProcess$")
		cmd.Env = append(os.Environ(), "PAIRING_HELPER_DIR="+e.dir, "PAIRING_HELPER_DEVICE="+id)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("revoking process: %v\n%s", err, out)
		}
		var wroteAt int64
		i := strings.Index(string(out), "revoked-at ")
		if i < 0 {
			t.Fatalf("revoking process printed no time: %s", out)
		}
		if _, err := fmt.Sscanf(string(out[i:]), "revoked-at %d", &wroteAt); err != nil {
			t.Fatalf("revoking process output %q: %v", out, err)
		}
		return time.Unix(0, wroteAt)
	})
}

// BenchmarkTrackDevice is what tracking adds to a device's request: the
// cancellable context, the request copy, the writer and the registration.
func BenchmarkTrackDevice(b *testing.B) {
	s, err := pairing.Open(b.TempDir(), pairing.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	g := &Gate{pairing: &gatePairing{store: s}}
	v := verdict{outcome: authOK, cred: authn.Credential{Scheme: "bearer", Token: "cgd_" + strings.Repeat("A", 43)}}
	r := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		_, _, done := g.trackDevice(w, r, v)
		done()
	}
}
