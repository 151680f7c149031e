package audit_test

import (
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"tailscale.com/ipn"
	"tailscale.com/ipn/store"

	"github.com/clawguard/clawguard/audit"
)

// A Caddyfile that passes every config check: loopback, a token from the
// vault, rate limiting on.
const cleanCaddyfile = `{
	admin localhost:2019
}

http://:18789 {
	bind 127.0.0.1
	clawguard {
		token {vault.gateway_token}
	}
	reverse_proxy 127.0.0.1:18790
}
`

const goodToken = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWo" // 43 random-looking characters

func (f *fixture) cleanSetup() {
	f.t.Helper()
	if err := f.vault.Set("gateway_token", []byte(goodToken)); err != nil {
		f.t.Fatal(err)
	}
	f.caddyfile(cleanCaddyfile)
}

func TestCleanFixtureHasNoFindings(t *testing.T) {
	f := newFixture(t)
	f.cleanSetup()
	f.write(f.state, "approvals.json", `{"version": 1, "defaults": {"mode": "ask"}, "agents": {"main": {"mode": "allowlist", "allow": [{"path": "/bin/ls"}]}}}`, 0o600)
	f.write(f.state, "sidecar.json", `{"version": 1, "sandboxes": {"*": {"image": "busybox:local", "workspace": "ro"}}}`, 0o600)
	rep := f.run()
	if len(rep.Findings) != 0 {
		t.Fatalf("clean fixture has findings:\n%s", dump(rep.Findings))
	}
	for _, c := range rep.Checks {
		if c.Status == audit.StatusError {
			t.Errorf("check %s: %s", c.ID, c.Note)
		}
	}
	if rep.Critical() {
		t.Fatal("critical without findings")
	}
}

func TestCheckConfigParse(t *testing.T) {
	f := newFixture(t)
	f.caddyfile("http://:80 {\n\tnot_a_directive\n}\n")
	wantFinding(t, f.check("config.parse"), audit.SeverityWarn, "does not load", "not_a_directive")
	f.write(f.state, "sidecar.json", `{"sandboxes": `, 0o600)
	wantFinding(t, f.check("config.parse"), audit.SeverityWarn, "sidecar config is not valid JSON")

	f = newFixture(t)
	f.cleanSetup()
	wantNone(t, f.check("config.parse"))
}

func TestCheckConfigPerms(t *testing.T) {
	f := newFixture(t)
	f.cleanSetup()
	os.Chmod(f.opts.Config, 0o644)
	fd := wantFinding(t, f.check("fs.config.perms"), audit.SeverityWarn, "mode 0644")
	if !fd.Fixable || fd.Path != f.opts.Config {
		t.Fatalf("want a fixable finding on the Caddyfile, got %+v", fd)
	}
	os.Chmod(f.opts.Config, 0o666)
	wantFinding(t, f.check("fs.config.perms"), audit.SeverityCritical, "can write it")
	f.write(f.conf, ".env", "LOG_LEVEL=debug\n", 0o640)
	f.write(f.state, "approvals.json", `{"version": 1}`, 0o604)
	fs := f.check("fs.config.perms")
	wantFinding(t, fs, audit.SeverityWarn, ".env is mode 0640")
	wantFinding(t, fs, audit.SeverityWarn, "approvals.json is mode 0604")
	os.Chmod(f.conf, 0o777)
	wantFinding(t, f.check("fs.config.perms"), audit.SeverityCritical, "config directory is mode 0777")

	f = newFixture(t)
	f.cleanSetup()
	f.write(f.conf, ".env", "LOG_LEVEL=debug\n", 0o600)
	wantNone(t, f.check("fs.config.perms"))
}

func TestCheckStateDirPerms(t *testing.T) {
	f := newFixture(t)
	os.Chmod(f.state, 0o755)
	os.Mkdir(filepath.Join(f.state, "tailnet"), 0o700)
	os.Chmod(filepath.Join(f.state, "tailnet"), 0o770)
	fs := f.check("fs.state_dir.perms")
	wantFinding(t, fs, audit.SeverityWarn, "state directory", "0755")
	wantFinding(t, fs, audit.SeverityCritical, "tailnet is mode 0770")
	// Sandbox workspaces are 0777 on purpose, inside a 0700 root.
	os.Chmod(f.state, 0o700)
	os.Chmod(filepath.Join(f.state, "tailnet"), 0o700)
	os.MkdirAll(filepath.Join(f.state, "workspaces", "main"), 0o700)
	os.Chmod(filepath.Join(f.state, "workspaces", "main"), 0o777)
	wantNone(t, f.check("fs.state_dir.perms"))
}

func TestCheckStateFilePerms(t *testing.T) {
	f := newFixture(t)
	f.write(f.state, "devices.json", "{}", 0o644)
	f.write(f.state, "trail/trail-000001.jsonl", "", 0o622)
	fs := f.check("fs.state_files.perms")
	wantFinding(t, fs, audit.SeverityWarn, "devices.json is mode 0644")
	wantFinding(t, fs, audit.SeverityCritical, "trail-000001.jsonl is mode 0622")
	if err := os.Symlink("/etc/passwd", filepath.Join(f.state, "evil.json")); err != nil {
		t.Fatal(err)
	}
	fd := wantFinding(t, f.check("fs.state_files.perms"), audit.SeverityWarn, "symlink")
	if fd.Fixable {
		t.Fatal("a symlink must not be fixable")
	}

	f = newFixture(t)
	f.write(f.state, "devices.json", "{}", 0o600)
	f.write(f.state, "trail/trail-000001.jsonl", "", 0o600)
	wantNone(t, f.check("fs.state_files.perms"))
}

func TestCheckVaultPerms(t *testing.T) {
	f := newFixture(t)
	if st := checkStatus(t, f.run(), "fs.vault.perms"); st.Status != audit.StatusSkipped {
		t.Fatalf("no vault: want skipped, got %+v", st)
	}
	f.cleanSetup() // creates the vault, 0600
	wantNone(t, f.check("fs.vault.perms"))
	os.Chmod(filepath.Join(f.state, "vault.json"), 0o644)
	wantFinding(t, f.check("fs.vault.perms"), audit.SeverityWarn, "vault.json is mode 0644")
	// The key file is only there with the machine identity; with a
	// passphrase the vault has none, so make one to judge.
	f.write(f.state, "vault.key", "00", 0o640)
	wantFinding(t, f.check("fs.vault.perms"), audit.SeverityCritical, "vault.key is mode 0640", "read")
}

func TestCheckGoVersion(t *testing.T) {
	f := newFixture(t)
	next := nextPatch(t, runtime.Version())
	f.opts.MinimumVersions = versionsData(t, next, "2.0.0")
	fd := wantFinding(t, f.check("runtime.go_version"), audit.SeverityWarn, runtime.Version(), next, "go fixture fix")
	if !strings.Contains(fd.Remedy, next) {
		t.Fatalf("remedy %q does not name %s", fd.Remedy, next)
	}
	f.opts.MinimumVersions = versionsData(t, strings.TrimPrefix(runtime.Version(), "go"), "2.0.0")
	wantNone(t, f.check("runtime.go_version"))
}

// buildCaddyBinary builds testdata/caddybin, a small real program linking
// Caddy: unlike test binaries, it carries its dependencies' versions.
func buildCaddyBinary(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build a binary with")
	}
	out := filepath.Join(t.TempDir(), "caddybin")
	cmd := exec.Command(gobin, "build", "-o", out, "./testdata/caddybin")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func TestCheckCaddyVersion(t *testing.T) {
	bin := buildCaddyBinary(t)
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var cv string
	for _, d := range bi.Deps {
		if d.Path == "github.com/caddyserver/caddy/v2" {
			cv = d.Version
		}
	}
	if cv == "" {
		t.Fatal("the built binary names no Caddy version")
	}
	f := newFixture(t)
	f.opts.CaddyBinary = bin
	f.opts.MinimumVersions = versionsData(t, "1.0.0", "2.99.0")
	wantFinding(t, f.check("runtime.caddy_version"), audit.SeverityCritical, cv, "2.99.0", "caddy fixture fix", bin)
	f.opts.MinimumVersions = versionsData(t, nextPatch(t, bi.GoVersion), strings.TrimPrefix(cv, "v"))
	rep := f.run()
	wantNone(t, findings(t, rep, "runtime.caddy_version"))
	wantFinding(t, findings(t, rep, "runtime.go_version"), audit.SeverityWarn, bi.GoVersion, bin)
}

// TestMinimumVersionsData validates the data file built into the binary.
func TestMinimumVersionsData(t *testing.T) {
	f := newFixture(t)
	f.opts.MinimumVersions = nil
	rep := f.run()
	for _, id := range []string{"runtime.go_version", "runtime.caddy_version"} {
		if st := checkStatus(t, rep, id); st.Status == audit.StatusError {
			t.Fatalf("%s: %s", id, st.Note)
		}
	}
	f.opts.MinimumVersions = []byte(`{"version": 1, "as_of": "2026-11-25", "go": [{"fixed": ["1.26"], "date": "2026-01-01", "severity": "warn", "summary": "x", "references": ["y"]}]}`)
	if st := checkStatus(t, f.run(), "runtime.go_version"); st.Status != audit.StatusError || !strings.Contains(st.Note, "1.26") {
		t.Fatalf("a bad data file must make the check fail to run, naming the entry: %+v", st)
	}
}

func TestCheckPlugins(t *testing.T) {
	f := newFixture(t)
	f.opts.AllowModules = nil
	fd := wantFinding(t, f.check("plugins.allowlist"), audit.SeverityWarn, fixturePluginID, "neither standard nor allowed")
	if !strings.Contains(fd.Finding, "github.com/clawguard/clawguard/audit_test") {
		t.Fatalf("want the module's package named: %s", fd.Finding)
	}
	f.opts.AllowModules = []string{"http.handlers.audit_*"}
	if len(f.check("plugins.allowlist")) != 1 {
		t.Fatal(`"http.handlers.audit_*" is not a namespace pattern and must not allow the module`)
	}
	f.opts.AllowModules = []string{"http.handlers.*"}
	wantNone(t, f.check("plugins.allowlist"))
	f.opts.AllowModules = []string{fixturePluginID}
	wantNone(t, f.check("plugins.allowlist"))
}

// TestCheckPluginsExternalBinary audits a real Caddy binary: this test
// binary run as the caddy command (`list-modules --json`).
func TestCheckPluginsExternalBinary(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(asCaddyEnv, "1")
	f := newFixture(t)
	f.opts.AllowModules = nil
	f.opts.CaddyBinary = self
	rep := f.run()
	// The test binary's own packages are in clawguard's Go module, which
	// list-modules reports for them all; standard modules pass.
	wantNone(t, findings(t, rep, "plugins.allowlist"))
	if st := checkStatus(t, rep, "runtime.go_version"); st.Status != audit.StatusPass {
		t.Fatalf("runtime.go_version of the external binary: %+v", st)
	}
}

func TestParseListModules(t *testing.T) {
	_, err := audit.ParseListModulesForTest([]byte(`not json`), "")
	if err == nil || !strings.Contains(err.Error(), "--json") {
		t.Fatalf("want an error mentioning --json, got %v", err)
	}
	mods, err := audit.ParseListModulesForTest([]byte(`[
  {"module_name": "http.handlers.reverse_proxy", "module_type": "standard", "package_url": "github.com/caddyserver/caddy/v2", "version": "v2.11.9"},
  {"module_name": "dns.providers.cloudflare", "module_type": "non-standard", "package_url": "github.com/caddy-dns/cloudflare", "version": "v0.2.1"},
  {"module_name": "http.handlers.mine", "module_type": "non-standard"}]`), "example.com/mycaddy")
	want := [][2]string{{"http.handlers.reverse_proxy", "github.com/caddyserver/caddy/v2"}, {"dns.providers.cloudflare", "github.com/caddy-dns/cloudflare"}, {"http.handlers.mine", "example.com/mycaddy"}}
	if err != nil || fmt.Sprint(mods) != fmt.Sprint(want) {
		t.Fatalf("got %v, %v", mods, err)
	}
}

func TestCheckApprovalsModeFull(t *testing.T) {
	f := newFixture(t)
	f.write(f.state, "approvals.json", `{"version": 1, "defaults": {"mode": "full"}, "agents": {"*": {"mode": "full"}, "dev": {"mode": "full"}}}`, 0o600)
	fs := f.check("approvals.mode_full")
	wantFinding(t, fs, audit.SeverityCritical, "defaults.mode")
	wantFinding(t, fs, audit.SeverityCritical, `agents."*"`)
	wantFinding(t, fs, audit.SeverityWarn, `agent "dev"`)

	f = newFixture(t)
	f.write(f.state, "approvals.json", `{"version": 1, "defaults": {"mode": "ask"}, "agents": {"dev": {"mode": "allowlist"}}}`, 0o600)
	wantNone(t, f.check("approvals.mode_full"))
}

func TestCheckApprovalsNode(t *testing.T) {
	f := newFixture(t)
	f.write(f.state, "approvals.json", `{"version": 1, "agents": {"runner": {"node": true, "mode": "allowlist"}, "yolo": {"node": true, "mode": "full"}, "off": {"node": false, "mode": "full"}}}`, 0o600)
	fs := f.check("approvals.node_enabled")
	wantFinding(t, fs, audit.SeverityWarn, `agent "runner" may run commands on the node's host`)
	wantFinding(t, fs, audit.SeverityCritical, `agent "yolo" runs any command on the node's host without approval`)
	if len(fs) != 2 {
		t.Fatalf("findings %+v, want runner and yolo only", fs)
	}

	// Through "*": one finding for every agent, and one for a full-mode
	// agent that inherits it.
	f = newFixture(t)
	f.write(f.state, "approvals.json", `{"version": 1, "agents": {"*": {"node": true}, "main": {"mode": "ask"}, "dev": {"mode": "full"}}}`, 0o600)
	fs = f.check("approvals.node_enabled")
	wantFinding(t, fs, audit.SeverityWarn, `every agent (agents."*".node) may run commands`)
	wantFinding(t, fs, audit.SeverityCritical, `agent "dev" runs any command on the node's host without approval`)
	if len(fs) != 2 {
		t.Fatalf("findings %+v, want \"*\" and dev only", fs)
	}

	f = newFixture(t)
	f.write(f.state, "approvals.json", `{"version": 1, "agents": {"ops": {"elevated": true, "mode": "full"}}}`, 0o600)
	wantNone(t, f.check("approvals.node_enabled"))
}

func TestCheckApprovalsElevated(t *testing.T) {
	f := newFixture(t)
	f.write(f.state, "approvals.json", `{"version": 1, "agents": {"ops": {"elevated": true}, "root": {"mode": "full", "elevated": true}}}`, 0o600)
	f.write(f.state, "sidecar.json", `{"exec_allow": [{"agent": "ops", "path": "/usr/bin/systemctl", "target": "host"}]}`, 0o600)
	fs := f.check("approvals.elevated_enabled")
	wantFinding(t, fs, audit.SeverityWarn, `agent "ops" may run commands on the host`)
	wantFinding(t, fs, audit.SeverityCritical, `agent "root" runs any command on the host without approval`)
	wantFinding(t, fs, audit.SeverityWarn, "exec_allow", "/usr/bin/systemctl")

	f = newFixture(t)
	f.write(f.state, "approvals.json", `{"version": 1, "agents": {"ops": {"elevated": false}}}`, 0o600)
	f.write(f.state, "sidecar.json", `{"exec_allow": [{"agent": "ops", "path": "/bin/ls"}]}`, 0o600)
	wantNone(t, f.check("approvals.elevated_enabled"))
}

func TestCheckDangerousProfiles(t *testing.T) {
	f := newFixture(t)
	f.write(f.state, "sidecar.json", `{"sandboxes": {
  "root":   {"image": "img", "privileged": true, "user": "0:0"},
  "net":    {"image": "img", "network": "host"},
  "docker": {"image": "img", "mounts": [{"source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}]},
  "keys":   {"image": "img", "workspace": "rw", "workspace_dir": "/root/.ssh"},
  "caps":   {"image": "img", "cap_add": ["SYS_ADMIN"]},
  "away":   {"image": "img", "mounts": [{"source": "/srv/data", "target": "/data"}]},
  "shared": {"image": "img", "scope": "shared", "workspace": "rw"}}}`, 0o600)
	fs := f.check("sandbox.dangerous_profile")
	wantFinding(t, fs, audit.SeverityCritical, `"root"`, "privileged")
	wantFinding(t, fs, audit.SeverityCritical, `"root"`, "as root")
	wantFinding(t, fs, audit.SeverityCritical, `"net"`, `network "host"`)
	wantFinding(t, fs, audit.SeverityCritical, `"docker"`, "docker.sock")
	wantFinding(t, fs, audit.SeverityCritical, `"keys"`, "credentials")
	wantFinding(t, fs, audit.SeverityCritical, `"caps"`, "cap_add")
	wantFinding(t, fs, audit.SeverityWarn, `"away"`, "outside the workspace root")
	wantFinding(t, fs, audit.SeverityWarn, `"shared"`, "shared sandbox")

	f = newFixture(t)
	ws := filepath.Join(f.state, "workspaces")
	f.write(f.state, "sidecar.json", fmt.Sprintf(`{"sandboxes": {"*": {"image": "img", "workspace": "rw", "mounts": [{"source": %q, "target": "/cache", "read_only": true}]}}}`, filepath.Join(ws, "cache")), 0o600)
	wantNone(t, f.check("sandbox.dangerous_profile"))
}

func TestCheckSandboxNetwork(t *testing.T) {
	f := newFixture(t)
	f.write(f.state, "sidecar.json", `{"sandboxes": {"*": {"image": "img", "network": "bridge"}, "web": {"image": "img", "network": "egress-proxy"}}}`, 0o600)
	fs := f.check("sandbox.network_enabled")
	wantFinding(t, fs, audit.SeverityWarn, `"*"`, "bridge", "every agent")
	wantFinding(t, fs, audit.SeverityWarn, `"web"`, "egress-proxy")

	f = newFixture(t)
	f.write(f.state, "sidecar.json", `{"sandboxes": {"*": {"image": "img"}, "web": {"image": "img", "network": "none"}}}`, 0o600)
	wantNone(t, f.check("sandbox.network_enabled"))
}

func TestCheckTailnetFunnelOrPublic(t *testing.T) {
	f := newFixture(t)
	f.caddyfile(`{
	admin localhost:2019
	tailnet {
		node box {
			auth_key {env.TS_AUTHKEY}
		}
	}
}
http://:8443 {
	bind tailnet/box 0.0.0.0
	clawguard {
		token {vault.gateway_token}
	}
	respond "hi"
}
`)
	writeServeState(t, filepath.Join(f.state, "tailnet", "box"), map[string]bool{"box.example.ts.net:443": true})
	fs := f.check("tailnet.funnel_or_public")
	wantFinding(t, fs, audit.SeverityCritical, "tailnet/box:8443", "0.0.0.0:8443")
	wantFinding(t, fs, audit.SeverityCritical, "Funnel", "box.example.ts.net:443")

	f = newFixture(t)
	f.caddyfile(`http://:8443 {
	bind tailnet/box 127.0.0.1
	clawguard {
		token {vault.gateway_token}
	}
	respond "hi"
}
`)
	writeServeState(t, filepath.Join(f.state, "tailnet", "box"), map[string]bool{"box.example.ts.net:443": false})
	rep := f.run()
	wantNone(t, findings(t, rep, "tailnet.funnel_or_public"))
	if st := checkStatus(t, rep, "tailnet.funnel_or_public"); st.Status != audit.StatusPass {
		t.Fatalf("want the check to run and pass, got %+v", st)
	}
}

// writeServeState saves a serve config the way a tsnet node does: with
// tailscale.com's own FileStore, under ipn.ServeConfigKey.
func writeServeState(t *testing.T, dir string, funnel map[string]bool) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := store.NewFileStore(t.Logf, filepath.Join(dir, "tailscaled.state"))
	if err != nil {
		t.Fatal(err)
	}
	sc := &ipn.ServeConfig{TCP: map[uint16]*ipn.TCPPortHandler{443: {HTTPS: true}}, AllowFunnel: map[ipn.HostPort]bool{}}
	for hp, on := range funnel {
		sc.AllowFunnel[ipn.HostPort(hp)] = on
	}
	b, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.WriteState(ipn.ServeConfigKey("a1b2"), b); err != nil {
		t.Fatal(err)
	}
}
