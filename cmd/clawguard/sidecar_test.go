package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clawguard/clawguard/sandbox/sandboxtest"
	"github.com/clawguard/clawguard/sidecar"
)

func sidecarCLI(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = run(context.Background(), &cli{stdin: strings.NewReader(""), stdout: &o, stderr: &e}, append([]string{"sidecar"}, args...))
	return o.String(), e.String(), code
}

func TestSidecarCheck(t *testing.T) {
	dir := t.TempDir()
	// A missing file is said to be missing (exit 1); --json still shows the
	// defaults the sidecar would run on.
	out, errOut, code := sidecarCLI("--check", "--json", "--state-dir", dir)
	var cfg sidecar.Config
	if code != 1 || json.Unmarshal([]byte(out), &cfg) != nil || cfg.Version != 1 || cfg.WorkspaceRoot != filepath.Join(dir, "workspaces") {
		t.Fatalf("defaults: code %d %q %q", code, out, errOut)
	}
	if want := filepath.Join(dir, "sidecar.json") + " is missing"; !strings.Contains(errOut, want) {
		t.Fatalf("missing file: stderr %q lacks %q", errOut, want)
	}
	if out, errOut, code = sidecarCLI("--check", "--state-dir", dir); code != 1 || out != "" || !strings.Contains(errOut, "is missing") {
		t.Fatalf("missing file, text: code %d %q %q", code, out, errOut)
	}
	os.WriteFile(filepath.Join(dir, "sidecar.json"), []byte(`{"max_sandboxes": 4}`), 0o600)
	if out, errOut, code = sidecarCLI("--check", "--state-dir", dir); code != 0 || !strings.Contains(out, "sidecar.json: OK") {
		t.Fatalf("present file: code %d %q %q", code, out, errOut)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"sandboxes": {"coder": {"image": "img", "mounts": [{"source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}]}}}`), 0o600)
	_, errOut, code = sidecarCLI("--check", "--state-dir", dir, "--config", bad)
	if code != 1 || !strings.Contains(errOut, `sandbox profile "coder": mounts[0].source:`) || !strings.Contains(errOut, "docker.sock") {
		t.Fatalf("refused profile: code %d %q", code, errOut)
	}
	if _, errOut, code = sidecarCLI("--log-format", "xml", "--state-dir", dir); code != 2 {
		t.Fatalf("bad log format: %d %q", code, errOut)
	}
	if _, _, code = sidecarCLI("--help"); code != 0 {
		t.Fatalf("--help: %d", code)
	}
}

// sidecarDaemonEnv makes TestSidecarSIGTERM's re-executed test binary act as
// `clawguard sidecar ARGS` exactly as main runs it.
const sidecarDaemonEnv = "CLAWGUARD_TEST_SIDECAR_ARGS"

// TestSidecarSIGTERM runs `clawguard sidecar` as a real process, starts a
// long command through its socket, and sends SIGTERM: the command is
// cancelled, its per-session sandbox removed, the socket gone, exit 0, and
// the logs are JSON.
func TestSidecarSIGTERM(t *testing.T) {
	if env := os.Getenv(sidecarDaemonEnv); env != "" {
		var args []string
		json.Unmarshal([]byte(env), &args)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, &cli{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, args)
		stop()
		os.Exit(code)
	}
	t.Parallel()
	dcli := sandboxtest.Client(t)
	inst := sandboxtest.Instance(t, dcli)
	dir := t.TempDir()
	config := `{"instance": "` + inst + `", "exec_allow": [{"agent": "a", "path": "/bin/sleep"}],
	  "sandboxes": {"*": {"image": "` + sandboxtest.TestImage(t, dcli) + `"}}}`
	os.WriteFile(filepath.Join(dir, "sidecar.json"), []byte(config), 0o600)
	sock := filepath.Join(dir, "api.sock")

	self, _ := os.Executable()
	cmd := exec.Command(self, "-test.run=^TestSidecarSIGTERM$")
	args, _ := json.Marshal([]string{"sidecar", "--state-dir", dir, "--socket", sock})
	cmd.Env = append(os.Environ(), sidecarDaemonEnv+"="+string(args))
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	logs := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get("http://sidecar/healthz")
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sidecar not healthy: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	type answer struct {
		status int
		body   map[string]any
	}
	done := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://sidecar/v1/exec", strings.NewReader(`{"agent":"a","session":"s","argv":["/bin/sleep","60"]}`))
		req.Header.Set("X-Clawguard-Identity", "local")
		resp, err := hc.Do(req)
		if err != nil {
			done <- answer{}
			return
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		done <- answer{resp.StatusCode, body}
	}()
	for deadline := time.Now().Add(30 * time.Second); len(sandboxtest.Containers(t, dcli, inst)) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the command's sandbox never started")
		}
	}
	time.Sleep(500 * time.Millisecond) // the command runs
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sidecar exit after SIGTERM: %v", err)
	}
	a := <-done
	if a.status != 200 || a.body["cancelled"] != true {
		t.Fatalf("running command at SIGTERM: %d %v", a.status, a.body)
	}
	if left := sandboxtest.Containers(t, dcli, inst); len(left) != 0 {
		t.Fatalf("containers left after SIGTERM: %v", left)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left: %v", err)
	}
	var msgs []string
	for l := range logs {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			if strings.HasPrefix(l, "PASS") || strings.HasPrefix(l, "ok") {
				continue
			}
			t.Fatalf("log line is not JSON: %q", l)
		}
		msgs = append(msgs, rec["msg"].(string))
	}
	for _, want := range []string{"sidecar listening", "exec", "sidecar shutting down", "sidecar stopped"} {
		if !slices.Contains(msgs, want) {
			t.Errorf("logs lack %q: %v", want, msgs)
		}
	}
}

// TestSidecarConfigChangeNeedsRestart runs `clawguard sidecar` (the CLI
// entry point, in-process) and edits sidecar.json under it: the change is
// not applied, but a warn log line and GET /healthz say a restart is needed,
// naming the file, until the file holds what it started on again. A sandbox
// command of an agent without a profile is refused with
// no_sandbox_profile, naming the file to edit.
func TestSidecarConfigChangeNeedsRestart(t *testing.T) {
	dcli := sandboxtest.Client(t)
	inst := sandboxtest.Instance(t, dcli)
	dir := t.TempDir()
	file := filepath.Join(dir, "sidecar.json")
	orig := []byte(`{"instance": "` + inst + `"}`)
	os.WriteFile(file, orig, 0o600)
	sock := filepath.Join(dir, "api.sock")
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &cli{stdin: strings.NewReader(""), stdout: &syncBuffer{}, stderr: &stderr},
			[]string{"sidecar", "--state-dir", dir, "--socket", sock, "--audit-interval", "0"})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("sidecar exited %d: %s", code, stderr.String())
			}
		case <-time.After(time.Minute):
			t.Error("sidecar did not stop")
		}
	})
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	health := func() map[string]string {
		resp, err := hc.Get("http://sidecar/healthz")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var body map[string]string
		json.NewDecoder(resp.Body).Decode(&body)
		return body
	}
	waitHealth := func(what string, ok func(map[string]string) bool) map[string]string {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if h := health(); h != nil && ok(h) {
				return h
			}
			if time.Now().After(deadline) {
				t.Fatalf("healthz never %s: %v\n%s", what, health(), stderr.String())
			}
		}
	}
	waitHealth("ok", func(h map[string]string) bool { return h["status"] == "ok" })
	if h := health(); h["restart_needed"] != "" {
		t.Fatalf("restart needed before any change: %v", h)
	}

	// No profile: refused with the README's code, naming the file.
	req, _ := http.NewRequest("POST", "http://sidecar/v1/exec", strings.NewReader(`{"agent":"main","argv":["/bin/ls"]}`))
	req.Header.Set("X-Clawguard-Identity", "local")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var refusal map[string]any
	json.NewDecoder(resp.Body).Decode(&refusal)
	resp.Body.Close()
	if resp.StatusCode != 403 || refusal["code"] != "no_sandbox_profile" || !strings.Contains(refusal["error"].(string), "under \"sandboxes\" in "+file) {
		t.Fatalf("sandbox command without a profile: %d %v", resp.StatusCode, refusal)
	}

	os.WriteFile(file, []byte(`{"instance": "`+inst+`", "max_sandboxes": 3}`), 0o600)
	h := waitHealth("restart_needed", func(h map[string]string) bool { return h["restart_needed"] != "" })
	if !strings.Contains(h["restart_needed"], file) || !strings.Contains(h["restart_needed"], "restart the sidecar") || h["status"] != "ok" {
		t.Fatalf("healthz after an edit: %v", h)
	}
	var warned bool
	for _, l := range strings.Split(stderr.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec["level"] == "WARN" && rec["file"] == file &&
			strings.HasPrefix(rec["msg"].(string), "sidecar restart needed: ") {
			warned = true
		}
	}
	if !warned {
		t.Fatalf("no warn log line naming %s:\n%s", file, stderr.String())
	}

	// An invalid edit is said to be one: a restart would fail.
	os.WriteFile(file, []byte(`{"max_sandboxes": "many"}`), 0o600)
	waitHealth("invalid", func(h map[string]string) bool {
		return strings.Contains(h["restart_needed"], "the new content is invalid")
	})

	// Back to what it started on: no restart needed.
	os.WriteFile(file, orig, 0o600)
	waitHealth("clear", func(h map[string]string) bool { return h["status"] == "ok" && h["restart_needed"] == "" })
}
