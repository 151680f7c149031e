package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard" // reverse_proxy, respond, …

	_ "github.com/clawguard/clawguard" // the gate
	"github.com/clawguard/clawguard/audit"
	_ "github.com/clawguard/clawguard/caddymodule/tailnet" // the tailnet global option
	"github.com/clawguard/clawguard/vault"
)

// asCaddyEnv makes the test binary act as the caddy command, so tests can
// audit "an external caddy binary" that is real Caddy.
const asCaddyEnv = "CLAWGUARD_AUDIT_TEST_AS_CADDY"

func TestMain(m *testing.M) {
	if os.Getenv(asCaddyEnv) == "1" {
		caddycmd.Main()
		return
	}
	os.Exit(m.Run())
}

// fixturePlugin is a third-party-looking Caddy module compiled into the
// test binary, for plugins.allowlist.
type fixturePlugin struct{}

const fixturePluginID = "http.handlers.audit_fixture_plugin"

func (fixturePlugin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: fixturePluginID, New: func() caddy.Module { return new(fixturePlugin) }}
}

func init() { caddy.RegisterModule(fixturePlugin{}) }

// fixture is a state directory and a config directory with an audit's
// options pointing at them. /proc/net is a fixture too (no listeners), so
// only the network tests see sockets.
type fixture struct {
	t     *testing.T
	state string
	conf  string
	opts  audit.Options
	vault *vault.Vault
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	base := t.TempDir()
	f := &fixture{t: t, state: filepath.Join(base, "state"), conf: filepath.Join(base, "conf")}
	for _, d := range []string{f.state, f.conf} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	v, err := vault.OpenWithOptions(vault.Options{StateDir: f.state, Passphrase: "audit test passphrase", ScryptN: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	f.vault = v
	proc := filepath.Join(base, "proc")
	writeProcNet(t, proc, "", "")
	f.opts = audit.Options{
		StateDir:        f.state,
		Vault:           v,
		ProcRoot:        proc,
		MinimumVersions: versionsData(t, "1.0.0", "2.0.0"),
		AllowModules:    []string{fixturePluginID},
		GatewayURL:      "http://127.0.0.1:1", // nothing: deep tests set their own
	}
	return f
}

// write creates dir/name with content and mode (dir is f.conf or f.state).
func (f *fixture) write(dir, name, content string, mode os.FileMode) string {
	f.t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// caddyfile writes the Caddyfile (0600) into the config dir and points the
// options at it.
func (f *fixture) caddyfile(body string) string {
	p := f.write(f.conf, "Caddyfile", body, 0o600)
	f.opts.Config = p
	return p
}

func (f *fixture) run() *audit.Report {
	f.t.Helper()
	rep, err := audit.Run(context.Background(), f.opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

// check returns the findings of one check, failing if the check could not
// run.
func (f *fixture) check(id string) []audit.Finding {
	f.t.Helper()
	rep := f.run()
	return findings(f.t, rep, id)
}

func findings(t *testing.T, rep *audit.Report, id string) []audit.Finding {
	t.Helper()
	for _, c := range rep.Checks {
		if c.ID == id && c.Status == audit.StatusError {
			t.Fatalf("check %s failed to run: %s", id, c.Note)
		}
		if c.ID == id && c.Status == audit.StatusSkipped {
			t.Logf("check %s skipped: %s", id, c.Note)
		}
	}
	var out []audit.Finding
	for _, fd := range rep.Findings {
		if fd.Check == id {
			out = append(out, fd)
		}
	}
	return out
}

func checkStatus(t *testing.T, rep *audit.Report, id string) audit.CheckResult {
	t.Helper()
	for _, c := range rep.Checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no check %s", id)
	return audit.CheckResult{}
}

// wantFinding asserts that fs has a finding of severity sev whose text
// contains every one of subs.
func wantFinding(t *testing.T, fs []audit.Finding, sev audit.Severity, subs ...string) audit.Finding {
	t.Helper()
next:
	for _, f := range fs {
		if f.Severity != sev {
			continue
		}
		for _, s := range subs {
			if !strings.Contains(f.Finding, s) {
				continue next
			}
		}
		return f
	}
	t.Fatalf("no %s finding containing %q among:\n%s", sev, subs, dump(fs))
	return audit.Finding{}
}

func wantNone(t *testing.T, fs []audit.Finding) {
	t.Helper()
	if len(fs) > 0 {
		t.Fatalf("want no findings, got:\n%s", dump(fs))
	}
}

func dump(fs []audit.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s %s: %s (%s:%d) fix=%v\n", f.Severity, f.Check, f.Finding, f.Path, f.Line, f.Fixable)
	}
	return b.String()
}

// writeProcNet writes proc/net/tcp and tcp6 with the given socket lines.
func writeProcNet(t *testing.T, proc, tcp, tcp6 string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(proc, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	head := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	head6 := "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	if err := os.WriteFile(filepath.Join(proc, "net", "tcp"), []byte(head+tcp), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "net", "tcp6"), []byte(head6+tcp6), 0o644); err != nil {
		t.Fatal(err)
	}
}

// versionsData is minimum-versions data whose fixes are in goFix and
// caddyFix: below them the runtime checks fire.
func versionsData(t *testing.T, goFix, caddyFix string) []byte {
	t.Helper()
	return fmt.Appendf(nil, `{"version": 1, "as_of": "2026-11-25", "about": "test data",
  "go": [{"fixed": [%q], "date": "2026-10-01", "severity": "warn", "summary": "go fixture fix", "references": ["https://go.dev/doc/devel/release"]}],
  "caddy": [{"fixed": [%q], "date": "2026-02-24", "severity": "critical", "summary": "caddy fixture fix", "references": ["https://github.com/caddyserver/caddy/releases"]}]}`, goFix, caddyFix)
}

// nextPatch returns the release after Go version v ("go1.26.8" -> "1.26.9").
func nextPatch(t *testing.T, v string) string {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(v, "go"), ".")
	if len(parts) != 3 {
		t.Skipf("cannot tell the patch release of %s", v)
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil {
		t.Skipf("cannot tell the patch release of %s", v)
	}
	return fmt.Sprintf("%s.%s.%d", parts[0], parts[1], n+1)
}
