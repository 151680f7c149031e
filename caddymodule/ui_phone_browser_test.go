package caddymodule

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/pairclient"
)

// uiViewport is a screen the admin UI must work on.
type uiViewport struct {
	name          string
	width, height int64
	scale         float64
	mobile        bool
}

var uiViewports = []uiViewport{
	{name: "phone", width: 390, height: 844, scale: 3, mobile: true},
	{name: "desktop", width: 1280, height: 800, scale: 1},
}

// uiMeasure is what the page says about its own layout.
type uiMeasure struct {
	InnerWidth  float64    `json:"innerWidth"`
	ScrollWidth float64    `json:"scrollWidth"`
	Targets     []uiTarget `json:"targets"`
	Text        string     `json:"text"`
	RegexLabel  string     `json:"regexLabel"`
	Countdowns  []string   `json:"countdowns"`
}

// uiTarget is one visible button or text field and its bounding box.
type uiTarget struct {
	Label  string  `json:"label"`
	Left   float64 `json:"left"`
	Right  float64 `json:"right"`
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
}

const uiMeasureJS = `(() => {
  const visible = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";
  const targets = [...document.querySelectorAll("button, input")].filter(visible).map((e) => {
    const r = e.getBoundingClientRect();
    const label = (e.textContent || e.getAttribute("aria-label") || e.value || e.tagName).trim();
    return {label: label + " [" + (e.closest("section") || document.body).id + "]", left: r.left, right: r.right, width: r.width, height: r.height};
  });
  const label = document.querySelector("#approvals form.allow-always label");
  return {
    innerWidth: window.innerWidth,
    scrollWidth: document.scrollingElement.scrollWidth,
    targets,
    text: document.body.innerText,
    regexLabel: label ? label.innerText : "",
    countdowns: [...document.querySelectorAll(".countdown")].map((e) => e.textContent),
  };
})()`

// screenshotDir is where the UI tests write their PNGs: $CLAWGUARD_SCREENSHOTS
// (created if missing), else a temporary directory of the test.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CLAWGUARD_SCREENSHOTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitAsks waits for n pending asks, each with its exec waiting, listed
// through the gate.
func waitAsks(t *testing.T, e *pairEnv, n int) []approvals.Approval {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var out struct{ Approvals []approvals.Approval }
		if st := adminAPI(t, e, testcaddy.Client(""), "GET", "approvals?state=pending", nil, &out); st != 200 {
			t.Fatalf("list through the gate: %d", st)
		}
		waiting := 0
		for _, a := range out.Approvals {
			waiting += a.Waiters
		}
		if len(out.Approvals) == n && waiting == n {
			return out.Approvals
		}
	}
	t.Fatalf("not %d pending asks", n)
	return nil
}

// TestAdminUIPhoneAndDesktopInChromium loads the admin UI in real headless
// Chromium at phone width (390×844, 3× pixels, mobile) and desktop width
// (1280×800) with a pending pairing request, a paired device and two
// pending exec asks (one long command), and checks with the page's own
// numbers: nothing scrolls sideways, every button and field lies inside the
// viewport's width and is at least 44 px tall on the phone, the expiries
// count down, the allow-always pattern is labelled as a regex over the
// arguments, and the request and ask ids are shown as the CLI lists them.
// It writes screenshots to $CLAWGUARD_SCREENSHOTS (else a temporary
// directory) and logs their paths.
func TestAdminUIPhoneAndDesktopInChromium(t *testing.T) {
	ctx, console := browser(t)
	dir := t.TempDir()
	startSidecar(t, dir)
	e := startGateWithSidecar(t, dir)
	out := screenshotDir(t)

	if _, err := pairclient.Pair(context.Background(), pairclient.Options{Gateway: e.base, Name: "build server", Key: newKey(t), HTTPClient: testcaddy.Client("")}); err != nil {
		t.Fatal(err)
	}
	_, reqID := pendingRequest(t, e, newKey(t), "Alice's phone (Pixel 8)")
	short := agentExec(e, "cat", "/etc/hostname")
	long := agentExec(e, "ls", "-la", "--time-style=long-iso", "/var/log/clawguard/sessions/2026-11-25/agent-main/transcripts-and-artifacts")
	asks := waitAsks(t, e, 2)

	for _, vp := range uiViewports {
		t.Run(vp.name, func(t *testing.T) {
			opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(vp.scale)}
			if vp.mobile {
				opts = append(opts, chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch)
			}
			err := chromedp.Do(ctx,
				chromedp.EmulateViewport(vp.width, vp.height, opts...),
				chromedp.Navigate(e.ui+"/.clawguard/ui/"),
				chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-request=%q]`, reqID))),
				chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-approval=%q]`, asks[0].ID))),
				chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-approval=%q]`, asks[1].ID))),
				chromedp.WaitVisible(chromedp.CSS(`#live.ok`)),
			)
			if err != nil {
				t.Fatalf("loading the UI: %v\nconsole:\n%s", err, console)
			}
			for name, shot := range map[string]chromedp.Action[[]byte]{"screen": chromedp.CaptureScreenshot(), "full": chromedp.FullScreenshot(100)} {
				png, err := chromedp.Run(ctx, shot)
				if err != nil {
					t.Fatalf("screenshot: %v", err)
				}
				path := filepath.Join(out, fmt.Sprintf("ui-%s-%s.png", vp.name, name))
				if err := os.WriteFile(path, png, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("screenshot (%s, %dx%d at %gx): %s", name, vp.width, vp.height, vp.scale, path)
			}

			m, err := chromedp.Run(ctx, chromedp.Evaluate[uiMeasure](uiMeasureJS))
			if err != nil {
				t.Fatal(err)
			}
			if m.InnerWidth != float64(vp.width) {
				t.Fatalf("innerWidth %v, want %d: the page is wider than the screen, so the browser zooms out to fit it", m.InnerWidth, vp.width)
			}
			if m.ScrollWidth > m.InnerWidth {
				t.Errorf("the page scrolls sideways: scrollWidth %v > innerWidth %v", m.ScrollWidth, m.InnerWidth)
			}
			if len(m.Targets) < 8 {
				t.Errorf("only %d buttons and fields visible: %+v", len(m.Targets), m.Targets)
			}
			for _, b := range m.Targets {
				if b.Left < 0 || b.Right > m.InnerWidth {
					t.Errorf("%q lies outside the viewport's width: %v..%v of %v", b.Label, b.Left, b.Right, m.InnerWidth)
				}
				if vp.mobile && b.Height < 44 {
					t.Errorf("%q is %.1f px tall, under the 44 px of a tap target", b.Label, b.Height)
				}
			}
			for _, id := range []string{reqID, asks[0].ID, asks[1].ID} {
				if !strings.Contains(m.Text, id) {
					t.Errorf("id %s is not shown (the CLI lists it so)", id)
				}
			}
			if l := strings.ToLower(m.RegexLabel); !strings.Contains(l, "regex") || !strings.Contains(l, "argument") {
				t.Errorf("the allow-always pattern's label %q does not say it is a regex over the arguments", m.RegexLabel)
			}
			if len(m.Countdowns) != 3 {
				t.Fatalf("countdowns %q: want one per pending request and ask (3)", m.Countdowns)
			}
			// Every countdown ticks: each shows another value within 5 s (its
			// one-second timer may run late on a loaded machine).
			var later []string
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(250 * time.Millisecond) {
				if later, err = chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll(".countdown")].map((e) => e.textContent)`)); err != nil {
					t.Fatal(err)
				}
				changed := len(later) == len(m.Countdowns)
				for i := range m.Countdowns {
					changed = changed && later[i] != m.Countdowns[i]
				}
				if changed || time.Now().After(deadline) {
					break
				}
			}
			for i := range m.Countdowns {
				if i >= len(later) || later[i] == m.Countdowns[i] {
					t.Errorf("countdown %d did not change in 5 s: %q then %q", i, m.Countdowns, later)
				}
			}
			t.Logf("%s: scrollWidth %v of %v, %d targets, countdowns %q → %q, regex label %q",
				vp.name, m.ScrollWidth, m.InnerWidth, len(m.Targets), m.Countdowns, later, m.RegexLabel)
		})
	}
	if c := console.String(); c != "" {
		t.Errorf("errors in the page (CSP violations show here):\n%s", c)
	}

	// On the phone, a person taps Deny on both (a tap at the button's
	// position: it must be on screen and not covered); the agents' commands end.
	err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range asks {
		row := fmt.Sprintf(`tr[data-approval=%q]`, a.ID)
		err := chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS(row+` button[data-action="deny"]`)),
			chromedp.WaitNotPresent(chromedp.CSS(row)),
		)
		if err != nil {
			t.Fatalf("denying %s on the phone: %v\nconsole:\n%s", a.ID, err, console)
		}
	}
	for _, ch := range []<-chan execAnswer{short, long} {
		if r := awaitExec(t, ch); r.status != 403 {
			t.Errorf("denied exec: %d %v", r.status, r.body)
		}
	}
}
