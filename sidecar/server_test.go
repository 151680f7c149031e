package sidecar_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/moby/moby/client"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/clawguard/clawguard/httpsig"
	"github.com/clawguard/clawguard/sandbox/sandboxtest"
	"github.com/clawguard/clawguard/sidecar"
	"github.com/clawguard/clawguard/vault"
	"github.com/clawguard/clawguard/wire"
)

// daemon is a sidecar started with sidecar.Run on a real socket, a real
// config file and the real Docker Engine.
type daemon struct {
	t      *testing.T
	cli    *client.Client
	inst   string
	state  string
	socket string
	http   *http.Client
	stop   func() error
}

// startDaemon writes config (with "IMAGE" and "INSTANCE" replaced) and runs
// the sidecar until the test ends.
func startDaemon(t *testing.T, config string, mod func(*sidecar.DaemonOptions)) *daemon {
	t.Helper()
	cli := sandboxtest.Client(t)
	d := &daemon{t: t, cli: cli, inst: sandboxtest.Instance(t, cli), state: t.TempDir()}
	config = strings.NewReplacer("IMAGE", sandboxtest.TestImage(t, cli), "INSTANCE", d.inst).Replace(config)
	if err := os.WriteFile(filepath.Join(d.state, wire.FileSidecarConfig), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	// The periodic security audit is off unless a test turns it on: it
	// costs a second of CPU per daemon.
	opts := sidecar.DaemonOptions{StateDir: d.state, Ready: func(s string) { ready <- s }, Secrets: testVault(t, d.state)}
	if mod != nil {
		mod(&opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sidecar.Run(ctx, opts) }()
	select {
	case d.socket = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("sidecar did not start: %v", err)
	}
	stopped := false
	var stopErr error
	d.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			stopErr = <-done
		}
		return stopErr
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("sidecar shutdown: %v", err)
		}
	})
	d.http = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
		},
	}}
	return d
}

// testVault opens the daemon's real vault (passphrase-keyed, cheap scrypt)
// holding the api-token secret that apiConfig's profile injects.
func testVault(t *testing.T, state string) *vault.Vault {
	v, err := vault.OpenWithOptions(vault.Options{StateDir: state, Passphrase: "test passphrase", ScryptN: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Set("api-token", []byte("tok-FROM-VAULT")); err != nil {
		t.Fatal(err)
	}
	return v
}

var local = map[string]string{wire.HeaderIdentity: "local", wire.HeaderMethod: "local"}

// do sends a request with the given headers and decodes a JSON answer.
func (d *daemon) do(method, path string, body any, hdr map[string]string) (int, map[string]any) {
	d.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://sidecar"+path, rd)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			d.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, out
}

func (d *daemon) metrics() map[string]*dto.MetricFamily {
	d.t.Helper()
	resp, err := d.http.Get("http://sidecar/metrics")
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		d.t.Fatalf("metrics do not parse: %v", err)
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(raw)
		if out, err := cmd.CombinedOutput(); err != nil {
			d.t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
	return fams
}

func counter(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

const apiConfig = `{
  "instance": "INSTANCE",
  "exec_allow": [
    {"agent": "main", "path": "/bin/echo"},
    {"agent": "main", "path": "/bin/sh"},
    {"agent": "main", "path": "/bin/sleep"}
  ],
  "sandboxes": {"*": {"image": "IMAGE", "timeout": "30s", "secrets": {"API_TOKEN": "api-token"}}}
}`

// logBuffer collects the daemon's JSON logs.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAPI drives the sidecar over its socket: identity, policy, exec,
// sandboxes, health, metrics.
func TestAPI(t *testing.T) {
	t.Parallel()
	logs := &logBuffer{}
	d := startDaemon(t, apiConfig, func(o *sidecar.DaemonOptions) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	fi, err := os.Stat(d.socket)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %s: %v %v", d.socket, fi.Mode(), err)
	}
	echo := map[string]any{"agent": "main", "session": "s1", "argv": []string{"/bin/echo", "hello", "$HOME"}}

	if code, body := d.do("POST", "/v1/exec", echo, nil); code != 401 || body["code"] != "no_identity" {
		t.Fatalf("no identity: %d %v", code, body)
	}
	req, _ := http.NewRequest("POST", "http://sidecar/v1/exec", strings.NewReader(`{}`))
	req.Header.Add(wire.HeaderIdentity, "local")
	req.Header.Add(wire.HeaderIdentity, "token:admin")
	if resp, err := d.http.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("two identities: %v %v", resp, err)
	}
	if code, body := d.do("POST", "/v1/exec", map[string]any{"agent": "main", "argv": []string{"/bin/rm", "-rf", "/workspace"}}, local); code != 403 ||
		body["code"] != "denied" || body["decision"] != "deny" || !strings.Contains(body["error"].(string), "/bin/rm is not allowed") {
		t.Fatalf("denied: %d %v", code, body)
	}
	if code, body := d.do("POST", "/v1/exec", map[string]any{"agent": "main", "argv": []string{"echo", "relative"}}, local); code != 403 {
		t.Fatalf("relative argv0 matched an absolute rule: %d %v", code, body)
	}
	if code, body := d.do("POST", "/v1/exec", map[string]any{"agent": "other", "argv": []string{"/bin/echo"}}, local); code != 403 {
		t.Fatalf("rule for main allowed another agent: %d %v", code, body)
	}
	if code, body := d.do("POST", "/v1/exec", map[string]any{"agent": "main", "argv": []string{"/bin/echo"}, "target": "host", "elevated": true}, local); code != 403 || body["code"] != "host_exec_disabled" {
		t.Fatalf("host exec: %d %v", code, body)
	}
	if code, body := d.do("POST", "/v1/exec", map[string]any{"agent": "main", "argv": []string{"/bin/echo"}, "shell": true}, local); code != 400 || body["code"] != "bad_request" {
		t.Fatalf("unknown field: %d %v", code, body)
	}
	code, body := d.do("POST", "/v1/exec", echo, local)
	if code != 200 || body["stdout"] != "hello $HOME\n" || body["exit_code"] != 0.0 || body["decision"] != "allow" || body["sandbox_id"] == "" {
		t.Fatalf("exec: %d %v", code, body)
	}
	sandboxID := body["sandbox_id"].(string)
	code, body = d.do("POST", "/v1/exec", map[string]any{"agent": "main", "session": "s1", "argv": []string{"/bin/sh", "-c", "echo oops $API_TOKEN >&2; exit 3"}}, local)
	if code != 200 || body["exit_code"] != 3.0 || body["stderr"] != "oops tok-FROM-VAULT\n" || body["sandbox_id"] != sandboxID {
		t.Fatalf("failing command: %d %v", code, body)
	}
	code, body = d.do("POST", "/v1/exec", map[string]any{"agent": "main", "session": "s1", "argv": []string{"/bin/sleep", "10"}, "timeout_ms": 500}, local)
	if code != 200 || body["timed_out"] != true || body["exit_code"] != 137.0 {
		t.Fatalf("timeout: %d %v", code, body)
	}
	if code, body := d.do("POST", "/v1/exec", map[string]any{"agent": "main", "session": "s1", "argv": []string{"/bin/echo"}, "cwd": "/etc"}, local); code != 400 {
		t.Fatalf("cwd outside workspace: %d %v", code, body)
	}

	code, body = d.do("GET", "/v1/sandboxes", nil, local)
	list, _ := body["sandboxes"].([]any)
	if code != 200 || len(list) != 1 { // the timeout killed the command, not the session's sandbox
		t.Fatalf("sandboxes after timeout: %d %v", code, body)
	}
	if code, body := d.do("POST", "/v1/exec", echo, local); code != 200 || body["sandbox_id"] != sandboxID {
		t.Fatalf("exec after timeout: %d %v", code, body)
	}
	sb := list[0].(map[string]any)
	if sb["session"] != "s1" || sb["scope"] != "session" || sb["profile"] != "*" || sb["id"] != sandboxID {
		t.Fatalf("sandbox: %v", sb)
	}
	if code, _ := d.do("DELETE", "/v1/sandboxes/"+sb["id"].(string), nil, nil); code != 401 {
		t.Fatalf("delete without identity: %d", code)
	}
	if code, _ := d.do("DELETE", "/v1/sandboxes/"+sb["id"].(string), nil, local); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := d.do("DELETE", "/v1/sandboxes/"+sb["id"].(string), nil, local); code != 404 {
		t.Fatalf("delete twice: %d", code)
	}
	if left := sandboxtest.Containers(t, d.cli, d.inst); len(left) != 0 {
		t.Fatalf("deleted sandbox still on the engine: %v", left)
	}
	if code, body := d.do("GET", "/healthz", nil, nil); code != 200 || body["status"] != "ok" {
		t.Fatalf("healthz: %d %v", code, body)
	}

	// Logs name the program, never its arguments or the secrets.
	if l := logs.String(); !strings.Contains(l, `"argv0":"/bin/sh"`) || strings.Contains(l, "tok-FROM-VAULT") ||
		strings.Contains(l, "oops") || strings.Contains(l, "hello") || strings.Contains(l, "-rf") {
		t.Errorf("logs leak arguments or secrets, or lack the exec record:\n%s", l)
	}

	// The counters moved by exactly what this test did.
	fams := d.metrics()
	for _, c := range []struct {
		result string
		want   float64
	}{{"success", 2}, {"failure", 1}, {"timeout", 1}, {"denied", 3}, {"error", 2}, {"cancelled", 0}, {"oom", 0}} {
		if got := counter(fams, "clawguard_exec_total", "target", "sandbox", "result", c.result); got != c.want {
			t.Errorf("exec_total{sandbox,%s} = %v, want %v", c.result, got, c.want)
		}
	}
	if got := counter(fams, "clawguard_exec_total", "target", "host", "result", "denied"); got != 1 {
		t.Errorf("exec_total{host,denied} = %v", got)
	}
	if got := counter(fams, "clawguard_exec_duration_seconds"); got != 4 {
		t.Errorf("exec_duration_seconds count %v, want 4", got)
	}
	if got := counter(fams, "clawguard_sandbox_start_seconds"); got != 1 { // the timeout kept the sandbox
		t.Errorf("sandbox_start_seconds count %v, want 1", got)
	}
	if got := counter(fams, "clawguard_sandbox_agent_failures_total"); got != 0 {
		t.Errorf("sandbox_agent_failures_total %v, want 0", got)
	}
	if got := counter(fams, "clawguard_sandboxes_running"); got != 0 {
		t.Errorf("sandboxes_running %v, want 0", got)
	}
	for name := range fams {
		if strings.HasPrefix(name, "clawguard_") {
			for _, m := range fams[name].Metric {
				for _, l := range m.Label {
					if l.GetName() != "target" && l.GetName() != "result" {
						t.Errorf("%s has label %s", name, l.GetName())
					}
				}
			}
		}
	}
}

// frames reads stream frames until the exit or error frame.
func frames(t *testing.T, ctx context.Context, c *websocket.Conn) []sidecar.Frame {
	t.Helper()
	var out []sidecar.Frame
	for {
		var f sidecar.Frame
		if err := wsjson.Read(ctx, c, &f); err != nil {
			t.Fatalf("read frame after %+v: %v", out, err)
		}
		out = append(out, f)
		if f.Type == "exit" || f.Type == "error" {
			return out
		}
	}
}

func (d *daemon) dialStream(ctx context.Context, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	return websocket.Dial(ctx, "ws://sidecar/v1/exec/stream", &websocket.DialOptions{HTTPClient: d.http, HTTPHeader: hdr})
}

// TestStream runs commands over the WebSocket stream: output frames in
// order, cancel from the client, the connection dropped mid-command,
// refusals, and a foreign Origin.
func TestStream(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, apiConfig, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hdr := http.Header{wire.HeaderIdentity: {"device:abc"}, wire.HeaderMethod: {"device"}}

	c, _, err := d.dialStream(ctx, hdr)
	if err != nil {
		t.Fatal(err)
	}
	wsjson.Write(ctx, c, map[string]any{"agent": "main", "session": "ws", "argv": []string{"/bin/sh", "-c", "echo out; sleep 0.3; echo err >&2; sleep 0.3; printf 'caf\\303'; sleep 0.3; printf '\\251\\n'"}})
	fs := frames(t, ctx, c)
	var got []string
	for _, f := range fs {
		got = append(got, f.Type+":"+f.Data)
	}
	want := []string{"started:", "stdout:out\n", "stderr:err\n", "stdout:caf", "stdout:é\n", "exit:"}
	if strings.Join(got, "|") != strings.Join(want, "|") || fs[0].Decision != "allow" || *fs[len(fs)-1].ExitCode != 0 {
		t.Fatalf("frames %q, want %q (%+v)", got, want, fs)
	}
	c.Close(websocket.StatusNormalClosure, "")

	// Cancel from the client kills the command (not its sandbox).
	c, _, err = d.dialStream(ctx, hdr)
	if err != nil {
		t.Fatal(err)
	}
	wsjson.Write(ctx, c, map[string]any{"agent": "main", "session": "ws", "argv": []string{"/bin/sleep", "60"}})
	var f sidecar.Frame
	if err := wsjson.Read(ctx, c, &f); err != nil || f.Type != "started" {
		t.Fatalf("first frame %+v %v", f, err)
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	wsjson.Write(ctx, c, sidecar.Frame{Type: "cancel"})
	fs = frames(t, ctx, c)
	last := fs[len(fs)-1]
	if last.Type != "exit" || !last.Cancelled || *last.ExitCode != 137 || time.Since(start) > 15*time.Second {
		t.Fatalf("cancel: %+v after %s", fs, time.Since(start))
	}
	c.CloseNow()

	// Dropping the connection kills the command too.
	c, _, err = d.dialStream(ctx, hdr)
	if err != nil {
		t.Fatal(err)
	}
	wsjson.Write(ctx, c, map[string]any{"agent": "main", "session": "ws2", "argv": []string{"/bin/sleep", "60"}})
	wsjson.Read(ctx, c, &f)
	waitFor(t, "the sandbox to start", func() bool { return len(sandboxtest.Containers(t, d.cli, d.inst)) > 0 })
	c.CloseNow()
	waitFor(t, "the command to be killed after the client disconnected", func() bool {
		_, body := d.do("GET", "/v1/sandboxes", nil, map[string]string{wire.HeaderIdentity: "local"})
		list, _ := body["sandboxes"].([]any)
		for _, sb := range list {
			if sb := sb.(map[string]any); sb["session"] == "ws2" && sb["running_commands"] == 0.0 {
				return true
			}
		}
		return false
	})

	// Refusals arrive as error frames.
	c, _, err = d.dialStream(ctx, hdr)
	if err != nil {
		t.Fatal(err)
	}
	wsjson.Write(ctx, c, map[string]any{"agent": "main", "argv": []string{"/bin/cat", "/etc/shadow"}})
	fs = frames(t, ctx, c)
	if len(fs) != 1 || fs[0].Type != "error" || fs[0].Code != "denied" || fs[0].Decision != "deny" {
		t.Fatalf("denied over stream: %+v", fs)
	}
	c.CloseNow()

	// No identity, or a page from another origin: no stream.
	if _, resp, err := d.dialStream(ctx, nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("stream without identity: %v %v", resp, err)
	}
	evil := hdr.Clone()
	evil.Set("Origin", "http://evil.example")
	if _, resp, err := d.dialStream(ctx, evil); err == nil || resp.StatusCode != 403 {
		t.Fatalf("cross-origin stream: %v %v", resp, err)
	}
}

// TestPeerRefused: a connection from a UID not in allowed_uids is refused
// before anything else, identity headers or not.
func TestPeerRefused(t *testing.T) {
	t.Parallel()
	other := uint32(os.Getuid() + 4242)
	d := startDaemon(t, fmt.Sprintf(`{"instance": "INSTANCE", "allowed_uids": [%d]}`, other), nil)
	for _, path := range []string{"/v1/sandboxes", "/healthz", "/metrics", "/nope"} {
		if code, body := d.do("GET", path, nil, local); code != 403 || body["code"] != "peer_refused" {
			t.Errorf("%s from a refused peer: %d %v", path, code, body)
		}
	}
	if os.Getuid() != 0 {
		return
	}
	// As root, also try from another user's process, with the socket in a
	// directory everyone can reach (like --socket /run/clawguard/...): the
	// 0600 socket stops it, and with the mode loosened SO_PEERCRED does.
	pub, err := os.MkdirTemp("", "cg-sock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pub) })
	os.Chmod(pub, 0o755)
	d2 := startDaemon(t, `{"instance": "INSTANCE"}`, func(o *sidecar.DaemonOptions) { o.SocketPath = filepath.Join(pub, "s.sock") })
	self, _ := os.Executable()
	helper := filepath.Join(pub, "helper")
	if b, err := os.ReadFile(self); err != nil || os.WriteFile(helper, b, 0o755) != nil {
		t.Fatal(err)
	}
	asNobody := func() string {
		cmd := exec.Command(helper)
		cmd.Env = []string{helperEnv + "=" + d2.socket}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	if out := asNobody(); !strings.Contains(out, "permission denied") {
		t.Fatalf("uid 65534 through the 0600 socket: %q", out)
	}
	os.Chmod(d2.socket, 0o666)
	if out := asNobody(); !strings.Contains(out, "403") || !strings.Contains(out, "peer_refused") {
		t.Fatalf("uid 65534 through a 0666 socket: %q", out)
	}
}

// helperEnv makes the test binary a client that GETs /healthz over the
// socket it names and prints what happened (see TestPeerRefused).
const helperEnv = "CLAWGUARD_TEST_SOCKET_CLIENT"

func TestMain(m *testing.M) {
	if sock := os.Getenv(helperEnv); sock != "" {
		c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
		req, _ := http.NewRequest("GET", "http://sidecar/healthz", nil)
		req.Header.Set(wire.HeaderIdentity, "local")
		resp, err := c.Do(req)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		body, _ := io.ReadAll(resp.Body)
		fmt.Println(resp.StatusCode, string(body))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSignedIdentity: with identity_keys, only requests whose identity
// headers carry the gate's valid RFC 9421 signature get through.
func TestSignedIdentity(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef-gate-key")
	d := startDaemon(t, `{"instance": "INSTANCE", "identity_keys": {"gate1": "sidecar-identity"}}`, func(o *sidecar.DaemonOptions) {
		if err := o.Secrets.(*vault.Vault).Set("sidecar-identity", key); err != nil {
			t.Fatal(err)
		}
	})
	send := func(sign func(*http.Request)) int {
		req, _ := http.NewRequest("GET", "http://sidecar/v1/sandboxes", nil)
		req.Header.Set(wire.HeaderIdentity, "token:ci")
		req.Header.Set(wire.HeaderMethod, "token")
		if sign != nil {
			sign(req)
		}
		resp, err := d.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	signWith := func(k []byte) func(*http.Request) {
		return func(r *http.Request) {
			if err := httpsig.SignIdentity(r, "gate1", k); err != nil {
				t.Fatal(err)
			}
		}
	}
	if code := send(nil); code != 401 {
		t.Fatalf("unsigned: %d", code)
	}
	if code := send(signWith(key)); code != 200 {
		t.Fatalf("signed: %d", code)
	}
	if code := send(signWith([]byte("another-key-another-key-another-key!"))); code != 401 {
		t.Fatalf("wrong key: %d", code)
	}
	var replay *http.Request
	if code := send(func(r *http.Request) { signWith(key)(r); replay = r.Clone(context.Background()) }); code != 200 {
		t.Fatalf("signed: %d", code)
	}
	if resp, err := d.http.Do(replay); err != nil || resp.StatusCode != 401 {
		t.Fatalf("replayed signature accepted: %v %v", resp, err)
	}
	if code := send(func(r *http.Request) { signWith(key)(r); r.Header.Set(wire.HeaderIdentity, "local") }); code != 401 {
		t.Fatalf("identity changed after signing: %d", code)
	}
}

// TestShutdown: ending the daemon cancels a running command, removes the
// per-session sandbox and the socket.
func TestShutdown(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, apiConfig, nil)
	type result struct {
		code int
		body map[string]any
	}
	done := make(chan result, 1)
	go func() {
		code, body := d.do("POST", "/v1/exec", map[string]any{"agent": "main", "session": "s", "argv": []string{"/bin/sleep", "60"}}, local)
		done <- result{code, body}
	}()
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, body := d.do("GET", "/v1/sandboxes", nil, local)
		if l, _ := body["sandboxes"].([]any); len(l) == 1 && l[0].(map[string]any)["running_commands"] == 1.0 {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("command ended before shutdown: %d %v", r.code, r.body)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("command never started")
		}
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.code != 200 || r.body["cancelled"] != true || time.Since(start) > 30*time.Second {
		t.Fatalf("running command at shutdown: %d %v after %s", r.code, r.body, time.Since(start))
	}
	if left := sandboxtest.Containers(t, d.cli, d.inst); len(left) != 0 {
		t.Fatalf("containers left after shutdown: %v", left)
	}
	if _, err := os.Stat(d.socket); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
