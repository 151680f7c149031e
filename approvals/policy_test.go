package approvals

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testRoot builds a small root filesystem: /bin is a link to usr/bin (as on
// merged-/usr systems), sh links to dash, python3 to python3.11, and a few
// traps: /tmp/ls links to rm, /work/env is a program merely named env.
func testRoot(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "usr/local/bin/sub", "usr/sbin", "tmp/bb", "work", "opt/tools/x"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe := func(p string) {
		if err := os.WriteFile(filepath.Join(root, p), []byte("#!/bin/true\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []string{"ls", "cat", "git", "rm", "env", "nice", "timeout", "nohup", "stdbuf",
		"setsid", "ionice", "bash", "dash", "python3.11", "perl", "node", "awk", "sed", "sort",
		"busybox", "true", "echo", "xargs", "sudo"} {
		exe("usr/bin/" + b)
	}
	exe("usr/local/bin/foo")
	exe("usr/local/bin/sub/foo")
	exe("opt/tools/x/run-a")
	exe("work/tool")
	exe("work/env")
	if err := os.WriteFile(filepath.Join(root, "usr/bin/data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	link("usr/bin", "bin")
	link("dash", "usr/bin/sh")
	link("python3.11", "usr/bin/python3")
	link("/usr/bin/rm", "tmp/ls")             // absolute: must stay inside root
	link("/../../../../usr/bin/ls", "tmp/up") // ".." cannot climb out of root
	link("/usr/bin/dpkg", "tmp/hostonly")     // exists on the host, not in root
	link("/usr/bin/busybox", "tmp/bb/sh")     // multicall applet link
	link("/proc/self/fd/0", "tmp/fd0")        // a magic link
	link("loop2", "tmp/loop1")                // a symlink loop
	link("loop1", "tmp/loop2")                //
	link("../../bin/ls", "usr/local/bin/ls")  // relative link into /usr/bin
	return root
}

const testConfig = `{
  "version": 1,
  "defaults": {"mode": "ask"},
  "agents": {
    "*": {"allow": [{"path": "/usr/bin/git", "args": "^(status|log|diff)( .*)?$"}]},
    "main": {"mode": "allowlist", "allow": [
      {"path": "/usr/bin/ls"},
      {"path": "/usr/bin/bash"},
      {"path": "/usr/bin/rm", "args": "^-f /work/[a-z]+\\.tmp$"},
      {"path": "/usr/bin/sort", "args": "^(-r|-n|--reverse|--numeric-sort)( (-r|-n|--reverse|--numeric-sort))*( [^-' ][^ ']*)*$"},
      {"path": "/usr/bin/python3.11", "args": "^-c print\\(1\\)$"},
      {"path": "/usr/local/bin/*"},
      {"path": "/opt/**/run-*"},
      {"path": "/usr/bin/node"},
      {"path": "/usr/bin/awk"},
      {"path": "/usr/bin/true", "env": ["GOFLAGS", "MY_*"]},
      {"path": "/usr/bin/echo", "args": "^hello( [a-z]+)*$"},
      {"path": "/usr/bin/busybox"},
      {"path": "/usr/bin/xargs", "args": "^-0 ls$"},
      {"path": "/bin/cat"}
    ]},
    "asker": {"allow": [{"path": "/usr/bin/ls"}]},
    "ops": {"mode": "allowlist", "elevated": true, "allow": [{"path": "/usr/bin/ls"}]},
    "yolo": {"mode": "full"}
  }
}`

func mustPolicy(t testing.TB, js string) *Policy {
	t.Helper()
	cfg, err := Parse([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEvaluateTable(t *testing.T) {
	root := testRoot(t)
	p := mustPolicy(t, testConfig)
	const path = "/usr/local/bin:/usr/bin"
	type tc struct {
		name     string
		agent    string // default main
		target   Target
		argv     []string
		cwd      string // default /work
		env      map[string]string
		want     Verdict
		resolved string
		rule     string
		reason   string // substring of the reason
	}
	cases := []tc{
		// allowlist hits and misses
		{name: "hit by PATH", argv: []string{"ls", "-la"}, want: Allow, resolved: "/usr/bin/ls", rule: "agents.main.allow[0]"},
		{name: "hit through linked /bin", argv: []string{"/bin/ls"}, want: Allow, resolved: "/usr/bin/ls", rule: "agents.main.allow[0]"},
		{name: "relative link in PATH dir", argv: []string{"/usr/local/bin/ls"}, want: Allow, resolved: "/usr/bin/ls", rule: "agents.main.allow[0]"},
		{name: "miss in allowlist mode", argv: []string{"/usr/bin/dash"}, want: Deny, resolved: "/usr/bin/dash", reason: "no allow entry matches /usr/bin/dash"},
		{name: "entry naming the linked dir is explained", argv: []string{"cat", "x"}, want: Deny, resolved: "/usr/bin/cat", reason: "entries must name the resolved path /usr/bin/cat"},
		{name: "not found", argv: []string{"nosuch"}, want: Deny, reason: "not found in PATH"},
		{name: "not executable", argv: []string{"/usr/bin/data"}, want: Deny, reason: "not executable"},
		{name: "directory", argv: []string{"/usr/bin"}, want: Deny, reason: "directory"},
		{name: "symlink loop", argv: []string{"/tmp/loop1"}, want: Deny, reason: "too many levels"},
		{name: "magic link under /proc", argv: []string{"/proc/self/exe"}, want: Deny, reason: "under /proc"},
		{name: "link into /proc", argv: []string{"/tmp/fd0"}, want: Deny, reason: "under /proc"},
		// symlinks are judged by their target
		{name: "symlink to a non-allowed binary", argv: []string{"/tmp/ls"}, want: Deny, resolved: "/usr/bin/rm"},
		{name: "absolute symlink stays in root", argv: []string{"/tmp/up"}, want: Allow, resolved: "/usr/bin/ls"},
		{name: "symlink to a host-only file", argv: []string{"/tmp/hostonly"}, want: Deny, reason: "no such file"},
		// relative and ./ paths
		{name: "./ path", argv: []string{"./tool"}, want: Deny, resolved: "/work/tool"},
		{name: "../ path", argv: []string{"../usr/bin/ls"}, want: Allow, resolved: "/usr/bin/ls"},
		{name: "relative path in other cwd", cwd: "/usr/bin", argv: []string{"./ls"}, want: Allow, resolved: "/usr/bin/ls"},
		// wrappers
		{name: "env VAR=val rm is judged as rm", argv: []string{"env", "FOO=1", "rm", "-rf", "/"}, want: Deny, resolved: "/usr/bin/rm"},
		{name: "env rm in ask mode asks about rm", agent: "asker", argv: []string{"env", "FOO=1", "rm", "-rf", "/"}, want: Ask, resolved: "/usr/bin/rm"},
		{name: "env with safe var", argv: []string{"env", "LANG=C", "ls"}, want: Allow, resolved: "/usr/bin/ls"},
		{name: "env with unsafe var", argv: []string{"env", "LD_PRELOAD=/tmp/x.so", "ls"}, want: Deny, resolved: "/usr/bin/ls", reason: "sets LD_PRELOAD"},
		{name: "env -i then absolute", argv: []string{"env", "-i", "/usr/bin/ls"}, want: Allow, resolved: "/usr/bin/ls"},
		{name: "env -i clears PATH", argv: []string{"env", "-i", "ls"}, want: Deny, reason: "no PATH"},
		{name: "env -u PATH", argv: []string{"env", "-u", "PATH", "ls"}, want: Deny, reason: "no PATH"},
		{name: "env --unset abbreviated", argv: []string{"env", "--uns=PATH", "ls"}, want: Deny, reason: "no PATH"},
		{name: "env PATH= redirects lookup", argv: []string{"env", "PATH=/tmp", "ls"}, want: Deny, resolved: "/usr/bin/rm"},
		{name: "env -C changes cwd", argv: []string{"env", "-C", "/tmp", "./ls"}, want: Deny, resolved: "/usr/bin/rm"},
		{name: "env --chdir= changes cwd", argv: []string{"env", "--chdir=/usr/bin", "./ls"}, want: Allow, resolved: "/usr/bin/ls"},
		{name: "env clustered -iC", argv: []string{"env", "-iC/usr/bin", "./ls"}, want: Allow, resolved: "/usr/bin/ls"},
		{name: "env -uPATH attached", argv: []string{"env", "-uPATH", "ls"}, want: Deny, reason: "no PATH"},
		{name: "env -- then bash -c", argv: []string{"env", "--", "bash", "-c", "id"}, want: Deny, resolved: "/usr/bin/bash"},
		{name: "nice -n without value", argv: []string{"nice", "-n"}, want: Deny, resolved: "/usr/bin/nice", reason: "needs a value"},
		{name: "env -S not unwrapped", argv: []string{"env", "-S", "rm -rf /", "ls"}, want: Deny, resolved: "/usr/bin/env", reason: "env -S"},
		{name: "env --split abbreviated", argv: []string{"env", "--sp=rm -rf /"}, want: Deny, resolved: "/usr/bin/env", reason: "env -S"},
		{name: "env --argv0 refused", argv: []string{"env", "--argv0=sh", "busybox"}, want: Deny, resolved: "/usr/bin/env"},
		{name: "env ambiguous option", argv: []string{"env", "--de", "ls"}, want: Deny, resolved: "/usr/bin/env", reason: "ambiguous"},
		{name: "env - is -i", argv: []string{"env", "-", "/usr/bin/ls"}, want: Allow, resolved: "/usr/bin/ls"},
		{name: "env alone", argv: []string{"env"}, want: Deny, resolved: "/usr/bin/env", reason: "runs no command"},
		{name: "nested wrappers", argv: []string{"nice", "-n", "5", "timeout", "--sig=KILL", "-k", "1", "5", "nohup", "stdbuf", "-oL", "setsid", "-f", "ionice", "-c3", "ls"}, want: Allow, resolved: "/usr/bin/ls"},
		{name: "nice legacy adjustment", argv: []string{"nice", "-5", "ls"}, want: Allow, resolved: "/usr/bin/ls"},
		{name: "timeout runs rm", argv: []string{"timeout", "5", "rm", "-rf", "/"}, want: Deny, resolved: "/usr/bin/rm"},
		{name: "timeout -- duration", argv: []string{"timeout", "--", "5", "ls"}, want: Allow, resolved: "/usr/bin/ls"},
		{name: "ionice -p refused", argv: []string{"ionice", "-p", "1", "ls"}, want: Deny, resolved: "/usr/bin/ionice"},
		{name: "a program merely named env", argv: []string{"/work/env", "ls"}, want: Deny, resolved: "/work/env"},
		// shells and interpreters
		{name: "bash script", argv: []string{"bash", "script.sh"}, want: Allow, resolved: "/usr/bin/bash", rule: "agents.main.allow[1]"},
		{name: "bash -c needs a pattern", argv: []string{"bash", "-c", "ls"}, want: Deny, resolved: "/usr/bin/bash", reason: "inline code"},
		{name: "bash -xc clustered", argv: []string{"bash", "-xc", "ls"}, want: Deny, resolved: "/usr/bin/bash"},
		{name: "bash options before script", argv: []string{"bash", "--norc", "script.sh"}, want: Deny, resolved: "/usr/bin/bash"},
		{name: "bash +o", argv: []string{"bash", "+o", "posix", "-c", "ls"}, want: Deny, resolved: "/usr/bin/bash"},
		{name: "bare bash reads stdin", argv: []string{"bash"}, want: Deny, resolved: "/usr/bin/bash"},
		{name: "bash -s reads stdin", argv: []string{"bash", "-s"}, want: Deny, resolved: "/usr/bin/bash"},
		{name: "bash /dev/stdin", argv: []string{"bash", "/dev/stdin"}, want: Deny, resolved: "/usr/bin/bash"},
		{name: "bash ../dev/fd/0", cwd: "/work", argv: []string{"bash", "../dev/fd/0"}, want: Deny, resolved: "/usr/bin/bash"},
		{name: "env unwraps to bash -c", argv: []string{"env", "bash", "-c", "ls"}, want: Deny, resolved: "/usr/bin/bash"},
		{name: "python -c with exact pattern", argv: []string{"python3", "-c", "print(1)"}, want: Allow, resolved: "/usr/bin/python3.11", rule: "agents.main.allow[4]"},
		{name: "python -c other code", argv: []string{"python3", "-c", "print(2)"}, want: Deny, resolved: "/usr/bin/python3.11"},
		{name: "node script", argv: []string{"node", "app.js", "--eval", "x"}, want: Allow, resolved: "/usr/bin/node"},
		{name: "node -e", argv: []string{"node", "-e", "1"}, want: Deny, resolved: "/usr/bin/node"},
		{name: "node --eval=", argv: []string{"node", "--eval=1"}, want: Deny, resolved: "/usr/bin/node"},
		{name: "node - (stdin)", argv: []string{"node", "-"}, want: Deny, resolved: "/usr/bin/node"},
		{name: "awk without pattern", argv: []string{"awk", "BEGIN{system(\"sh\")}"}, want: Deny, resolved: "/usr/bin/awk", reason: "takes code"},
		{name: "xargs exact pattern", argv: []string{"xargs", "-0", "ls"}, want: Allow, resolved: "/usr/bin/xargs"},
		{name: "busybox applet via link", argv: []string{"/tmp/bb/sh", "-c", "ls"}, want: Deny, resolved: "/usr/bin/busybox"},
		{name: "busybox directly", argv: []string{"busybox", "sh", "-c", "ls"}, want: Deny, resolved: "/usr/bin/busybox"},
		// argument patterns: whole-string match, tricks do not help
		{name: "args exact", argv: []string{"rm", "-f", "/work/a.tmp"}, want: Allow, resolved: "/usr/bin/rm", rule: "agents.main.allow[2]"},
		{name: "args prefix does not match", argv: []string{"rm", "-f", "/work/a.tmp", "/etc/passwd"}, want: Deny, resolved: "/usr/bin/rm"},
		{name: "args newline", argv: []string{"rm", "-f", "/work/a.tmp\n/etc"}, want: Deny, reason: "U+000A"},
		{name: "space inside one argument", argv: []string{"echo", "hello world"}, want: Deny, resolved: "/usr/bin/echo"},
		{name: "two arguments", argv: []string{"echo", "hello", "world"}, want: Allow, resolved: "/usr/bin/echo"},
		{name: "no-break space", argv: []string{"echo", "hello\u00a0world"}, want: Deny, reason: "U+00A0"},
		{name: "bidi override", argv: []string{"echo", "hello", "abc\u202e"}, want: Deny, reason: "U+202E"},
		{name: "zero-width space", argv: []string{"echo", "hello", "wor\u200bld"}, want: Deny, reason: "U+200B"},
		{name: "hangul filler", argv: []string{"echo", "hello", "\u3164"}, want: Deny, reason: "U+3164"},
		{name: "ideographic space", argv: []string{"echo", "hello\u3000world"}, want: Deny, reason: "U+3000"},
		{name: "tab", argv: []string{"echo", "hello\tworld"}, want: Deny, reason: "U+0009"},
		{name: "invalid UTF-8", argv: []string{"echo", "hello", "w\xffd"}, want: Deny, reason: "0xff"},
		{name: "NUL", argv: []string{"echo", "hello\x00"}, want: Deny, reason: "NUL"},
		{name: "empty argument is quoted", argv: []string{"echo", "hello", ""}, want: Deny, resolved: "/usr/bin/echo"},
		{name: "homoglyph letter", argv: []string{"echo", "hеllo"}, want: Deny, resolved: "/usr/bin/echo"},
		// long-option abbreviation (CVE-2026-28363)
		{name: "sort safe options", argv: []string{"sort", "-r", "--numeric-sort", "file"}, want: Allow, resolved: "/usr/bin/sort"},
		{name: "sort --compress-prog", argv: []string{"sort", "--compress-prog=sh", "file"}, want: Deny},
		{name: "sort --compress-prog separate", argv: []string{"sort", "-r", "--compress-prog", "sh"}, want: Deny},
		{name: "sort option after operand", argv: []string{"sort", "-r", "file", "--compress-prog=sh"}, want: Deny},
		{name: "sort abbreviation of a safe option", argv: []string{"sort", "--rev", "file"}, want: Deny},
		{name: "sort clustered", argv: []string{"sort", "-rT/tmp"}, want: Deny},
		{name: "sort operand hiding an option", argv: []string{"sort", "-r", "x --compress-program=sh"}, want: Deny},
		// globs
		{name: "glob * in segment", argv: []string{"foo"}, want: Allow, resolved: "/usr/local/bin/foo", rule: "agents.main.allow[5]"},
		{name: "glob * not across /", argv: []string{"/usr/local/bin/sub/foo"}, want: Deny},
		{name: "glob **", argv: []string{"/opt/tools/x/run-a"}, want: Allow, rule: "agents.main.allow[6]"},
		// environment
		{name: "entry env list", argv: []string{"true"}, env: map[string]string{"GOFLAGS": "-v", "MY_X": "1", "TERM": "dumb"}, want: Allow},
		{name: "request env not listed", argv: []string{"true"}, env: map[string]string{"NODE_OPTIONS": "--require=/tmp/x"}, want: Deny, reason: "sets NODE_OPTIONS"},
		{name: "request PATH is a variable too", argv: []string{"/usr/bin/ls"}, env: map[string]string{"PATH": "/usr/bin"}, want: Deny, reason: "sets PATH"},
		// modes, agents, targets
		{name: "ask mode miss", agent: "asker", argv: []string{"cat"}, want: Ask, resolved: "/usr/bin/cat", reason: "a person must decide"},
		{name: "ask mode hit", agent: "asker", argv: []string{"ls"}, want: Allow},
		{name: "unknown agent uses * and defaults", agent: "other", argv: []string{"git", "status", "-s"}, want: Allow, rule: "agents.*.allow[0]"},
		{name: "unknown agent miss asks", agent: "other", argv: []string{"git", "push"}, want: Ask, reason: "does not match agents.*.allow[0]"},
		{name: "named agent gets * entries", argv: []string{"git", "log"}, want: Allow, rule: "agents.*.allow[0]"},
		{name: "host needs elevated", target: TargetHost, argv: []string{"ls"}, want: Deny, reason: "elevated is off"},
		{name: "host with elevated", agent: "ops", target: TargetHost, argv: []string{"ls"}, want: Allow},
		{name: "full mode", agent: "yolo", argv: []string{"bash", "-c", "rm -rf /"}, want: Allow, resolved: "/usr/bin/bash"},
		{name: "full mode still no host", agent: "yolo", target: TargetHost, argv: []string{"ls"}, want: Deny, reason: "elevated is off"},
		{name: "relative cwd", cwd: "work", argv: []string{"ls"}, want: Deny, reason: "cwd"},
		{name: "bad agent name", agent: "../x", argv: []string{"ls"}, want: Deny, reason: "agent name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := Request{Agent: c.agent, Argv: c.argv, Cwd: c.cwd, Env: c.env, Target: c.target,
				Path: path, Resolver: RootResolver{Root: root}}
			if req.Agent == "" {
				req.Agent = "main"
			}
			if req.Cwd == "" {
				req.Cwd = "/work"
			}
			d := p.Evaluate(req)
			if d.Verdict != c.want {
				t.Fatalf("verdict %s, want %s (reason: %s)", d.Verdict, c.want, d.Reason)
			}
			if c.resolved != "" && d.Resolved != c.resolved {
				t.Errorf("resolved %q, want %q", d.Resolved, c.resolved)
			}
			if c.rule != "" && d.Rule != c.rule {
				t.Errorf("rule %q, want %q", d.Rule, c.rule)
			}
			if c.want != Allow && d.Rule != "" {
				t.Errorf("rule %q set on %s", d.Rule, d.Verdict)
			}
			if !strings.Contains(d.Reason, c.reason) || d.Reason == "" {
				t.Errorf("reason %q does not contain %q", d.Reason, c.reason)
			}
			if strings.Contains(d.Reason, root) {
				t.Errorf("reason leaks the sandbox root: %q", d.Reason)
			}
		})
	}
}

func TestEvaluateHostBinaries(t *testing.T) {
	// The real host filesystem through HostResolver: /usr/bin/env and
	// /usr/bin/timeout are real coreutils here.
	for _, b := range []string{"/usr/bin/env", "/usr/bin/timeout", "/usr/bin/ls"} {
		if _, err := os.Stat(b); err != nil {
			t.Skipf("%s not present: %v", b, err)
		}
	}
	ls, err := filepath.EvalSymlinks("/usr/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	p := mustPolicy(t, `{"version":1,"agents":{"ops":{"mode":"allowlist","elevated":true,"allow":[{"path":"`+ls+`"}]}}}`)
	req := Request{Agent: "ops", Target: TargetHost, Cwd: "/", Path: "/usr/bin:/bin",
		Argv: []string{"env", "-u", "FOO", "timeout", "--kill=1", "5", "ls", "-l"}}
	d := p.Evaluate(req)
	if d.Verdict != Allow || d.Resolved != ls || !d.Elevated {
		t.Fatalf("got %+v", d)
	}
	if len(d.Wrappers) != 2 || d.Exec != "/usr/bin/env" {
		t.Fatalf("wrappers %v exec %q", d.Wrappers, d.Exec)
	}
	req.Argv = []string{"env", "timeout", "5", "sh", "-c", "ls"}
	if d := p.Evaluate(req); d.Verdict != Deny {
		t.Fatalf("sh -c through wrappers: %+v", d)
	}
}

func TestSandboxNeedsResolver(t *testing.T) {
	p := mustPolicy(t, `{"version":1}`)
	d := p.Evaluate(Request{Agent: "a", Argv: []string{"ls"}, Cwd: "/", Path: "/bin"})
	if d.Verdict != Deny || !strings.Contains(d.Reason, "resolver") {
		t.Fatalf("got %+v", d)
	}
}

func TestJoinArgsUnambiguous(t *testing.T) {
	cases := map[string][]string{
		"a b":               {"a", "b"},
		"'a b'":             {"a b"},
		"a ''":              {"a", ""},
		`'it'\''s'`:         {"it's"},
		"--x=1 'y z' w":     {"--x=1", "y z", "w"},
		"'' '' ''":          {"", "", ""},
		`''\''' ''\'''\'''`: {"'", "''"},
	}
	for want, args := range cases {
		if got := JoinArgs(args); got != want {
			t.Errorf("JoinArgs(%q) = %q, want %q", args, got, want)
		}
	}
}

func TestQuoteShowsHidden(t *testing.T) {
	cases := map[string][]string{
		`ls -la`:                     {"ls", "-la"},
		`echo 'a b' ''`:              {"echo", "a b", ""},
		`echo $'a\u202Eb'`:           {"echo", "a\u202eb"},
		`echo $'x\ny' $'\xff'`:       {"echo", "x\ny", "\xff"},
		`echo $'it\'s\u00A0'`:        {"echo", "it's\u00a0"},
		`'FOO=1' x`:                  {"FOO=1", "x"},
		`echo 'héllo'`:               {"echo", "héllo"},
		`echo $'\U000E0041'`:         {"echo", "\U000E0041"},
		`echo '$(rm -rf /)' '*' '~'`: {"echo", "$(rm -rf /)", "*", "~"},
	}
	for want, argv := range cases {
		if got := Quote(argv); got != want {
			t.Errorf("Quote(%q) = %s, want %s", argv, got, want)
		}
	}
}

func TestExactArgsMatchesOnlyItself(t *testing.T) {
	args := []string{"-c", "print(1) and [x for x in y]", "a.b*c", "$HOME", "it's"}
	re, err := compileArgs("t", ExactArgs(args))
	if err != nil {
		t.Fatal(err)
	}
	if !re.MatchString(JoinArgs(args)) {
		t.Fatalf("%s does not match its own arguments", ExactArgs(args))
	}
	for _, other := range [][]string{
		{"-c", "print(1) and [x for x in y]", "aXb*c", "$HOME", "it's"},
		{"-c", "print(1) and [x for x in y]", "a.b*c", "$HOME"},
		{"-c", "print(1)", "and", "[x for x in y]", "a.b*c", "$HOME", "it's"},
	} {
		if re.MatchString(JoinArgs(other)) {
			t.Errorf("%s matches %q", ExactArgs(args), other)
		}
	}
}

func TestArgsPatternCannotEscapeAnchors(t *testing.T) {
	if _, err := compileArgs("x", "a)|(b"); err == nil {
		t.Fatal("unbalanced pattern accepted")
	}
	re, err := compileArgs("x", "status|log")
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]bool{"status": true, "log": true, "status --output=/etc/x": false, "x log": false} {
		if re.MatchString(s) != want {
			t.Errorf("status|log on %q: %v", s, !want)
		}
	}
}
