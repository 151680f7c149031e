package caddymodule

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/pairing"
	"github.com/clawguard/clawguard/wire"
)

// TestAdminUIBehindProxy is the admin UI behind a reverse proxy on the
// gateway host that signs people in and names the user in a header (the
// README's "The UI from a phone", proxy case): the gate trusts that header
// from loopback (trusted_proxy … allow_loopback), admins names the user,
// allowed_origins the proxy's public origin. The named admin loads the UI
// and the session as proxy:<user> and approves a pairing request with the
// page's origin; another user the proxy signs in gets 403; a page of
// another origin is refused as cross-site.
func TestAdminUIBehindProxy(t *testing.T) {
	const public = "https://admin.example.com" // the proxy's origin, as the phone opens it
	e := startPairing(t, t.TempDir(), `trusted_proxy 127.0.0.1/32 {
			user_header X-Remote-User
			allow_loopback
		}
		admins proxy:alice
		allowed_origins `+public)
	target, _ := url.Parse(e.ui)
	// The proxy: whoever it signed in (here: the Basic user, taken as
	// checked) goes to the gate in X-Remote-User; a header the client sent
	// under that name never passes.
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.SetXForwarded()
		pr.Out.Header.Del("X-Remote-User")
		pr.Out.Header.Del("Authorization")
		if user, _, ok := pr.In.BasicAuth(); ok {
			pr.Out.Header.Set("X-Remote-User", user)
		}
	}})
	t.Cleanup(proxy.Close)

	send := func(user, method, path, origin, csrf string) (int, http.Header, []byte, string) {
		t.Helper()
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader("{}")
		}
		req, _ := http.NewRequest(method, proxy.URL+path, body)
		req.SetBasicAuth(user, "checked by the proxy")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		if method == "POST" {
			req.Header.Set("Origin", origin)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(pairing.CSRFHeader, csrf)
		}
		res, err := testcaddy.Client("").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var eb wire.ErrorBody
		json.Unmarshal(b, &eb)
		return res.StatusCode, res.Header, b, eb.Code
	}

	if st, h, _, _ := send("alice", "GET", uiPath, "", ""); st != 200 || !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("alice through the proxy, the UI: %d %v", st, h)
	}
	st, _, b, _ := send("alice", "GET", "/.clawguard/api/session", "", "")
	var s pairing.Session
	if st != 200 || json.Unmarshal(b, &s) != nil || s.Identity != "proxy:alice" || s.CSRFToken == "" {
		t.Fatalf("alice's session through the proxy: %d %s", st, b)
	}
	for _, p := range []string{uiPath, "/.clawguard/api/session"} {
		if st, _, _, code := send("bob", "GET", p, "", ""); st != 403 || code != "forbidden" {
			t.Errorf("bob through the proxy, %s: %d %q, want 403 forbidden", p, st, code)
		}
	}

	_, id := pendingRequest(t, e, newKey(t), "bob's laptop")
	approve := "/.clawguard/api/pairing/" + id + "/approve"
	if st, _, _, code := send("alice", "POST", approve, "https://evil.example", s.CSRFToken); st != 403 || code != "cross_site" {
		t.Fatalf("approve from a page of another origin: %d %q, want 403 cross_site", st, code)
	}
	if st, _, b, _ := send("alice", "POST", approve, public, s.CSRFToken); st != 200 {
		t.Fatalf("alice approving through the proxy: %d %s", st, b)
	}
	var list deviceList
	if adminAPI(t, e, testcaddy.Client(""), "GET", "devices", nil, &list); len(list.Devices) != 1 || list.Devices[0].ApprovedBy != "proxy:alice" {
		t.Fatalf("devices after alice's approval: %+v", list.Devices)
	}
}
