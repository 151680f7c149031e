package caddymodule

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/pairclient"
	"github.com/clawguard/clawguard/pairing"
)

// browser starts headless Chromium (Debian's chromium). Without it the test
// is skipped, except in CI (CI=true), which installs it: there it fails.
func browser(t *testing.T) (context.Context, *consoleLog) {
	t.Helper()
	path := ""
	for _, p := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(p); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed; CI must install it (apt-get install chromium)")
		}
		t.Skip("chromium is not installed")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("no-proxy-server", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	log := &consoleLog{}
	// Console starts the browser and subscribes before any page loads, so
	// no message (a CSP violation is an error there) is missed.
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				log.add(string(m.Type) + ": " + m.Text + " (" + m.URL + ")")
			}
		}
	}()
	return ctx, log
}

type consoleLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *consoleLog) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

func (l *consoleLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func TestPairingUIInChromium(t *testing.T) {
	ctx, console := browser(t)
	e := startPairing(t, t.TempDir(), "")
	key := newKey(t)
	s, id := pendingRequest(t, e, key, "browser phone")
	dev := pairclient.DeviceID(key)
	row := func(attr, v, extra string) chromedp.CSS {
		return chromedp.CSS(fmt.Sprintf(`tr[data-%s="%s"]%s`, attr, v, extra))
	}

	err := chromedp.Do(ctx,
		chromedp.Navigate(e.ui+"/.clawguard/ui/"),
		chromedp.WaitVisible(row("request", id, ` button[data-action="approve"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#live.ok`)), // the live feed is connected
		chromedp.Click(row("request", id, ` button[data-action="approve"]`)),
		chromedp.WaitVisible(row("device", dev, `[data-status="awaiting_token"]`)),
		chromedp.WaitNotPresent(row("request", id, "")),
	)
	if err != nil {
		t.Fatalf("approving in the UI: %v\nconsole:\n%s", err, console)
	}
	identity, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#identity")))
	if err != nil || identity != "signed in as local" {
		t.Fatalf("identity shown: %q", identity)
	}

	// Live updates, no reload: the device collects its token, a new request
	// arrives.
	if resp, err := s.Poll(context.Background(), id); err != nil || resp.DeviceToken == "" {
		t.Fatalf("poll after UI approval: %+v %v", resp, err)
	}
	_, id2 := pendingRequest(t, e, newKey(t), "second device")
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(row("device", dev, `[data-status="active"]`)),
		chromedp.WaitVisible(row("request", id2, "")),
		// Reject the second one, rename and revoke the first.
		chromedp.Click(row("request", id2, ` button[data-action="reject"]`)),
		chromedp.WaitNotPresent(row("request", id2, "")),
		chromedp.SetValue(row("device", dev, ` form.rename input`), "renamed in UI"),
		chromedp.Click(row("device", dev, ` button[data-action="rename"]`)),
		chromedp.WaitVisible(row("device", dev, ` input[value="renamed in UI"]`)),
		chromedp.Click(row("device", dev, ` button[data-action="revoke"]`)),
		chromedp.WaitVisible(row("device", dev, ` button.armed`)),
		chromedp.Click(row("device", dev, ` button[data-action="revoke"]`)),
		chromedp.WaitVisible(row("device", dev, `[data-status="revoked"]`)),
	)
	if err != nil {
		t.Fatalf("live updates and actions in the UI: %v\nconsole:\n%s", err, console)
	}
	var list deviceList
	adminAPI(t, e, testcaddy.Client(""), "GET", "devices", nil, &list)
	if len(list.Devices) != 1 || list.Devices[0].Name != "renamed in UI" || list.Devices[0].Status != pairing.DeviceRevoked {
		t.Fatalf("state after the UI actions: %+v", list.Devices)
	}
	if c := console.String(); c != "" {
		t.Fatalf("errors in the page (CSP violations show here):\n%s", c)
	}
}

// attackerSite serves, on a different site (localhost vs 127.0.0.1), a page
// that tries to approve a pairing request on the gate from the victim's
// browser: a self-submitting form and a no-cors fetch.
func attackerSite(t *testing.T, target string) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><html><body>
<form id="f" method="POST" action="%[1]s" enctype="text/plain"><input name='{"a":"' value='"}'></form>
<script>
fetch(%[1]q, {method: "POST", mode: "no-cors", credentials: "include", body: "{}"}).finally(() => document.getElementById("f").submit());
</script></body></html>`, target)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return fmt.Sprintf("http://localhost:%d/", l.Addr().(*net.TCPAddr).Port)
}

func TestPairingUIRefusesCrossSitePost(t *testing.T) {
	ctx, _ := browser(t)
	for _, cfg := range []struct{ name, opts string }{
		{"default", ""},
		// Even when the attacker's origin is trusted as this host for local
		// trust, the admin API refuses the cross-site write.
		{"origin allowed for local trust", "allowed_origins ATTACKER"},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			e := startPairing(t, t.TempDir(), "")
			_, id := pendingRequest(t, e, newKey(t), "target")
			target := e.ui + "/.clawguard/api/pairing/" + id + "/approve"
			page := attackerSite(t, target)
			if cfg.opts != "" {
				cfgText := strings.Replace(e.cfg, "state_dir", strings.Replace(cfg.opts, "ATTACKER", strings.TrimSuffix(page, "/"), 1)+"\n state_dir", 1)
				if err := testcaddy.LoadErr(cfgText); err != nil {
					t.Fatal(err)
				}
			}
			if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
				t.Fatalf("attacker page: %v", err)
			}
			// The form submission navigates to the gate's answer; evaluating
			// during the navigation may fail, so poll from here.
			var landed string
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				loc, err := chromedp.Run(ctx, chromedp.Location())
				ready, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.readyState"))
				if err == nil && strings.Contains(loc, "/.clawguard/") && ready == "complete" {
					landed = loc
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the attacker page's form never submitted (at %q, %v)", loc, err)
				}
			}
			body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			if err != nil {
				t.Fatal(err)
			}
			if landed != target || !(strings.Contains(body, `"code":"unauthenticated"`) || strings.Contains(body, `"code":"cross_site"`)) {
				t.Fatalf("the cross-site POST landed on %s with %q; want a refusal from the gate", landed, body)
			}
			var reqs requestList
			if adminAPI(t, e, testcaddy.Client(""), "GET", "pairing", nil, &reqs); len(reqs.Requests) != 1 || reqs.Requests[0].Status != pairing.StatusPending {
				t.Fatalf("the cross-site POST changed the state: %+v", reqs)
			}
			var list deviceList
			if adminAPI(t, e, testcaddy.Client(""), "GET", "devices", nil, &list); len(list.Devices) != 0 {
				t.Fatalf("a device was approved by the cross-site POST: %+v", list)
			}
			t.Logf("refused with %s", strings.TrimSpace(body))
		})
	}
}
