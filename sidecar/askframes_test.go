package sidecar_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/clawguard/clawguard/sidecar"
)

// TestStreamApprovalFrames: over /v1/exec/stream, an exec that waits for a
// person says so with approval_pending (the ask's ID, the one the approvals
// API lists), then approval_decided with the person's answer, then runs
// (started, output, exit) or is refused (error).
func TestStreamApprovalFrames(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, approvalsSandboxConfig, withApprovals(t, `{"version": 1, "defaults": {"mode": "ask", "ask_timeout": "1m"}}`))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hdr := http.Header{}
	for k, v := range agentID {
		hdr.Set(k, v)
	}
	for _, c := range []struct {
		answer string
		want   []string
	}{
		{"allow-once", []string{"approval_pending", "approval_decided", "started", "stdout", "exit"}},
		{"deny", []string{"approval_pending", "approval_decided", "error"}},
	} {
		t.Run(c.answer, func(t *testing.T) {
			ws, _, err := d.dialStream(ctx, hdr)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			wsjson.Write(ctx, ws, map[string]any{"agent": "main", "session": "s1", "argv": []string{"cat", "/etc/hostname"}})
			var first sidecar.Frame
			if err := wsjson.Read(ctx, ws, &first); err != nil || first.Type != "approval_pending" || first.ApprovalID == "" {
				t.Fatalf("first frame %+v %v", first, err)
			}
			if ask := d.pendingAsk(); ask["id"] != first.ApprovalID {
				t.Fatalf("approval_pending names %s, the pending ask is %v", first.ApprovalID, ask)
			}
			if code, body := d.do("POST", "/v1/approvals/"+first.ApprovalID, map[string]any{"decision": c.answer}, admin); code != 200 {
				t.Fatalf("answer: %d %v", code, body)
			}
			fs := append([]sidecar.Frame{first}, frames(t, ctx, ws)...)
			var types []string
			for _, f := range fs {
				types = append(types, f.Type)
			}
			if len(types) != len(c.want) {
				t.Fatalf("frames %+v, want types %v", fs, c.want)
			}
			for i := range types {
				if types[i] != c.want[i] {
					t.Fatalf("frames %+v, want types %v", fs, c.want)
				}
			}
			if dec := fs[1]; dec.ApprovalID != first.ApprovalID || dec.Decision != c.answer {
				t.Fatalf("approval_decided: %+v", dec)
			}
			last := fs[len(fs)-1]
			switch c.answer {
			case "allow-once":
				if fs[2].Decision != "allow-once" || fs[2].ApprovalID != first.ApprovalID || fs[3].Data != "sandbox\n" || *last.ExitCode != 0 {
					t.Fatalf("allowed: %+v", fs)
				}
			case "deny":
				if last.Code != "denied" || last.ApprovalID != first.ApprovalID {
					t.Fatalf("denied: %+v", last)
				}
			}
			ws.Close(websocket.StatusNormalClosure, "")
		})
	}
}
