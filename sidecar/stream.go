package sidecar

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// Frame is one message of /v1/exec/stream.
//
// Server to client: while the exec waits for a person (the approvals
// engine asks), "approval_pending" (ApprovalID) and, once the ask is
// answered, "approval_decided" (ApprovalID, Decision: allow-once,
// allow-always, deny, timeout, withdrawn or shutdown); then "started" (the
// decision), then any number of "stdout" and "stderr" (Data), then "exit"
// (the result fields) or "error" (Error, Code; also for refusals). Client
// to server, after the request: "cancel" kills the command (or gives up
// waiting for the person); closing the connection does too.
type Frame struct {
	Type            string `json:"type"`
	Data            string `json:"data,omitempty"`
	Decision        string `json:"decision,omitempty"`
	ApprovalID      string `json:"approval_id,omitempty"`
	ExitCode        *int   `json:"exit_code,omitempty"`
	DurationMS      int64  `json:"duration_ms,omitempty"`
	TimedOut        bool   `json:"timed_out,omitempty"`
	Cancelled       bool   `json:"cancelled,omitempty"`
	OOMKilled       bool   `json:"oom_killed,omitempty"`
	StdoutTruncated bool   `json:"stdout_truncated,omitempty"`
	StderrTruncated bool   `json:"stderr_truncated,omitempty"`
	SandboxID       string `json:"sandbox_id,omitempty"`
	Error           string `json:"error,omitempty"`
	Code            string `json:"code,omitempty"`
}

// Stream timing.
const (
	firstMessageTimeout = 10 * time.Second
	frameWriteTimeout   = 10 * time.Second
)

func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	if !s.track() {
		writeError(w, &apiError{status: http.StatusServiceUnavailable, code: "shutting_down", msg: "the sidecar is shutting down"})
		return
	}
	defer s.detached.Done()

	// Accept checks Origin against Host: a page on another origin cannot
	// drive this endpoint through a browser.
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(MaxRequestBytes)
	st := &stream{c: c}

	// A hijacked connection's request context does not end with it; the
	// reader below and Shutdown are what cancel.
	ctx, cancel := context.WithCancel(s.base)
	defer cancel()
	rctx, rcancel := context.WithTimeout(ctx, firstMessageTimeout)
	_, data, err := c.Read(rctx)
	rcancel()
	if err != nil {
		return
	}
	req, err := ParseExecRequest(data)
	if err != nil {
		s.metrics.total.WithLabelValues(TargetSandbox, resultError).Inc()
		st.fail(&apiError{code: "bad_request", msg: err.Error()})
		return
	}
	go func() {
		defer cancel()
		for {
			_, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			var f Frame
			if json.Unmarshal(msg, &f) == nil && f.Type == "cancel" {
				return
			}
		}
	}()

	who, _ := IdentityFrom(r.Context())
	d, aerr := s.decideAsking(ctx, req, who,
		func(id string) { st.send(Frame{Type: "approval_pending", ApprovalID: id}) },
		func(id, outcome string) { st.send(Frame{Type: "approval_decided", ApprovalID: id, Decision: outcome}) })
	if aerr != nil {
		st.fail(aerr)
		return
	}
	if st.send(Frame{Type: "started", Decision: d.Decision, ApprovalID: d.ApprovalID}) != nil {
		return
	}
	stdout, stderr := &frameWriter{st: st, typ: "stdout"}, &frameWriter{st: st, typ: "stderr"}
	res, aerr := s.run(ctx, req, who, d, stdout, stderr)
	stdout.flush()
	stderr.flush()
	if aerr != nil {
		st.fail(aerr)
		return
	}
	code := res.ExitCode
	st.send(Frame{Type: "exit", ExitCode: &code, DurationMS: res.Duration.Milliseconds(), TimedOut: res.TimedOut,
		Cancelled: res.Cancelled, OOMKilled: res.OOMKilled, StdoutTruncated: res.StdoutTruncated,
		StderrTruncated: res.StderrTruncated, SandboxID: res.SandboxID})
	c.Close(websocket.StatusNormalClosure, "")
}

// stream serialises the frames written to one connection.
type stream struct {
	c  *websocket.Conn
	mu sync.Mutex
}

func (st *stream) send(f Frame) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), frameWriteTimeout)
	defer cancel()
	return wsjson.Write(ctx, st.c, f)
}

func (st *stream) fail(e *apiError) {
	f := Frame{Type: "error", Error: e.msg, Code: e.code}
	if e.decision != nil {
		f.Decision, f.ApprovalID = e.decision.Decision, e.decision.ApprovalID
	}
	if st.send(f) == nil {
		st.c.Close(websocket.StatusNormalClosure, "")
	}
}

// frameWriter sends output as frames. JSON strings carry UTF-8, so a
// character split between two reads is held back and sent whole; bytes that
// are not UTF-8 at all arrive as U+FFFD.
type frameWriter struct {
	st      *stream
	typ     string
	pending []byte
}

func (w *frameWriter) Write(p []byte) (int, error) {
	buf := append(w.pending, p...)
	cut := len(buf)
	// Hold back at most 3 trailing bytes of an incomplete character.
	for i := len(buf) - 1; i >= 0 && i >= len(buf)-3; i-- {
		if utf8.RuneStart(buf[i]) {
			if !utf8.FullRune(buf[i:]) {
				cut = i
			}
			break
		}
	}
	w.pending = append([]byte(nil), buf[cut:]...)
	if cut == 0 {
		return len(p), nil
	}
	if err := w.st.send(Frame{Type: w.typ, Data: string(buf[:cut])}); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *frameWriter) flush() {
	if len(w.pending) > 0 {
		w.st.send(Frame{Type: w.typ, Data: string(w.pending)})
		w.pending = nil
	}
}
