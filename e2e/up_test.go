package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// upProcess is a running `clawguard up`.
type upProcess struct {
	cmd   *exec.Cmd
	lines chan string
	base  string
	admin string
}

func startUp(t *testing.T, stateDir string, extra ...string) *upProcess {
	t.Helper()
	port, admin := freePort(t), freePort(t)
	args := append([]string{"up", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--admin", fmt.Sprintf("localhost:%d", admin), "--state-dir", stateDir}, extra...)
	cmd := exec.Command(clawguardBin, args...)
	cmd.Env = append(cmd.Environ(), "CLAWGUARD_VAULT_PASSPHRASE=e2e passphrase")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &upProcess{cmd: cmd, lines: make(chan string, 1024),
		base: fmt.Sprintf("http://127.0.0.1:%d", port), admin: fmt.Sprintf("localhost:%d", admin)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return p
}

// waitLine returns the first output line matching re.
func (p *upProcess) waitLine(t *testing.T, re string, timeout time.Duration) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("clawguard up exited before printing %q", re)
			}
			if m := rx.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-deadline:
			t.Fatalf("no line matching %q within %s", re, timeout)
		}
	}
}

func TestUpRunsTheStackOnSafeDefaults(t *testing.T) {
	stateDir := t.TempDir()
	p := startUp(t, stateDir)
	token := p.waitLine(t, `^\[up\] token:\s+(cgt_\S+)\s+<- shown once`, 90*time.Second)[1]
	p.waitLine(t, `^\[up\] Ctrl-C stops everything`, 10*time.Second)

	// Unauthenticated remote-looking request: refused by the gate.
	req, _ := http.NewRequest("GET", p.base+"/", nil)
	req.Header.Set("X-Forwarded-For", "192.0.2.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("no credential: %d", resp.StatusCode)
	}

	// WebSocket round trip to the demo upstream with the printed token.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(p.base, "http", "ws", 1)+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}, "X-Forwarded-For": {"192.0.2.1"}},
	})
	if err != nil {
		t.Fatalf("websocket through the gate: %v", err)
	}
	c.Write(ctx, websocket.MessageText, []byte("hi"))
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "hi" {
		t.Fatalf("echo: %q %v", msg, err)
	}
	c.Close(websocket.StatusNormalClosure, "")

	// Ctrl-C stops both processes cleanly.
	p.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("up exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("up did not stop within 20s of SIGINT")
	}
	for l := range p.lines {
		_ = l // drain
	}
	if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(p.base, "http://"), time.Second); err == nil {
		conn.Close()
		t.Fatal("the gate still listens after up stopped: Caddy was left running")
	}

	// A second run reuses the token and does not show it again.
	p2 := startUp(t, stateDir)
	line := p2.waitLine(t, `^\[up\] token:\s+(.*)$`, 60*time.Second)[1]
	if strings.Contains(line, token) || !strings.Contains(line, "in the vault") {
		t.Fatalf("second run's token line %q", line)
	}
	p2.cmd.Process.Signal(syscall.SIGINT)
	p2.cmd.Wait()
}

func TestUpRefusesNonLoopbackListen(t *testing.T) {
	out, err := exec.Command(clawguardBin, "up", "--listen", "0.0.0.0:18789", "--state-dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "loopback only") {
		t.Fatalf("up --listen 0.0.0.0 was not refused: %v\n%s", err, out)
	}
}
