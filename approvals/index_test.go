package approvals

import "testing"

// TestIndexMatchesLinearScan checks the indexed lookup against matching
// every entry in turn.
func TestIndexMatchesLinearScan(t *testing.T) {
	paths := []string{
		"/usr/bin/git", "/usr/bin/gitk", "/usr/bin/g", "/usr/local/bin/x", "/srv", "/srv/a/b/bin/run-x",
		"/srv/bin/run-", "/opt/a/run-b", "/opt/run-b", "/a*b", "/usr/bin/glob3-x", "/x/y/z",
	}
	entries := []string{
		"/usr/bin/git", "/usr/bin/gi*", "/usr/bin/*", "/usr/*/git", "/**", "/srv/**", "/srv/**/bin/run-*",
		"/opt/**/run-*", "/opt/*/run-*", "/*", "/usr/bin/glob*-*", "/**/z", "/x/**/z", "/usr/local/bin/x",
	}
	for _, e := range entries {
		var ix ruleIndex
		g, prefix, err := compileGlob("p", e)
		if err != nil {
			t.Fatal(err)
		}
		r := &rule{name: e, entry: Entry{Path: e}, glob: g}
		ix.add(r, prefix)
		for _, p := range paths {
			linear := e == p
			if g != nil {
				linear = g.MatchString(p)
			}
			got, _ := ix.find(p, func(*rule) bool { return true })
			if (got != nil) != linear {
				t.Errorf("entry %s, path %s: index %v, linear %v", e, p, got != nil, linear)
			}
		}
	}
}

func TestGlobSemantics(t *testing.T) {
	cases := []struct {
		glob, path string
		want       bool
	}{
		{"/usr/bin/*", "/usr/bin/ls", true},
		{"/usr/bin/*", "/usr/bin/x/ls", false},
		{"/usr/**", "/usr/bin/x/ls", true},
		{"/usr/**", "/usr", true},
		{"/usr/**/ls", "/usr/ls", true},
		{"/usr/**/ls", "/usr/a/b/ls", true},
		{"/usr/**/ls", "/usr/a/b/lsx", false},
		{"/opt/*-tool", "/opt/a-tool", true},
		{"/opt/*-tool", "/opt/-tool", true},
		{"/opt/*-tool", "/opt/a/b-tool", false},
		{"/a.b/*", "/axb/c", false},
		{"/a+b/c*", "/a+b/cd", true},
	}
	for _, c := range cases {
		g, _, err := compileGlob("p", c.glob)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.MatchString(c.path); got != c.want {
			t.Errorf("%s on %s: %v", c.glob, c.path, got)
		}
	}
}

func TestRuleOrderIsConfigOrder(t *testing.T) {
	// The first matching entry in file order is reported, whether it is
	// an exact path or a glob.
	p := mustPolicy(t, `{"version":1,"defaults":{"mode":"allowlist"},"agents":{"main":{"allow":[
		{"path":"/usr/bin/*","args":"^-x$"},{"path":"/usr/**"},{"path":"/usr/bin/ls"}]}}}`)
	root := testRoot(t)
	for argv, want := range map[string]string{"-x": "agents.main.allow[0]", "-y": "agents.main.allow[1]"} {
		d := p.Evaluate(Request{Agent: "main", Argv: []string{"ls", argv}, Cwd: "/", Path: "/usr/bin", Resolver: RootResolver{Root: root}})
		if d.Rule != want {
			t.Errorf("%s: rule %s, want %s", argv, d.Rule, want)
		}
	}
}
