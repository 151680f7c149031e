package tsnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestLoggerFromSlog(t *testing.T) {
	var buf bytes.Buffer
	log := LoggerFromSlog(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	node := log.With(zap.String("node", "side")).Named("tsnet")
	node.Debug("not shown")
	node.Info("state", zap.String("state", "running"), zap.Int("port", 80))
	node.Warn("problem", zap.Error(errors.New("control down")))
	log.Error("bad", zap.Duration("after", time.Second))
	if log.Core().Enabled(zap.DebugLevel) {
		t.Error("debug enabled on an info handler")
	}
	var lines []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3 (debug filtered):\n%s", len(lines), buf.String())
	}
	want := []map[string]any{
		{"level": "INFO", "msg": "state", "node": "side", "logger": "tsnet", "state": "running", "port": 80.0},
		{"level": "WARN", "msg": "problem", "node": "side", "error": "control down"},
		{"level": "ERROR", "msg": "bad", "after": 1e9}, // slog writes durations in ns
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v (%v)", i, k, lines[i][k], v, lines[i])
			}
		}
	}
}

func TestProblem(t *testing.T) {
	since := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		h    NodeHealth
		want string
	}{
		{NodeHealth{Node: "gate", State: StateRunning, Since: since}, ""},
		{NodeHealth{Node: "gate", State: StateNeedsLogin, Since: since}, "tailnet node gate needs to log in: give it an auth_key, or visit the login URL in Caddy's log, since 2026-11-25T10:00:00Z"},
		{NodeHealth{Node: "gate", State: StateFailed, Since: since, Error: "control down"}, "tailnet node gate has failed and is retrying, since 2026-11-25T10:00:00Z: control down"},
		{NodeHealth{Node: "side", State: StateNeedsMachineAuth, Since: since}, "tailnet node side waits for an admin to approve it in the tailnet's admin console, since 2026-11-25T10:00:00Z"},
	} {
		if got := tt.h.Problem(); got != tt.want {
			t.Errorf("Problem(%s) = %q, want %q", tt.h.State, got, tt.want)
		}
	}
}
