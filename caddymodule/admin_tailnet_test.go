package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/pairclient"
	"github.com/clawguard/clawguard/pairing"
	"github.com/clawguard/clawguard/tsnet/tsnettest"
	"github.com/clawguard/clawguard/wire"
)

// adminAnswer is the admin listener's answer to one request over the tailnet.
type adminAnswer struct {
	status int
	header http.Header
	body   []byte
	code   string // the JSON error code of a refusal
}

// adminOver sends method url from c over the tailnet as a browser on the
// admin origin would: POSTs carry Origin (the page's own) and the CSRF
// token, and Sec-Fetch-Site says same-origin.
func adminOver(t *testing.T, c *tsnettest.Client, method, url, origin, csrf string) adminAnswer {
	t.Helper()
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader("{}")
	}
	req, _ := http.NewRequest(method, url, body)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if method == "POST" {
		req.Header.Set("Origin", origin)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(pairing.CSRFHeader, csrf)
	}
	c.HTTP.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s from %s: %v", method, url, c.Srv.Hostname, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	a := adminAnswer{status: res.StatusCode, header: res.Header, body: b}
	if res.StatusCode != http.StatusOK {
		var e wire.ErrorBody
		json.Unmarshal(b, &e)
		a.code = e.Code
	}
	return a
}

// TestAdminUIOverTailnet is a phone on the tailnet signing in to the admin
// UI: the gate's admin listener on loopback and on its tailnet node
// (admin_listen 127.0.0.1:<port> tailnet/gate:<port>, as the README
// configures it), real tsnet nodes as the phones. A peer whose
// tailnet identity is listed in admins loads the UI and the session
// endpoint as itself and approves a pairing request (its browser sends the
// admin origin, which allowed_origins names); a peer the gateway lets in
// (tailnet_identity) but admins does not name gets 403, as does one that
// neither names.
func TestAdminUIOverTailnet(t *testing.T) {
	e := tailnetTest(t)
	ctx := e.ctx
	alice := e.tn.Client(t, ctx, "alice")     // listed in admins
	bob := e.tn.Client(t, ctx, "bob")         // may use the gateway, not administer it
	mallory := e.tn.Client(t, ctx, "mallory") // neither

	up := upstream(t)
	port, adminPort, localAdmin, state := testcaddy.FreePort(t), testcaddy.FreePort(t), testcaddy.FreePort(t), t.TempDir()
	ip := func() string { return alice.WaitPeer(t, ctx, "gate").String() }
	cfg := func(origins string) string {
		return tailnetGlobal(e.node("gate")) + fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1 tailnet/gate
	clawguard {
		token {env.CLAWGUARD_TEST_TAILNET_TOKEN}
		tailnet_identity {
			allow_users %s %s
		}
		admins tailnet:%s
		admin_listen 127.0.0.1:%d tailnet/gate:%d
%s		state_dir %s
	}
	reverse_proxy %s
}
`, port, alice.Login, bob.Login, alice.Login, localAdmin, adminPort, origins, state, up.Listener.Addr())
	}
	testcaddy.Load(t, cfg(""))
	gateIP := ip()
	admin := fmt.Sprintf("http://%s:%d", gateIP, adminPort)
	origin := admin // the page's origin: the admin listener's address as the phone opened it

	// alice: / redirects to the UI, the UI loads under its CSP, the session
	// names her and hands her a CSRF token.
	if a := adminOver(t, alice, "GET", admin+"/", "", ""); a.status != http.StatusFound || a.header.Get("Location") != uiPath {
		t.Fatalf("alice GET /: %d %q, want 302 to %s", a.status, a.header.Get("Location"), uiPath)
	}
	for _, p := range []string{"", "app.js", "style.css"} {
		a := adminOver(t, alice, "GET", admin+uiPath+p, "", "")
		if a.status != 200 || !strings.Contains(a.header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Fatalf("alice GET %s%s: %d, CSP %q", uiPath, p, a.status, a.header.Get("Content-Security-Policy"))
		}
		if p == "" && !strings.Contains(string(a.body), `<script type="module" src="app.js">`) {
			t.Fatalf("alice GET %s: not the UI: %.200s", uiPath, a.body)
		}
	}
	a := adminOver(t, alice, "GET", admin+"/.clawguard/api/session", "", "")
	var s pairing.Session
	if a.status != 200 || json.Unmarshal(a.body, &s) != nil || s.Identity != "tailnet:"+alice.Login || s.CSRFToken == "" {
		t.Fatalf("alice's session over the tailnet: %d %s", a.status, a.body)
	}

	// The same admin origin on loopback (the CLI's) still knows this machine.
	var local pairing.Session
	if st := adminAPI(t, &pairEnv{ui: fmt.Sprintf("http://127.0.0.1:%d", localAdmin)}, testcaddy.Client(""), "GET", "session", nil, &local); st != 200 || local.Identity != "local" {
		t.Fatalf("loopback admin listener next to the tailnet one: %d %+v", st, local)
	}

	// bob (let in by tailnet_identity, not an admin) and mallory (neither)
	// get 403 for the UI and the session alike.
	for _, c := range []*tsnettest.Client{bob, mallory} {
		for _, p := range []string{uiPath, "/.clawguard/api/session"} {
			if a := adminOver(t, c, "GET", admin+p, "", ""); a.status != http.StatusForbidden || a.code != "forbidden" {
				t.Errorf("%s GET %s: %d %q, want 403 forbidden", c.Srv.Hostname, p, a.status, a.code)
			}
		}
	}
	// The gateway's own site on the tailnet does not serve the UI.
	if a := adminOver(t, alice, "GET", fmt.Sprintf("http://%s:%d%s", gateIP, port, uiPath), "", ""); a.status != http.StatusNotFound {
		t.Errorf("the gateway's site served %s: %d, want 404", uiPath, a.status)
	}

	// A pairing request from bob's device waits for a person; alice
	// approves it from her phone. Her browser sends the page's Origin with
	// the POST, a tailnet address that is not loopback: without
	// allowed_origins naming it the write is cross-site and refused.
	key, err := pairclient.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ps, err := pairclient.NewSession(fmt.Sprintf("http://%s:%d", gateIP, port), key, bob.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := ps.Request(context.Background(), "bob's laptop")
	if err != nil || pr.Status != pairing.StatusPending {
		t.Fatalf("pairing request over the tailnet: %+v %v", pr, err)
	}
	approve := admin + "/.clawguard/api/pairing/" + pr.RequestID + "/approve"
	if a := adminOver(t, alice, "POST", approve, origin, s.CSRFToken); a.status != http.StatusForbidden || a.code != "cross_site" {
		t.Fatalf("approve with the tailnet origin not in allowed_origins: %d %q %s, want 403 cross_site", a.status, a.code, a.body)
	}
	if a := adminOver(t, bob, "POST", approve, origin, s.CSRFToken); a.status != http.StatusForbidden {
		t.Fatalf("bob approving his own request: %d %q, want 403", a.status, a.code)
	}
	testcaddy.Load(t, cfg("\t\tallowed_origins "+origin+"\n"))
	if ip() != gateIP {
		t.Fatal("the gate's tailnet address changed over the reload")
	}
	// The CSRF key lives in the pairing store, which a reload keeps.
	if a := adminOver(t, alice, "POST", approve, origin, s.CSRFToken); a.status != 200 {
		t.Fatalf("alice approving from her phone: %d %q %s", a.status, a.code, a.body)
	}
	if res, err := ps.Poll(context.Background(), pr.RequestID); err != nil || res.DeviceToken == "" {
		t.Fatalf("bob's device after alice's approval: %+v %v", res, err)
	}
	var list deviceList
	if adminAPI(t, &pairEnv{ui: fmt.Sprintf("http://127.0.0.1:%d", localAdmin)}, testcaddy.Client(""), "GET", "devices", nil, &list); len(list.Devices) != 1 || list.Devices[0].ApprovedBy != "tailnet:"+alice.Login {
		t.Fatalf("devices after alice's approval: %+v", list.Devices)
	}
	// Still nobody else: bob with a token of alice's cannot write either.
	if a := adminOver(t, bob, "POST", admin+"/.clawguard/api/pairing/"+pr.RequestID+"/reject", origin, s.CSRFToken); a.status != http.StatusForbidden || a.code != "forbidden" {
		t.Errorf("bob with alice's CSRF token: %d %q, want 403 forbidden", a.status, a.code)
	}
}
