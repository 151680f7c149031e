package pairing

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestOnDecisionRunsBeforeTheAnswer: every stored decision reaches the
// OnDecision hook (the gate's audit trail) with who made it, before a
// byte of the answer is written; a refused one never does.
func TestOnDecisionRunsBeforeTheAnswer(t *testing.T) {
	store := openStore(t, t.TempDir(), Options{})
	req := newRequest(t, "c1")
	if _, err := store.submit(req, false, "", testLimits); err != nil {
		t.Fatal(err)
	}
	var got []Decision
	var rec *httptest.ResponseRecorder
	srv := NewServer(store, Config{OnDecision: func(c Caller, d Decision) {
		if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Flushed {
			t.Errorf("OnDecision(%+v) after the answer began: %d %q", d, rec.Code, rec.Body)
		}
		if c.Identity != "user:alice" {
			t.Errorf("OnDecision caller %+v, want user:alice", c)
		}
		got = append(got, d)
	}})
	defer srv.Close()
	csrf, _ := store.csrfToken("user:alice", time.Now())
	post := func(path, token string) int {
		rec = httptest.NewRecorder()
		r := httptest.NewRequest("POST", path, nil)
		r.Header.Set(CSRFHeader, token)
		srv.ServeHTTP(rec, r.WithContext(WithCaller(r.Context(), Caller{Identity: "user:alice"})))
		return rec.Code
	}
	if code := post(apiPrefix+"pairing/"+req.ID+"/approve", "wrong"); code != http.StatusForbidden || len(got) != 0 {
		t.Fatalf("approve without the CSRF token: %d, hook calls %v", code, got)
	}
	if code := post(apiPrefix+"pairing/no-such-request/reject", csrf); code == http.StatusOK || len(got) != 0 {
		t.Fatalf("reject of a missing request: %d, hook calls %v", code, got)
	}
	if code := post(apiPrefix+"pairing/"+req.ID+"/approve", csrf); code != http.StatusOK {
		t.Fatalf("approve: %d %s", code, rec.Body)
	}
	if code := post(apiPrefix+"devices/"+req.DeviceID+"/revoke", csrf); code != http.StatusOK {
		t.Fatalf("revoke: %d %s", code, rec.Body)
	}
	if len(got) != 2 || got[0].Status != StatusApproved || got[0].RequestID != req.ID || got[1].Status != DeviceRevoked || got[1].DeviceID != req.DeviceID {
		t.Fatalf("decisions %+v", got)
	}
}
