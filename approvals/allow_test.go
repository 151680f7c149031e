package approvals

import (
	"strings"
	"testing"
)

// TestAllowAlwaysMulticall: busybox acts as the applet its first argument
// (or its link's name) names, so allow-always judges the applet. A bare
// shell applet, or a pattern that admits "sh -c <anything>" behind any
// applet name, is refused; exact arguments and patterns confined to a
// harmless applet are recorded.
func TestAllowAlwaysMulticall(t *testing.T) {
	p, err := NewPolicy(&Config{Version: Version})
	if err != nil {
		t.Fatal(err)
	}
	root := testRoot(t)
	for _, c := range []struct {
		argv    []string
		pattern string
		refused string // "" when recorded
	}{
		{[]string{"/tmp/bb/sh"}, "", "runs whatever it reads from stdin"},
		{[]string{"busybox", "sh"}, "", "runs whatever it reads from stdin"},
		{[]string{"busybox", "sh", "-s"}, "", "runs whatever it reads from stdin"},
		{[]string{"/tmp/bb/sh", "-c", "echo x"}, `^sh -c .*$`, `it matches "sh -c clawguard-probe"`},
		{[]string{"busybox", "sh", "-c", "echo x"}, `^sh -c .*$`, `it matches "sh -c clawguard-probe"`},
		{[]string{"busybox", "ls", "-l"}, `^(ls|sh -c .*)( .*)?$`, `it matches "sh -c clawguard-probe"`},
		{[]string{"busybox", "ls", "-l"}, `^.*$`, "would let /usr/bin/busybox ls run any code"},
		{[]string{"busybox", "ls", "-l"}, `^[a-z]+ .*$`, "run any code"},
		{[]string{"/tmp/bb/sh", "-c", "echo x"}, "", ""},
		{[]string{"busybox", "ls"}, "", ""},
		{[]string{"busybox", "ls", "-l"}, `^ls( -[a-z]+)*$`, ""},
		// Not multicall: the probes apply as before.
		{[]string{"bash", "-c", "echo x"}, `^-c .*$`, `it matches "-c clawguard-probe"`},
		{[]string{"bash"}, "", "runs whatever it reads"},
	} {
		d := p.Evaluate(Request{Agent: "main", Argv: c.argv, Cwd: "/work", Path: "/usr/bin", Resolver: RootResolver{Root: root}})
		if d.Verdict != Ask {
			t.Fatalf("%q: %s (%s), want ask", c.argv, d.Verdict, d.Reason)
		}
		e, err := allowAlwaysEntry(&d, c.pattern)
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%q %q: refused: %v", c.argv, c.pattern, err)
		case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("%q %q: got %+v, %v; want refusal containing %q", c.argv, c.pattern, e, err, c.refused)
		}
	}
}
