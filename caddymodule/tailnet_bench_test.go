package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/clawguard/clawguard/internal/testcaddy"
)

// BenchmarkGateOverTailnet measures what the gate adds to a request that
// arrives over the tailnet, on one keep-alive connection from a tsnet
// client to Caddy's tsnet node (DERP-relayed on 127.0.0.1, as in the
// tests): "reverse_proxy" is a site without the gate, "tailnet_identity"
// lets the peer in by its login (WhoIs cached per connection), "token" by
// a bearer token. Reported: microseconds per request of each.
//
//	go test ./caddymodule -run '^$' -bench GateOverTailnet -benchtime 2000x
func BenchmarkGateOverTailnet(b *testing.B) {
	e := tailnetTest(b)
	alice := e.tn.Client(b, e.ctx, "alice")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Clawguard-Identity"))
	}))
	defer up.Close()
	bare, policy, token := testcaddy.FreePort(b), testcaddy.FreePort(b), testcaddy.FreePort(b)
	site := func(port int, gate string) string {
		return fmt.Sprintf("\nhttp://:%d {\n\tbind tailnet/gate\n%s\treverse_proxy %s\n}\n", port, gate, up.Listener.Addr())
	}
	testcaddy.Load(b, tailnetGlobal(e.node("gate"))+site(bare, "")+
		site(policy, fmt.Sprintf("\tclawguard {\n\t\ttailnet_identity {\n\t\t\tallow_users %s\n\t\t}\n\t\tstate_dir %s\n\t}\n", alice.Login, b.TempDir()))+
		site(token, fmt.Sprintf("\tclawguard {\n\t\ttoken {env.CLAWGUARD_TEST_TAILNET_TOKEN}\n\t\tstate_dir %s\n\t}\n", b.TempDir())))
	ip := alice.WaitPeer(b, e.ctx, "gate")
	tr := &http.Transport{DialContext: alice.Srv.Dial, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	cases := []struct {
		name string
		req  *http.Request
		took time.Duration
	}{
		{name: "reverse_proxy", req: get(ip, bare, "")},
		{name: "tailnet_identity", req: get(ip, policy, "")},
		{name: "token", req: get(ip, token, "Bearer "+tailnetTestToken)},
	}
	// The cases take turns, so a busy machine slows them alike.
	for b.Loop() {
		for i := range cases {
			start := time.Now()
			res, err := hc.Do(cases[i].req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Fatalf("%s: status %d", cases[i].name, res.StatusCode)
			}
			cases[i].took += time.Since(start)
		}
	}
	for _, c := range cases {
		b.ReportMetric(float64(c.took.Microseconds())/float64(b.N), c.name+"-us/req")
	}
}

func get(ip netip.Addr, port int, authorization string) *http.Request {
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s:%d/", ip, port), nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return req
}
