package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/pairclient"
	"github.com/clawguard/clawguard/pairing"
)

// TestPairingLoad sends 1,000 pairing requests from 50 concurrent clients
// (each its own address; half of each client's requests local and
// auto-approved, half relayed and queued), then approves every queued one
// and lets each device collect its token. Nothing may fail and every record
// must be there, in the API and after a restart of Caddy.
func TestPairingLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	const clients, perClient = 50, 20
	dir := t.TempDir()
	e := startPairing(t, dir, "")
	type pending struct {
		s  *pairclient.Session
		id string
	}
	var (
		mu      sync.Mutex
		tokens  []string
		waiting []pending
		errs    []error
		wg      sync.WaitGroup
	)
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := fmt.Sprintf("127.0.1.%d", c+1)
			local, relayed := testcaddy.Client(from), remoteClient(from)
			for i := range perClient {
				httpc := local
				if i%2 == 1 {
					httpc = relayed
				}
				key, _ := pairclient.GenerateKey()
				s, _ := pairclient.NewSession(e.base, key, httpc)
				resp, err := s.Request(context.Background(), fmt.Sprintf("load %d-%d", c, i))
				mu.Lock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case resp.Status == pairing.StatusApproved:
					tokens = append(tokens, resp.DeviceToken)
				default:
					waiting = append(waiting, pending{s, resp.RequestID})
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	submitted := time.Since(start)
	if len(errs) > 0 {
		t.Fatalf("%d of %d pairing requests failed; first: %v", len(errs), clients*perClient, errs[0])
	}
	if len(tokens) != clients*perClient/2 || len(waiting) != clients*perClient/2 {
		t.Fatalf("%d auto-approved and %d pending, want %d each", len(tokens), len(waiting), clients*perClient/2)
	}
	var reqs requestList
	adminAPI(t, e, testcaddy.Client(""), "GET", "pairing", nil, &reqs)
	if len(reqs.Requests) != len(waiting) {
		t.Fatalf("%d pending requests listed, want %d", len(reqs.Requests), len(waiting))
	}

	// Approve all (50 at a time), then every device collects its token.
	var s pairing.Session
	adminAPI(t, e, testcaddy.Client(""), "GET", "session", nil, &s)
	approveStart := time.Now()
	sem := make(chan struct{}, clients)
	for _, p := range waiting {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			req, _ := http.NewRequest("POST", e.ui+"/.clawguard/api/pairing/"+p.id+"/approve", nil)
			req.Header.Set(pairing.CSRFHeader, s.CSRFToken)
			resp, err := testcaddy.Client("").Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("approve %s: %d", p.id, resp.StatusCode)
				}
			}
			if err == nil {
				var pr *pairing.PairResponse
				pr, err = p.s.Poll(context.Background(), p.id)
				if err == nil && pr.DeviceToken != "" {
					mu.Lock()
					tokens = append(tokens, pr.DeviceToken)
					mu.Unlock()
				} else if err == nil {
					err = fmt.Errorf("poll %s: %s without a token", p.id, pr.Status)
				}
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	approved := time.Since(approveStart)
	if len(errs) > 0 {
		t.Fatalf("%d approvals or polls failed; first: %v", len(errs), errs[0])
	}
	t.Logf("1000 pairing requests from %d clients: %s; approving and collecting %d tokens: %s", clients, submitted.Round(time.Millisecond), len(waiting), approved.Round(time.Millisecond))

	check := func(when string) {
		t.Helper()
		var list deviceList
		adminAPI(t, e, testcaddy.Client(""), "GET", "devices", nil, &list)
		active := 0
		for _, d := range list.Devices {
			if d.Status == pairing.DeviceActive {
				active++
			}
		}
		if len(list.Devices) != clients*perClient || active != clients*perClient {
			t.Fatalf("%s: %d devices (%d active), want %d", when, len(list.Devices), active, clients*perClient)
		}
		for i, tok := range tokens {
			if st, _ := getAs(t, e, remoteClient(""), tok, "/"); st != 200 {
				t.Fatalf("%s: token %d refused (%d)", when, i, st)
			}
		}
	}
	check("after the load")
	testcaddy.Stop()
	e = startPairing(t, dir, "")
	check("after a restart")
}
