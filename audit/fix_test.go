package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/audit"
)

// fileState is what a file looked like: mode, content hash, link target.
type fileState struct {
	mode   fs.FileMode
	sum    [32]byte
	link   string
	mtime  time.Time
	isFile bool
}

// snapshot records every entry under dirs without following links.
func snapshot(t *testing.T, dirs ...string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			st := fileState{mode: fi.Mode(), mtime: fi.ModTime()}
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				st.link, _ = os.Readlink(p)
			case fi.Mode().IsRegular():
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				st.sum, st.isFile = sha256.Sum256(b), true
			}
			out[p] = st
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// grepSecrets fails if any file under dirs contains any of the secrets.
func grepSecrets(t *testing.T, secrets []string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err != nil || !de.Type().IsRegular() {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, s := range secrets {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s still holds a plaintext secret (%.8s…)", p, s)
				}
			}
			return nil
		})
	}
}

// fix runs the audit, plans, applies, and fails on failed or refused steps
// unless allowed.
func (f *fixture) fix(allowRefused bool) (*audit.Report, *audit.FixPlan, *audit.FixReport) {
	f.t.Helper()
	rep := f.run()
	plan, err := audit.PlanFix(context.Background(), f.opts, rep)
	if err != nil {
		f.t.Fatal(err)
	}
	res := plan.Apply(context.Background())
	for _, s := range res.Steps {
		if s.Status == audit.StatusFailed || (s.Status == audit.StatusRefused && !allowRefused) {
			f.t.Errorf("step %s %s: %s: %s", s.Action, s.Path, s.Status, s.Error)
		}
	}
	return rep, plan, res
}

const token2 = "U2Vjb25kR2F0ZXdheVRva2VuRnJvbVRoZUVudkZpbGU"

// badInstall writes a fixture with every fixable problem.
func (f *fixture) badInstall() []string {
	f.t.Helper()
	// The vault already holds another gateway_token (it must not be
	// overwritten) and the OpenAI key under a name of its own (reused).
	if err := f.vault.Set("gateway_token", []byte("an-older-token-that-must-survive-0123")); err != nil {
		f.t.Fatal(err)
	}
	if err := f.vault.Set("openai", []byte(openaiKey)); err != nil {
		f.t.Fatal(err)
	}
	f.caddyfile(`{
	admin localhost:2019
}

# gateway, token ` + literalToken + ` until it moves
http://:18789 {
	bind 127.0.0.1
	clawguard {
		token ` + literalToken + ` {env.GATEWAY_TOKEN}
		rate_limit off
	}
	reverse_proxy 127.0.0.1:18790
}
`)
	os.Chmod(f.opts.Config, 0o644)
	f.write(f.conf, ".env", "GATEWAY_TOKEN="+token2+"\nOPENAI_API_KEY=\""+openaiKey+"\"\nLOG_LEVEL=debug\n", 0o644)
	f.write(f.state, "sidecar.json", `{
  "version": 1,
  "sandboxes": {
    "main": {"image": "busybox:local", "env": {"GITHUB_TOKEN": "`+githubToken+`", "LANG": "C.UTF-8"}}
  }
}
`, 0o644)
	f.write(f.state, "devices.json", "{}", 0o644)
	os.Mkdir(filepath.Join(f.state, "tailnet"), 0o700)
	os.Chmod(filepath.Join(f.state, "tailnet"), 0o750)
	os.Chmod(filepath.Join(f.state, "vault.json"), 0o644)
	os.Chmod(f.state, 0o755)
	return []string{literalToken, token2, openaiKey, githubToken}
}

var fixedChecks = []string{"fs.config.perms", "fs.state_dir.perms", "fs.state_files.perms", "fs.vault.perms", "secrets.plaintext"}

func TestFixTurnsBadClean(t *testing.T) {
	f := newFixture(t)
	secrets := f.badInstall()

	// First run: findings, a plan, the fix.
	rep1, plan, res := f.fix(false)
	for _, id := range fixedChecks {
		if len(findings(t, rep1, id)) == 0 {
			t.Fatalf("the bad fixture trips no %s", id)
		}
	}
	wantFinding(t, findings(t, rep1, "auth.completeness"), audit.SeverityWarn, "rate limiting is off")
	if plan.Empty() {
		t.Fatal("empty plan for a bad fixture")
	}
	planned := plan.Report()
	var text bytes.Buffer
	planned.WriteText(&text, false)
	for _, s := range secrets {
		if strings.Contains(text.String(), s) {
			t.Fatal("the plan shows a secret")
		}
		b, _ := json.Marshal(res)
		if bytes.Contains(b, []byte(s)) {
			t.Fatal("the fix report shows a secret")
		}
	}
	for _, want := range []string{"in the vault as gateway_token_2", "in the vault as gateway_token_3", "already in the vault as openai", "remove `rate_limit off`", "{env.GATEWAY_TOKEN} becomes {vault.gateway_token_", `"secrets": {"GITHUB_TOKEN": "github_token"}`, "chmod 0700 " + f.state} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, text.String())
		}
	}

	// Second run: clean.
	rep2 := f.run()
	for _, id := range fixedChecks {
		wantNone(t, findings(t, rep2, id))
	}
	for _, fd := range rep2.Findings {
		if fd.Fixable {
			t.Errorf("still fixable after --fix: %+v", fd)
		}
	}
	wantNone(t, findings(t, rep2, "auth.completeness"))
	wantNone(t, findings(t, rep2, "config.parse"))
	grepSecrets(t, secrets, f.conf, f.state)

	// The secrets are in the vault, the old entries untouched, and the
	// Caddyfile names their entries.
	entryOf := func(value string) string {
		names, _ := f.vault.List()
		for _, n := range names {
			if v, _ := f.vault.Get(n); string(v) == value {
				return n
			}
		}
		t.Fatalf("a secret (%.8s…) is not in the vault", value)
		return ""
	}
	for entry, want := range map[string]string{"gateway_token": "an-older-token-that-must-survive-0123", "openai": openaiKey, "github_token": githubToken} {
		if got, err := f.vault.Get(entry); err != nil || string(got) != want {
			t.Errorf("vault entry %s: got %q, %v", entry, got, err)
		}
	}
	lit, env2 := entryOf(literalToken), entryOf(token2)
	if !strings.HasPrefix(lit, "gateway_token_") || !strings.HasPrefix(env2, "gateway_token_") || lit == env2 {
		t.Errorf("entries %s and %s: want new gateway_token_N names", lit, env2)
	}
	cf, _ := os.ReadFile(f.opts.Config)
	for _, want := range []string{"token {vault." + lit + "} {vault." + env2 + "}", "# gateway, token {vault." + lit + "} until it moves"} {
		if !strings.Contains(string(cf), want) {
			t.Errorf("rewritten Caddyfile lacks %q:\n%s", want, cf)
		}
	}
	if strings.Contains(string(cf), "rate_limit") {
		t.Errorf("rate_limit off is still there:\n%s", cf)
	}
	env, _ := os.ReadFile(filepath.Join(f.conf, ".env"))
	if !strings.Contains(string(env), "LOG_LEVEL=debug\n") || !strings.Contains(string(env), "# OPENAI_API_KEY: moved to the clawguard vault as {vault.openai}") {
		t.Errorf("rewritten .env:\n%s", env)
	}
	var sc struct {
		Sandboxes map[string]struct {
			Env     map[string]string `json:"env"`
			Secrets map[string]string `json:"secrets"`
		} `json:"sandboxes"`
	}
	b, _ := os.ReadFile(filepath.Join(f.state, "sidecar.json"))
	if err := json.Unmarshal(b, &sc); err != nil || sc.Sandboxes["main"].Secrets["GITHUB_TOKEN"] != "github_token" || sc.Sandboxes["main"].Env["LANG"] != "C.UTF-8" {
		t.Errorf("rewritten sidecar.json: %s (%v)", b, err)
	}
	// Backups: one per rewritten file, private, placeholders for secrets.
	backups, _ := filepath.Glob(filepath.Join(f.state, "backups", "*"))
	if len(backups) != 3 {
		t.Fatalf("want 3 backups, got %v", backups)
	}
	for _, bp := range backups {
		fi, _ := os.Stat(bp)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("backup %s is %04o", bp, fi.Mode().Perm())
		}
		if c, _ := os.ReadFile(bp); strings.HasPrefix(filepath.Base(bp), "Caddyfile.") && !strings.Contains(string(c), "rate_limit off") {
			t.Errorf("the Caddyfile backup is not the old content:\n%s", c)
		}
	}
	if fi, _ := os.Stat(filepath.Join(f.state, "backups")); fi.Mode().Perm() != 0o700 {
		t.Errorf("backups dir is %04o", fi.Mode().Perm())
	}

	// Third run: nothing to do, nothing touched.
	before := snapshot(t, f.conf, f.state)
	_, plan3, res3 := f.fix(false)
	if !plan3.Empty() || len(res3.Steps) != 0 {
		t.Fatalf("third run plans changes: %+v", res3.Steps)
	}
	after := snapshot(t, f.conf, f.state)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("the third run changed files:\nbefore %v\nafter  %v", before, after)
	}
}

// TestFixNeverLoosensOrEscapes: --fix only ever removes permission bits,
// and never touches anything outside the config and state directories,
// through symlinks or otherwise.
func TestFixNeverLoosensOrEscapes(t *testing.T) {
	f := newFixture(t)
	outside := t.TempDir()
	out := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(outside, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), mode)
		os.Chmod(p, mode)
		return p
	}
	outEnv := out("secret.env", "OPENAI_API_KEY="+openaiKey+"\n", 0o644)
	outJSON := out("sidecar.json", `{"sandboxes": {"x": {"image": "i", "privileged": true, "env": {"GITHUB_TOKEN": "`+githubToken+`"}}}}`, 0o666)
	outCaddy := out("Caddyfile", "http://:1 {\n\tbind 127.0.0.1\n\tclawguard {\n\t\ttoken "+literalToken+"\n\t\trate_limit off\n\t}\n\trespond ok\n}\n", 0o644)
	os.Mkdir(filepath.Join(outside, "dir"), 0o777)
	os.Chmod(filepath.Join(outside, "dir"), 0o777)
	out("dir/inner.json", "{}", 0o666)

	// The Caddyfile given is a link out of the config directory.
	link := filepath.Join(f.conf, "Caddyfile")
	must(t, os.Symlink(outCaddy, link))
	f.opts.Config = link
	must(t, os.Symlink(outEnv, filepath.Join(f.conf, ".env")))
	must(t, os.Symlink(outJSON, filepath.Join(f.state, "sidecar.json")))
	must(t, os.Symlink(filepath.Join(outside, "dir"), filepath.Join(f.state, "sub")))
	// Modes that must never gain a bit.
	f.write(f.state, "readonly.json", "{}", 0o400)
	f.write(f.state, "none.json", "{}", 0o000)
	f.write(f.state, "group.json", "{}", 0o640)
	os.Mkdir(filepath.Join(f.state, "rx"), 0o700)
	os.Chmod(filepath.Join(f.state, "rx"), 0o555)
	os.Mkdir(filepath.Join(f.state, "sticky"), 0o700)
	os.Chmod(filepath.Join(f.state, "sticky"), 0o777|fs.ModeSticky)
	os.Chmod(f.state, 0o750)

	outBefore := snapshot(t, outside)
	inBefore := snapshot(t, f.conf, f.state)
	rep, _, res := f.fix(true)
	for _, fd := range rep.Findings {
		if fd.Fixable && strings.HasPrefix(fd.Path, outside) {
			t.Errorf("a finding outside is fixable: %+v", fd)
		}
	}
	refused := 0
	for _, s := range res.Steps {
		if s.Status == audit.StatusRefused {
			refused++
		}
		if strings.HasPrefix(s.Path, outside) {
			t.Errorf("a step targets a path outside: %+v", s)
		}
	}
	if refused == 0 {
		t.Errorf("rewriting through the Caddyfile link must be refused: %+v", res.Steps)
	}
	// A second --fix (say with the link replaced meanwhile) must not go
	// outside either.
	f.fix(true)

	outAfter := snapshot(t, outside)
	if fmt.Sprint(outBefore) != fmt.Sprint(outAfter) {
		t.Fatalf("files outside changed:\nbefore %v\nafter  %v", outBefore, outAfter)
	}
	inAfter := snapshot(t, f.conf, f.state)
	for p, was := range inBefore {
		now, ok := inAfter[p]
		if !ok {
			t.Errorf("%s disappeared", p)
			continue
		}
		if was.link != now.link || (was.mode&fs.ModeSymlink) != (now.mode&fs.ModeSymlink) {
			t.Errorf("%s: link changed from %q to %q", p, was.link, now.link)
		}
		if added := now.mode.Perm() &^ was.mode.Perm(); added != 0 {
			t.Errorf("%s gained permission bits %04o (%04o -> %04o)", p, added, was.mode.Perm(), now.mode.Perm())
		}
		if special := fs.ModeSticky | fs.ModeSetuid | fs.ModeSetgid; was.mode&special != now.mode&special {
			t.Errorf("%s: special bits changed (%v -> %v)", p, was.mode, now.mode)
		}
	}
	for _, c := range []struct {
		name string
		want fs.FileMode
	}{{"readonly.json", 0o400}, {"none.json", 0o000}, {"group.json", 0o600}, {"rx", 0o500}, {"sticky", 0o700 | fs.ModeSticky}, {"", 0o700}} {
		fi, _ := os.Lstat(filepath.Join(f.state, c.name))
		if got := fi.Mode() & (fs.ModePerm | fs.ModeSticky); got != c.want {
			t.Errorf("%s: mode %v, want %v", c.name, got, c.want)
		}
	}
}

// TestFixRefusesVaultThroughSymlink: secrets never go into a vault whose
// files are links (an attacker's key, or a file elsewhere).
func TestFixRefusesVaultThroughSymlink(t *testing.T) {
	f := newFixture(t)
	f.caddyfile("http://:1 {\n\tbind 127.0.0.1\n\tclawguard {\n\t\ttoken " + literalToken + "\n\t}\n\trespond ok\n}\n")
	must(t, os.Symlink(filepath.Join(t.TempDir(), "elsewhere.json"), filepath.Join(f.state, "vault.json")))
	rep := f.run()
	if _, err := audit.PlanFix(context.Background(), f.opts, rep); err == nil || !strings.Contains(err.Error(), "vault.json is not a regular file") {
		t.Fatalf("want a refusal naming vault.json, got %v", err)
	}
}

// TestFixTailnetAuthKey: a literal auth key makes tsnet refuse the whole
// Caddyfile; moving it to the vault makes the file load again.
func TestFixTailnetAuthKey(t *testing.T) {
	f := newFixture(t)
	f.caddyfile("{\n\ttailnet {\n\t\tnode box {\n\t\t\tauth_key " + tailnetKey + "\n\t\t}\n\t}\n}\nhttp://:1 {\n\tbind tailnet/box\n\tclawguard {\n\t\ttoken {vault.t}\n\t}\n\trespond ok\n}\n")
	rep, _, _ := f.fix(false)
	wantFinding(t, findings(t, rep, "config.parse"), audit.SeverityWarn, "auth_key must be one placeholder")
	rep2 := f.run()
	wantNone(t, findings(t, rep2, "config.parse"))
	wantNone(t, findings(t, rep2, "secrets.plaintext"))
	if v, err := f.vault.Get("tailnet_box_auth_key"); err != nil || string(v) != tailnetKey {
		t.Fatalf("vault: %q, %v", v, err)
	}
	grepSecrets(t, []string{tailnetKey}, f.conf, f.state)
}

// TestFixKeepsAdminFingerprint: a literal token that an admins entry names
// by its fingerprint keeps that name, so the admin keeps access.
func TestFixKeepsAdminFingerprint(t *testing.T) {
	f := newFixture(t)
	fp := audit.TokenFingerprintForTest(literalToken)
	f.caddyfile("http://:1 {\n\tbind 127.0.0.1\n\tclawguard {\n\t\ttoken " + literalToken + "\n\t\tadmins token:" + fp + "\n\t}\n\trespond ok\n}\n")
	f.fix(false)
	cf, _ := os.ReadFile(f.opts.Config)
	if !strings.Contains(string(cf), "token {vault."+fp+"}") {
		t.Fatalf("want the token stored as %s:\n%s", fp, cf)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
