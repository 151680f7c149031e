package pairclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/clawguard/clawguard/pairing"
)

// gate is the pairing server without Caddy: every caller is remote, so
// requests wait for Approve/Reject on the store.
func gate(t *testing.T) (*httptest.Server, *pairing.Store) {
	t.Helper()
	st, err := pairing.Open(t.TempDir(), pairing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := pairing.NewServer(st, pairing.Config{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(w, r.WithContext(pairing.WithCaller(r.Context(), pairing.Caller{Client: "c", IP: "192.0.2.1"})))
	}))
	t.Cleanup(ts.Close)
	return ts, st
}

// decideWhenPending approves or rejects the first pending request.
func decideWhenPending(t *testing.T, st *pairing.Store, approve bool) {
	go func() {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if reqs := st.Requests(pairing.StatusPending, time.Now()); len(reqs) == 1 {
				if approve {
					st.Approve(reqs[0].ID, "test", time.Minute)
				} else {
					st.Reject(reqs[0].ID, "test")
				}
				return
			}
		}
	}()
}

func TestPairWaitsForApproval(t *testing.T) {
	ts, st := gate(t)
	key, _ := GenerateKey()
	var notified string
	decideWhenPending(t, st, true)
	res, err := Pair(context.Background(), Options{Gateway: ts.URL, Name: "bot", Key: key, PollInterval: 20 * time.Millisecond,
		OnPending: func(id string, exp time.Time) { notified = id }})
	if err != nil {
		t.Fatal(err)
	}
	if res.DeviceID != DeviceID(key) || res.RequestID == "" || notified != res.RequestID {
		t.Fatalf("result %+v, notified %q", res, notified)
	}
	if _, ok := st.Authenticate(res.Token); !ok {
		t.Fatal("the token Pair returned does not authenticate")
	}
}

func TestPairRejected(t *testing.T) {
	ts, st := gate(t)
	key, _ := GenerateKey()
	decideWhenPending(t, st, false)
	if _, err := Pair(context.Background(), Options{Gateway: ts.URL, Name: "bot", Key: key, PollInterval: 20 * time.Millisecond}); !errors.Is(err, ErrRejected) {
		t.Fatalf("rejected pairing: %v", err)
	}
}

func TestPairGivesUpWithContext(t *testing.T) {
	ts, _ := gate(t)
	key, _ := GenerateKey()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Pair(ctx, Options{Gateway: ts.URL, Name: "bot", Key: key, PollInterval: 20 * time.Millisecond}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered pairing: %v", err)
	}
}

func TestSessionRefusesBadInput(t *testing.T) {
	key, _ := GenerateKey()
	if _, err := NewSession("ftp://x", key, nil); err == nil {
		t.Fatal("ftp gateway accepted")
	}
	if _, err := NewSession("http://x", key[:10], nil); err == nil {
		t.Fatal("short key accepted")
	}
	ts, _ := gate(t)
	s, _ := NewSession(ts.URL, key, nil)
	if _, err := s.Request(context.Background(), "bad\nname"); err == nil {
		t.Fatal("control character in the name accepted")
	}
	// The gate's refusals come back as *APIError with the code.
	if _, err := s.Poll(context.Background(), "pr_AAAAAAAAAAAAAAAAAAAAAA"); CodeOf(err) != pairing.CodeUnknownRequest {
		t.Fatalf("poll of an unknown request: %v", err)
	}
}
