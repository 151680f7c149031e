package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// apiEnv serves a queue's API; requests name their caller in X-Test-Caller
// (no header: refused, as the sidecar refuses non-admins).
func apiEnv(t *testing.T) (*queueEnv, *httptest.Server) {
	t.Helper()
	e := newQueueEnv(t, askConfig, QueueOptions{})
	api := &API{Queue: e.q, Caller: func(r *http.Request) (string, error) {
		if c := r.Header.Get("X-Test-Caller"); c != "" {
			return c, nil
		}
		return "", errors.New("only people who may decide")
	}}
	mux := http.NewServeMux()
	for pattern, h := range api.Routes("/v1/approvals") {
		mux.Handle(pattern, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return e, srv
}

func call(t *testing.T, srv *httptest.Server, method, path, body, caller string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if caller != "" {
		req.Header.Set("X-Test-Caller", caller)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %d, body not JSON: %v", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

func readFeed(t *testing.T, ctx context.Context, c *websocket.Conn) FeedMessage {
	t.Helper()
	var m FeedMessage
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := wsjson.Read(rctx, c, &m); err != nil {
		t.Fatalf("feed: %v", err)
	}
	return m
}

func TestAPIAnswerAndFeed(t *testing.T) {
	e, srv := apiEnv(t)
	ctx := context.Background()
	hdr := http.Header{"X-Test-Caller": {"user:ann"}}
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/approvals/events", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if m := readFeed(t, ctx, c); m.Type != "snapshot" || len(m.Approvals) != 0 {
		t.Fatalf("first message %+v", m)
	}

	ch := e.ask(ctx, e.req("cat", "/etc/hostname"))
	m := readFeed(t, ctx, c)
	if m.Type != "pending" || m.Approval == nil || m.Approval.Command != "cat /etc/hostname" {
		t.Fatalf("pending event %+v", m)
	}
	id := m.Approval.ID
	if code, body := call(t, srv, "GET", "/v1/approvals?state=pending", "", "user:ann"); code != 200 || len(body["approvals"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, body)
	}
	if code, _ := call(t, srv, "GET", "/v1/approvals", "", ""); code != 403 {
		t.Fatalf("list without a caller: %d", code)
	}
	for _, bad := range []string{
		`{"decision":"allow-once","by":"user:mallory"}`, // who decided comes from the identity only
		`{"decision":"approve"}`,
		`{"decision":"allow-once","args":".*"}`,
		`{}`, `{"decision":"deny"} {}`, `not json`,
	} {
		if code, body := call(t, srv, "POST", "/v1/approvals/"+id, bad, "user:ann"); code != 400 || body["code"] != "bad_request" {
			t.Errorf("%s: %d %v", bad, code, body)
		}
	}
	if code, _ := call(t, srv, "POST", "/v1/approvals/"+id, `{"decision":"allow-once"}`, ""); code != 403 {
		t.Fatalf("answer without a caller: %d", code)
	}
	code, body := call(t, srv, "POST", "/v1/approvals/"+id, `{"decision":"allow-once"}`, "user:ann")
	if code != 200 || body["state"] != "allowed" || body["decided_by"] != "user:ann" || body["decision"] != "allow-once" {
		t.Fatalf("allow-once: %d %v", code, body)
	}
	if r := get(t, ch); r.d.Verdict != Allow || r.d.ApprovalID != id {
		t.Fatalf("the exec after allow-once: %+v", r.d)
	}
	if m := readFeed(t, ctx, c); m.Type != "decided" || m.Approval.ID != id || m.Approval.State != StateAllowed {
		t.Fatalf("decided event %+v", m)
	}
	if code, body := call(t, srv, "POST", "/v1/approvals/"+id, `{"decision":"deny"}`, "user:bob"); code != 409 || body["code"] != "decided" {
		t.Fatalf("second answer: %d %v", code, body)
	}
	if code, body := call(t, srv, "GET", "/v1/approvals/"+id, "", "user:ann"); code != 200 || body["state"] != "allowed" {
		t.Fatalf("get decided: %d %v", code, body)
	}
	if code, body := call(t, srv, "GET", "/v1/approvals?state=decided", "", "user:ann"); code != 200 || len(body["approvals"].([]any)) != 1 {
		t.Fatalf("decided list: %d %v", code, body)
	}
	if code, _ := call(t, srv, "GET", "/v1/approvals?state=everything", "", "user:ann"); code != 400 {
		t.Fatalf("bad state: %d", code)
	}
	if code, _ := call(t, srv, "POST", "/v1/approvals/apr_nope", `{"decision":"deny"}`, "user:ann"); code != 404 {
		t.Fatalf("unknown id: %d", code)
	}

	// allow-always for a bare shell is refused and the ask stays pending.
	ch = e.ask(ctx, e.req("bash"))
	m = readFeed(t, ctx, c)
	if m.Approval == nil || m.Approval.AllowAlways != nil || !strings.Contains(m.Approval.AllowAlwaysRefused, "runs whatever it reads") {
		t.Fatalf("pending bash: %+v", m)
	}
	code, body = call(t, srv, "POST", "/v1/approvals/"+m.Approval.ID, `{"decision":"allow-always"}`, "user:ann")
	if code != 422 || body["code"] != "allow_always_refused" || body["approval"].(map[string]any)["state"] != "pending" {
		t.Fatalf("allow-always for bash: %d %v", code, body)
	}
	if code, _ := call(t, srv, "POST", "/v1/approvals/"+m.Approval.ID, `{"decision":"deny"}`, "user:ann"); code != 200 {
		t.Fatalf("deny: %d", code)
	}
	if r := get(t, ch); r.d.Verdict != Deny {
		t.Fatalf("bash after deny: %+v", r.d)
	}

	// Closing the queue ends the feed with "try again later".
	readFeed(t, ctx, c) // decided bash
	e.q.Close()
	_, _, err = c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusTryAgainLater {
		t.Fatalf("feed after Close: %v", err)
	}
}

// TestAPIFeedRefusesOtherOrigins: a page of another origin cannot open the
// feed from a browser.
func TestAPIFeedRefusesOtherOrigins(t *testing.T) {
	_, srv := apiEnv(t)
	hdr := http.Header{"X-Test-Caller": {"local"}, "Origin": {"http://evil.example"}}
	_, resp, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/approvals/events", &websocket.DialOptions{HTTPHeader: hdr})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin feed: %v %v", resp, err)
	}
}

func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{
		`{"decision":"allow-once"}`, `{"decision":"allow-always","args":"^-l$"}`, `{"decision":"deny"}`,
		`{"decision":"deny","args":"x"}`, `{"decision":"allow-once","by":"x"}`, `{}`, `[]`, `null`, `{"decision":1}`,
		`{"decision":"allow-always"}{}`, "{\"decision\":\"allow-always\",\"args\":\"\\u0000\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAnswer(data)
		if err != nil {
			return
		}
		switch a.Choice {
		case AllowOnce, DenyChoice:
			if a.Args != "" {
				t.Fatalf("args accepted with %s", a.Choice)
			}
		case AllowAlways:
		default:
			t.Fatalf("choice %q accepted", a.Choice)
		}
		if a.By != "" {
			t.Fatalf("the body named the decider: %q", a.By)
		}
		b, _ := json.Marshal(map[string]string{"decision": string(a.Choice), "args": a.Args})
		if again, err := ParseAnswer(b); err != nil || again != a {
			t.Fatalf("round trip of %+v: %+v %v", a, again, err)
		}
	})
}
