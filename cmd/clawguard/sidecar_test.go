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
	out, errOut, code := sidecarCLI("--check", "--json", "--state-dir", dir)
	var cfg sidecar.Config
	if code != 0 || json.Unmarshal([]byte(out), &cfg) != nil || cfg.Version != 1 || cfg.WorkspaceRoot != filepath.Join(dir, "workspaces") {
		t.Fatalf("defaults: code %d %q %q", code, out, errOut)
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
