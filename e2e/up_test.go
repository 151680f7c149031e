package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"
)

func TestUpRunsTheStackOnSafeDefaults(t *testing.T) {
	stateDir := t.TempDir()
	s, token := startStack(t, stateDir)
	if !strings.HasPrefix(token, "cgt_") {
		t.Fatalf("first run printed %q, not the new token", token)
	}

	// Unauthenticated remote-looking request: refused by the gate.
	req, _ := http.NewRequest("GET", s.Base+"/", nil)
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
	c, _, err := websocket.Dial(ctx, strings.Replace(s.Base, "http", "ws", 1)+"/ws", &websocket.DialOptions{
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

	kids, err := s.Children()
	if err != nil || kids["caddy"] == 0 || kids["sidecar"] == 0 {
		t.Fatalf("up's children %v (%v): want caddy and sidecar", kids, err)
	}

	// Ctrl-C stops both processes cleanly.
	if err := s.Stop(20 * time.Second); err != nil {
		t.Fatalf("stopping up: %v", err)
	}
	if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(s.Base, "http://"), time.Second); err == nil {
		conn.Close()
		t.Fatal("the gate still listens after up stopped: Caddy was left running")
	}
	for role, pid := range kids {
		if exec.Command("kill", "-0", strconv.Itoa(pid)).Run() == nil {
			t.Fatalf("%s (pid %d) still runs after up stopped", role, pid)
		}
	}

	// A second run reuses the token and does not show it again.
	s2, line := startStack(t, stateDir)
	if line == token || line != "in" {
		t.Fatalf("second run's token line starts %q, want the vault hint", line)
	}
	s2.Stop(20 * time.Second)
}

func TestUpRefusesNonLoopbackListen(t *testing.T) {
	out, err := exec.Command(clawguardBin, "up", "--listen", "0.0.0.0:18789", "--state-dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "loopback only") {
		t.Fatalf("up --listen 0.0.0.0 was not refused: %v\n%s", err, out)
	}
}

// TestUpRefusesAnAddressInUse: a second gate on a taken address would start
// silently (Caddy binds with SO_REUSEPORT) and split the traffic; `up`
// refuses before starting anything and names the holder.
func TestUpRefusesAnAddressInUse(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
		return serr
	}}
	for _, flag := range []string{"--listen", "--admin-listen", "--sidecar-metrics"} {
		holder, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := holder.Addr().String()
		out, err := exec.Command(clawguardBin, "up", flag, addr, "--state-dir", t.TempDir()).CombinedOutput()
		holder.Close()
		want := fmt.Sprintf("%s %s is already in use by pid %d", flag, addr, os.Getpid())
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("up %s on a taken address: %v\n%s\nwant %q", flag, err, out, want)
		}
	}
}
