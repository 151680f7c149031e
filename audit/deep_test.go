package audit_test

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/clawguard/clawguard/audit"
	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/tsnet/tsnettest"
)

// TestDeepProbesRealGate runs the probes against real Caddy in-process:
// one site behind the gate, one without it.
func TestDeepProbesRealGate(t *testing.T) {
	f := newFixture(t)
	admin, gated, open := testcaddy.FreePort(t), testcaddy.FreePort(t), testcaddy.FreePort(t)
	cfg := testcaddy.Global(admin) + fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	clawguard {
		token %s
		state_dir %s
	}
	respond "gateway"
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	respond "open to all"
}
`, gated, literalToken, f.state, open)
	testcaddy.Load(t, cfg)
	f.caddyfile(cfg)
	f.opts.Deep = true

	f.opts.GatewayURL = "http://127.0.0.1:" + strconv.Itoa(gated)
	rep := f.run()
	for _, id := range []string{"deep.gate_auth", "deep.gate_url_token", "deep.admin_loopback"} {
		if st := checkStatus(t, rep, id); st.Status != audit.StatusPass {
			t.Errorf("%s against the gate: %+v\n%s", id, st, dump(findings(t, rep, id)))
		}
	}

	f.opts.GatewayURL = "http://127.0.0.1:" + strconv.Itoa(open)
	rep = f.run()
	wantFinding(t, findings(t, rep, "deep.gate_auth"), audit.SeverityCritical, "answered 200", "without credentials")
	fs := findings(t, rep, "deep.gate_url_token")
	wantFinding(t, fs, audit.SeverityCritical, "?token=")
	wantFinding(t, fs, audit.SeverityCritical, "?access_token=")
	if !rep.Critical() {
		t.Fatal("an unauthenticated gateway must make the audit critical")
	}

	f.opts.GatewayURL = "http://127.0.0.1:" + strconv.Itoa(testcaddy.FreePort(t))
	if st := checkStatus(t, f.run(), "deep.gate_auth"); st.Status != audit.StatusSkipped {
		t.Fatalf("nothing listening: want skipped, got %+v", st)
	}
}

// TestDeepAdminOffLoopback serves Caddy's admin endpoint on every
// interface and probes it from this machine's non-loopback address.
func TestDeepAdminOffLoopback(t *testing.T) {
	ip := nonLoopbackIP(t)
	f := newFixture(t)
	admin := testcaddy.FreePort(t)
	cfg := fmt.Sprintf("{\n\tadmin 0.0.0.0:%d\n\tauto_https off\n\tpersist_config off\n\tlog {\n\t\toutput discard\n\t}\n}\nhttp://127.0.0.1:%d {\n\tbind 127.0.0.1\n\trespond ok\n}\n", admin, testcaddy.FreePort(t))
	testcaddy.Load(t, cfg)
	f.caddyfile(cfg)
	f.opts.Deep = true
	fd := wantFinding(t, f.check("deep.admin_loopback"), audit.SeverityCritical, netip.AddrPortFrom(ip, uint16(admin)).String())
	if fd.Fixable {
		t.Fatal("the live admin endpoint is not fixed by --fix")
	}
}

func TestDeepSidecarSocket(t *testing.T) {
	f := newFixture(t)
	f.opts.Deep = true
	if st := checkStatus(t, f.run(), "deep.sidecar_socket"); st.Status != audit.StatusSkipped {
		t.Fatalf("no socket: want skipped, got %+v", st)
	}
	sock := filepath.Join(f.state, "sidecar.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false) // a stale socket, later
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Write([]byte("ok"))
			return
		}
		http.NotFound(w, r)
	}), ReadHeaderTimeout: time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	must(t, os.Chmod(sock, 0o600))
	wantNone(t, f.check("deep.sidecar_socket"))
	must(t, os.Chmod(sock, 0o666))
	wantFinding(t, f.check("deep.sidecar_socket"), audit.SeverityWarn, "sidecar socket is mode 0666")
	srv.Close()
	must(t, os.Chmod(sock, 0o600))
	wantFinding(t, f.check("deep.sidecar_socket"), audit.SeverityWarn, "nothing answers")
}

// TestDeepTailnetNodeDown: a tailnet node whose control server is down
// does not stop the loopback site, and the deep audit names it.
func TestDeepTailnetNodeDown(t *testing.T) {
	tsnettest.Offline()
	f := newFixture(t)
	admin, site := testcaddy.FreePort(t), testcaddy.FreePort(t)
	closed := testcaddy.FreePort(t) // reserved, nothing listens
	cfg := testcaddy.Global(admin, fmt.Sprintf(`	tailnet {
		node gate {
			control_url http://127.0.0.1:%d
			ephemeral
			state_dir %s
		}
	}
`, closed, filepath.Join(f.state, "tailnet", "gate"))) + fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	bind tailnet/gate
	respond ok
}
`, site)
	testcaddy.Load(t, cfg)
	f.caddyfile(cfg)
	f.opts.Deep = true

	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(site))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the loopback site with a failing node: %v %v", resp, err)
	}
	resp.Body.Close()
	// The node keeps retrying its control server; give it a moment to fail.
	deadline := time.Now().Add(20 * time.Second)
	for {
		fs := findings(t, f.run(), "deep.tailnet_nodes")
		if len(fs) == 1 && fs[0].Severity == audit.SeverityWarn {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no warning for the down node: %s", dump(fs))
		}
		time.Sleep(500 * time.Millisecond)
	}
}
