package approvals

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParseConfig: any input either parses into a config that validates
// and survives Marshal/Parse unchanged, or is refused with a ConfigError;
// never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(designExample))
	f.Add([]byte(testConfig))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"defaults":{"ask_fallback":"full"}}`))
	f.Add([]byte(`{"version":1,"agents":{"a":{"allow":[{"path":"/x/**/y*","args":"a)|(b","env":["X*"]}]}}}`))
	f.Add([]byte(`{"version":1,"Version":1,"agents":{"*":{"elevated":true}}}`))
	f.Add([]byte(`{"version":1,"agents":{"*":{"node":true},"a":{"node":false,"mode":"full"}}}`))
	f.Add([]byte(`{"version":1,"defaults":{"ask_timeout":"1h30m"}} `))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			if _, ok := err.(*ConfigError); !ok {
				t.Fatalf("error %T %v is not a ConfigError", err, err)
			}
			return
		}
		if _, err := NewPolicy(cfg); err != nil {
			t.Fatalf("parsed config does not compile: %v", err)
		}
		b, err := cfg.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(b)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
		if !reflect.DeepEqual(normalize(cfg), normalize(again)) {
			t.Fatalf("round trip differs:\n%s", b)
		}
	})
}

// normalize maps empty slices to nil so DeepEqual compares content.
func normalize(c *Config) *Config {
	for _, a := range c.Agents {
		if len(a.Allow) == 0 {
			a.Allow = nil
		}
		for i := range a.Allow {
			if len(a.Allow[i].Env) == 0 {
				a.Allow[i].Env = nil
			}
		}
	}
	if len(c.Agents) == 0 {
		c.Agents = nil
	}
	return c
}

// FuzzEvaluate feeds arbitrary argv (fields separated by \x1f) through
// resolution, unwrapping and matching: never a panic, and an allow always
// names the rule and a resolved program the rule's path matches.
func FuzzEvaluate(f *testing.F) {
	root := testRoot(f)
	p := mustPolicy(f, testConfig)
	for _, s := range []string{
		"ls\x1f-la", "env\x1fFOO=1\x1frm\x1f-rf\x1f/", "bash\x1f-c\x1fls", "nice\x1f-n\x1f5\x1ftimeout\x1f--sig=KILL\x1f5\x1fls",
		"env\x1f--uns=PATH\x1fls", "env\x1f-iC/usr/bin\x1f./ls", "sort\x1f--compress-prog=sh", "echo\x1fhello\u00a0x",
		"/tmp/bb/sh\x1f-c\x1fx", "../usr/bin/ls", "env\x1f-\x1f-", "timeout\x1f-k", "stdbuf\x1f-o", "nice\x1f-",
	} {
		f.Add(s, "main")
	}
	f.Add("git\x1fstatus", "other")
	f.Fuzz(func(t *testing.T, argv, agent string) {
		req := Request{Agent: agent, Argv: strings.Split(argv, "\x1f"), Cwd: "/work", Path: "/usr/local/bin:/usr/bin",
			Resolver: RootResolver{Root: root}}
		d := p.Evaluate(req)
		switch d.Verdict {
		case Allow:
			if d.Mode != ModeFull && (d.Rule == "" || d.Resolved == "") {
				t.Fatalf("allow without rule: %+v", d)
			}
			if strings.HasPrefix(d.Resolved, root) {
				t.Fatalf("resolved outside the target's view: %s", d.Resolved)
			}
		case Ask, Deny:
			if d.Rule != "" {
				t.Fatalf("%s with rule %s", d.Verdict, d.Rule)
			}
		default:
			t.Fatalf("verdict %q", d.Verdict)
		}
		if d.Reason == "" {
			t.Fatal("no reason")
		}
	})
}

// FuzzQuote: Quote's output never contains a hidden character, and
// JoinArgs never lets two argument lists collide.
func FuzzQuote(f *testing.F) {
	f.Add("a b", "c")
	f.Add("a", "b c")
	f.Add("it's", "")
	f.Add("\u202e", "\xff\n")
	f.Fuzz(func(t *testing.T, a, b string) {
		q := Quote([]string{a, b})
		if h := findHidden([]string{q}); h != "" {
			t.Fatalf("Quote(%q, %q) = %q still has hidden characters: %s", a, b, q, h)
		}
		if a != "" && JoinArgs([]string{a, b}) == JoinArgs([]string{a + " " + b}) {
			t.Fatalf("JoinArgs collision for %q %q", a, b)
		}
	})
}
