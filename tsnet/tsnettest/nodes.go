package tsnettest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clawguard/clawguard/tsnet"
)

// WaitNode waits until this process's node called name is running with a
// DERP home, and returns its IPv4 tailnet address.
func WaitNode(t testing.TB, ctx context.Context, name string) netip.Addr {
	t.Helper()
	for {
		h, ok := tsnet.NodeStatus(name)
		if ok && h.Up() && len(h.TailnetIPs) > 0 {
			WaitHomeDERP(t, ctx, tsnet.Server(name))
			for _, ip := range h.TailnetIPs {
				if ip.Is4() {
					return ip
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node %s not up: %+v (%v)", name, h, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// CheckNoNodes fails the test if one of this process's nodes outlives it;
// registered right after tstest.ResourceCheck, it runs after every other
// cleanup.
func CheckNoNodes(t *testing.T) {
	t.Cleanup(func() {
		if h := tsnet.Health(); len(h) != 0 {
			t.Errorf("nodes left running after the test: %+v", h)
		}
	})
}

// Answer is what an Identify handler says about its caller.
type Answer struct {
	Tag         string     `json:"tag"`
	OverTailnet bool       `json:"over_tailnet"`
	Peer        tsnet.Peer `json:"peer"`
	Error       string     `json:"error,omitempty"`
}

// Identify answers r with what tsnet.Identify says about its caller, as
// the gate and the sidecar see it; tag tells servers apart.
func Identify(w http.ResponseWriter, r *http.Request, tag string) error {
	p, ok, err := tsnet.Identify(r)
	a := Answer{Tag: tag, OverTailnet: ok, Peer: p}
	if err != nil {
		a.Error = err.Error()
	}
	if ok != tsnet.OverTailnet(r) {
		a.Error += "; tsnet.OverTailnet disagrees with Identify"
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(a)
}

// DecodeAnswer reads an Identify answer from res and closes its body.
func DecodeAnswer(t testing.TB, res *http.Response) Answer {
	t.Helper()
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var a Answer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	return a
}

// Get fetches url over the tailnet through c and reports whether a
// connection to the server was made. On a loaded machine a TCP handshake
// over this offline tailnet now and then gets no answer for seconds (seen
// with the server idle in Accept, with or without Caddy reloads: the
// packets are lost between the two tsnet nodes), so tests tell such a dial
// apart from a request the server received.
func (c *Client) Get(url string) (res *http.Response, connected bool, err error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, false, err
	}
	var got atomic.Bool
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { got.Store(true) }}
	res, err = c.HTTP.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	return res, got.Load(), err
}

// Ask fetches url over the tailnet through c and decodes the Identify
// answer. A dial that never connected is tried again (see Get), up to
// three times; any other failure fails t.
func (c *Client) Ask(t testing.TB, url string) Answer {
	t.Helper()
	for try := 1; ; try++ {
		res, connected, err := c.Get(url)
		switch {
		case err == nil:
			return DecodeAnswer(t, res)
		case connected || try == 3:
			t.Fatalf("GET %s over the tailnet (try %d): %v", url, try, err)
		}
		t.Logf("GET %s over the tailnet: no connection (%v); trying again", url, err)
	}
}
