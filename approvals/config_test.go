package approvals

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawguard/clawguard/wire"
)

// designExample is the file shown in docs/design.md.
const designExample = `{
  "version": 1,
  "defaults": {"mode": "ask", "ask_timeout": "2m", "ask_fallback": "deny"},
  "agents": {
    "*":    {"allow": [{"path": "/usr/bin/git", "args": "^(status|log|diff)( |$)"}]},
    "main": {"mode": "allowlist", "elevated": false, "allow": [{"path": "/bin/ls"}]}
  }
}`

func TestParseDesignExample(t *testing.T) {
	cfg, err := Parse([]byte(designExample))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.AskTimeout() != 2*time.Minute || p.AskFallback() != FallbackDeny {
		t.Fatalf("timeout %s fallback %s", p.AskTimeout(), p.AskFallback())
	}
	if m := p.agent("main").mode; m != ModeAllowlist {
		t.Fatalf("main mode %s", m)
	}
	if m := p.agent("other").mode; m != ModeAsk {
		t.Fatalf("other mode %s", m)
	}
	// Args patterns match the whole argument string: docs/design.md's
	// "^(status|log|diff)( |$)" allows those words alone, nothing after.
	root := testRoot(t)
	for args, want := range map[string]Verdict{"status": Allow, "log": Allow, "log --oneline": Ask, "push": Ask} {
		d := p.Evaluate(Request{Agent: "other", Argv: append([]string{"git"}, strings.Fields(args)...), Cwd: "/",
			Path: "/usr/bin", Resolver: RootResolver{Root: root}})
		if d.Verdict != want {
			t.Errorf("git %s: %s (%s)", args, d.Verdict, d.Reason)
		}
	}
	// Round trip: what Marshal writes parses back to the same config.
	b, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !reflect.DeepEqual(cfg, again) {
		t.Fatalf("round trip differs:\n%+v\n%+v\n%s", cfg, again, b)
	}
	if !strings.Contains(string(b), `"ask_timeout": "2m"`) {
		t.Fatalf("duration written as %s", b)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	cases := []struct{ js, want string }{
		{`{}`, "version: missing"},
		{`{"version":2}`, "version: 2 is not supported"},
		{`{"version":"1"}`, "version: must be an integer, not a string"},
		{`{"version":1.5}`, "version: must be an integer, not a number (1.5)"},
		{`[]`, "the document must be a JSON object, not an array"},
		{`{"version":1} x`, "invalid JSON at line 1, column 15"},
		{"{\"version\":1,\n\"defaults\": {\"mode\": ask}}", "invalid JSON at line 2, column 22"},
		{`{"version":1,"agent":{}}`, `agent: unknown field (known: version, defaults, agents)`},
		{`{"version":1,"Version":1}`, `Version: duplicate key (also written as "version")`},
		{`{"version":1,"defaults":{"mode":"ask","mode":"full"}}`, "defaults.mode: duplicate key"},
		{`{"version":1,"defaults":{"Mode":"full"}}`, "defaults.Mode: unknown field"},
		{`{"version":1,"defaults":{"mode":"yolo"}}`, `defaults.mode: "yolo" is not one of allowlist, ask, full`},
		{`{"version":1,"defaults":{"mode":null}}`, "defaults.mode: must be a string, not null"},
		{`{"version":1,"defaults":{"ask_fallback":"full"}}`, "defaults.ask_fallback: full is not allowed"},
		{`{"version":1,"defaults":{"ask_fallback":"ask"}}`, `defaults.ask_fallback: "ask" is not one of deny, allowlist`},
		{`{"version":1,"defaults":{"ask_timeout":"forever"}}`, `defaults.ask_timeout: "forever" is not a duration`},
		{`{"version":1,"defaults":{"ask_timeout":"0s"}}`, "defaults.ask_timeout: 0s is out of range"},
		{`{"version":1,"defaults":{"ask_timeout":"-1m"}}`, "defaults.ask_timeout: -1m is out of range"},
		{`{"version":1,"defaults":{"ask_timeout":"25h"}}`, "defaults.ask_timeout: 25h is out of range"},
		{`{"version":1,"defaults":[]}`, "defaults: must be a JSON object, not an array"},
		{`{"version":1,"agents":null}`, "agents: must be a JSON object, not null"},
		{`{"version":1,"agents":{"main":{"mode":"full","extra":1}}}`, "agents.main.extra: unknown field (known: mode, elevated, node, allow)"},
		{`{"version":1,"agents":{"main":{"elevated":"yes"}}}`, "agents.main.elevated: must be true or false, not a string"},
		{`{"version":1,"agents":{"*":{"elevated":true}}}`, "agents.*.elevated: elevated must be enabled per agent"},
		{`{"version":1,"agents":{"a b":{}}}`, `agents."a b": "a b" is not a valid agent name`},
		{`{"version":1,"agents":{"main":{"allow":{}}}}`, "agents.main.allow: must be a JSON array, not an object"},
		{`{"version":1,"agents":{"main":{"allow":[{"args":"x"}]}}}`, "agents.main.allow[0].path: missing"},
		{`{"version":1,"agents":{"main":{"allow":[{"path":5}]}}}`, "agents.main.allow[0].path: must be a string, not a number (5)"},
		{`{"version":1,"agents":{"main":{"allow":[{"path":"/a"},{"path":"/b"},{"path":"/bin/x","args":"(unclosed"}]}}}`,
			"agents.main.allow[2].args: bad regex: error parsing regexp: missing closing ): `(unclosed`"},
		{`{"version":1,"agents":{"main":{"allow":[{"path":"/x","args":"a)|(b"}]}}}`, "agents.main.allow[0].args: bad regex"},
		{`{"version":1,"agents":{"main":{"allow":[{"path":"/x","args":"(?=x)"}]}}}`, "agents.main.allow[0].args: bad regex"},
		{`{"version":1,"agents":{"main":{"allow":[{"path":"bin/ls"}]}}}`, `agents.main.allow[0].path: "bin/ls" is not an absolute path`},
		{`{"version":1,"agents":{"main":{"allow":[{"path":"/usr/bin/../bin/ls"}]}}}`, `agents.main.allow[0].path: "/usr/bin/../bin/ls" is not a clean path; write "/usr/bin/ls"`},
		{`{"version":1,"agents":{"main":{"allow":[{"path":"/usr/bin/l?"}]}}}`, `agents.main.allow[0].path: "/usr/bin/l?": "?" is not supported`},
		{`{"version":1,"agents":{"main":{"allow":[{"path":"/usr/**bin/x"}]}}}`, "** must be a whole path segment"},
		{`{"version":1,"agents":{"main":{"allow":[{"path":"/x","env":["OK","BAD-NAME"]}]}}}`, `agents.main.allow[0].env[1]: "BAD-NAME" is not a variable name`},
		{`{"version":1,"agents":{"main":{"allow":[{"path":"/x","env":"X"}]}}}`, "agents.main.allow[0].env: must be a JSON array, not a string"},
		{`{"version":1,"agents":{"main":{"allow":[{"path":"/x","Args":".*"}]}}}`, "agents.main.allow[0].Args: unknown field"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.js))
		if err == nil {
			t.Errorf("%s: accepted", c.js)
			continue
		}
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: error %T is not a *ConfigError", c.js, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got  %v\n want %s", c.js, err, c.want)
		}
	}
}

func TestLoadDefaultsAndPermissions(t *testing.T) {
	dir := t.TempDir()
	path := DefaultPath(dir)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.agent("x").mode != ModeAsk || p.AskFallback() != FallbackDeny || p.AskTimeout() != DefaultAskTimeout {
		t.Fatalf("defaults: %+v", p)
	}
	if err := Save(path, &Config{Version: 1, Defaults: Defaults{AskFallback: "full"}}); err == nil {
		t.Fatal("Save wrote an invalid config")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("invalid config left a file: %v", err)
	}
	if err := Save(path, &Config{Version: 1, Defaults: Defaults{Mode: ModeAllowlist}}); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", fi.Mode().Perm())
	}
	os.Chmod(path, 0o666)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Fatalf("world-writable file: %v", err)
	}
}

func TestStoreFollowsEditsAndFailsClosed(t *testing.T) {
	root := testRoot(t)
	path := filepath.Join(t.TempDir(), wire.FileApprovals)
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"version":1,"defaults":{"mode":"allowlist"},"agents":{"main":{"allow":[{"path":"/usr/bin/ls"}]}}}`)
	s, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Agent: "main", Argv: []string{"ls"}, Cwd: "/", Path: "/usr/bin", Resolver: RootResolver{Root: root}}
	if d := s.Evaluate(req); d.Verdict != Allow {
		t.Fatalf("before edit: %+v", d)
	}
	// Same size, same second: only the content changes.
	write(`{"version":1,"defaults":{"mode":"allowlist"},"agents":{"main":{"allow":[{"path":"/usr/bin/rm"}]}}}`)
	if d := s.Evaluate(req); d.Verdict != Deny {
		t.Fatalf("edit not seen: %+v", d)
	}
	// A broken edit denies everything with the file's error.
	write(`{"version":1,"defaults":{"mode":"full"},"agents":{"main":{"allow":[{"path":"usr/bin/ls"}]}}}`)
	d := s.Evaluate(req)
	if d.Verdict != Deny || !strings.Contains(d.Reason, "agents.main.allow[0].path") {
		t.Fatalf("broken file: %+v", d)
	}
	if _, err := s.AddEntry("main", Entry{Path: "/usr/bin/cat"}); err == nil {
		t.Fatal("AddEntry wrote over a broken file")
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), `"usr/bin/ls"`) {
		t.Fatalf("broken file was rewritten: %s", b)
	}
	if _, err := OpenStore(path); err == nil {
		t.Fatal("OpenStore accepted a broken file")
	}
}

func TestAddEntryKeepsConcurrentEdits(t *testing.T) {
	path := filepath.Join(t.TempDir(), wire.FileApprovals)
	if err := Save(path, &Config{Version: 1, Defaults: Defaults{Mode: ModeAllowlist}}); err != nil {
		t.Fatal(err)
	}
	// Two stores stand for two processes; each writes while the other
	// holds a stale copy in memory.
	a, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.AddEntry("main", Entry{Path: "/usr/bin/tool" + string(rune('a'+i))}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cfg.Agents["main"].Allow); n != 20 {
		t.Fatalf("%d entries survived, want 20", n)
	}
	if cfg.Defaults.Mode != ModeAllowlist {
		t.Fatal("defaults lost")
	}
	rule, err := a.AddEntry("main", Entry{Path: "/usr/bin/toola"})
	if err != nil || !strings.HasPrefix(rule, "agents.main.allow[") {
		t.Fatalf("duplicate add: %q %v", rule, err)
	}
	if cfg, _ := Load(path); len(cfg.Agents["main"].Allow) != 20 {
		t.Fatal("duplicate entry added")
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", fi.Mode().Perm())
	}
}
