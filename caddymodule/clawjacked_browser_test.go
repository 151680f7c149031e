package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/pairclient"
	"github.com/clawguard/clawguard/pairing"
	"github.com/clawguard/clawguard/wire"
)

// hostilePage is what an agent could write and the upstream serve through
// the gate (an HTML artifact, a canvas page): it runs on the gateway's
// origin with local trust and tries every admin call, on its own origin and
// on the admin listener's, then puts what it got in window.results.
const hostilePage = `<!doctype html><html><head><title>artifact</title></head><body><script>
const ui = %q, ask = %q, req = %q, dev = %q, csrfHeader = %q;
const out = [];
async function attempt(url, opts) {
  opts = opts || {};
  const r = {url, method: opts.method || "GET", mode: opts.mode || "cors"};
  try {
    const resp = await fetch(url, Object.assign({credentials: "include"}, opts));
    r.status = resp.status;
    try { r.body = (await resp.text()).slice(0, 200); } catch (e) {}
  } catch (e) { r.error = String(e); }
  out.push(r);
  return r;
}
(async () => {
  for (const base of ["", ui]) {
    for (const p of ["session", "devices", "pairing", "approvals", "approvals/status"]) {
      await attempt(base + "/.clawguard/api/" + p);
    }
    let csrf = "";
    try { csrf = JSON.parse((await attempt(base + "/.clawguard/api/session")).body || "{}").csrf_token || ""; } catch (e) {}
    const writes = [["approvals/" + ask, '{"decision":"allow-always"}'], ["pairing/" + req + "/approve", ""], ["devices/" + dev + "/revoke", ""]];
    for (const [p, body] of writes) {
      await attempt(base + "/.clawguard/api/" + p, {method: "POST", headers: {"Content-Type": "application/json", [csrfHeader]: csrf}, body});
      // A form-like write needs no preflight; its answer is opaque.
      await attempt(base + "/.clawguard/api/" + p, {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body});
    }
  }
  // WebSockets are not covered by CORS: the admin feed across origins.
  await new Promise(done => {
    const ws = new WebSocket(ui.replace("http:", "ws:") + "/.clawguard/api/events");
    ws.onopen = () => { out.push({url: "ws " + ws.url, opened: true}); ws.close(); done(); };
    ws.onerror = () => { out.push({url: "ws " + ws.url, opened: false}); done(); };
  });
  window.results = JSON.stringify(out);
  document.title = "done";
})();
</script></body></html>`

// TestUpstreamPageCannotAdminister is ClawJacked through the gate: headless
// Chromium on the gateway host opens a page the upstream serves through the
// gate, and that page tries every admin call. An agent's pending ask stays
// pending, so does a pending pairing request, and a paired device stays
// paired.
func TestUpstreamPageCannotAdminister(t *testing.T) {
	ctx, console := browser(t)
	dir := t.TempDir()
	startSidecar(t, dir)

	var page string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	}))
	t.Cleanup(up.Close)
	port, ui := testcaddy.FreePort(t), testcaddy.FreePort(t)
	cfg := testcaddy.Global(testcaddy.FreePort(t)) + fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	clawguard {
		token %s
		state_dir %s
		admin_listen 127.0.0.1:%d
	}
	handle /v1/* {
		reverse_proxy unix/%s
	}
	handle {
		reverse_proxy %s
	}
}
`, port, testToken, dir, ui, filepath.Join(dir, wire.FileSidecarSocket), strings.TrimPrefix(up.URL, "http://"))
	testcaddy.Load(t, cfg)
	e := &pairEnv{base: fmt.Sprintf("http://127.0.0.1:%d", port), ui: fmt.Sprintf("http://127.0.0.1:%d", ui), dir: dir}

	dev, err := pairclient.Pair(context.Background(), pairclient.Options{Gateway: e.base, Name: "laptop", Key: newKey(t), HTTPClient: testcaddy.Client("")})
	if err != nil {
		t.Fatal(err)
	}
	_, reqID := pendingRequest(t, e, newKey(t), "someone's phone")
	ch := agentExec(e, "cat", "/etc/hostname")
	ask := pendingViaGate(t, e)
	page = fmt.Sprintf(hostilePage, e.ui, ask.ID, reqID, dev.DeviceID, pairing.CSRFHeader)

	err = chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/artifact.html"),
		chromedp.Poll[chromedp.Void](`document.title === "done"`),
	)
	results, rerr := chromedp.Run(ctx, chromedp.Evaluate[string](`window.results`))
	if err != nil || rerr != nil {
		t.Fatalf("the hostile page did not run: %v %v\nconsole:\n%s", err, rerr, console)
	}
	var tries []struct {
		URL, Method, Mode, Body, Error string
		Status                         int
		Opened                         bool
	}
	if err := json.Unmarshal([]byte(results), &tries); err != nil || len(tries) != 25 {
		t.Fatalf("page results (%d tries): %v\n%s", len(tries), err, results)
	}
	for _, r := range tries {
		if r.Status/100 == 2 || r.Opened {
			t.Errorf("the page got through: %+v", r)
		}
		if strings.HasPrefix(r.URL, "/") && r.Status != 404 {
			t.Errorf("same-origin admin call %s %s: %d, want 404", r.Method, r.URL, r.Status)
		}
	}

	// Nothing the page tried took effect.
	var pending struct{ Approvals []approvals.Approval }
	if adminAPI(t, e, testcaddy.Client(""), "GET", "approvals?state=pending", nil, &pending); len(pending.Approvals) != 1 || pending.Approvals[0].ID != ask.ID {
		t.Fatalf("the agent's ask is no longer pending: %+v", pending)
	}
	var reqs requestList
	if adminAPI(t, e, testcaddy.Client(""), "GET", "pairing", nil, &reqs); len(reqs.Requests) != 1 || reqs.Requests[0].ID != reqID || reqs.Requests[0].Status != pairing.StatusPending {
		t.Fatalf("the pairing request is no longer pending: %+v", reqs)
	}
	if st, _ := getAs(t, e, remoteClient(""), dev.Token, "/"); st != 200 {
		t.Fatalf("the paired device was revoked: %d", st)
	}
	// A person answers on the admin listener; the agent's command ends.
	if st := adminAPI(t, e, testcaddy.Client(""), "POST", "approvals/"+ask.ID, map[string]string{"decision": "deny"}, nil); st != 200 {
		t.Fatalf("deny on the admin listener: %d", st)
	}
	if r := awaitExec(t, ch); r.status != 403 {
		t.Fatalf("denied exec: %d %v", r.status, r.body)
	}
}
