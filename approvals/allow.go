package approvals

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrAllowAlwaysRefused wraps the reasons allow-always is refused for an
// ask (a bare shell, a pattern that admits any code, …); the ask stays
// pending, so the person can allow once or deny instead.
var ErrAllowAlwaysRefused = errors.New("allow-always refused")

// probes are argument strings that an args pattern for a shell or
// interpreter must not match (other than the request's own arguments): a
// pattern that does would let the program run code nobody saw. The
// anchor's #23276 recorded /bin/zsh with no pattern at all.
var probes = []string{
	"", "-", "-s", "-i",
	"-c clawguard-probe", "-e clawguard-probe", "-r clawguard-probe",
	"--eval clawguard-probe", "-m clawguard-probe", "clawguard-probe",
}

// allowAlwaysEntry returns the entry allow-always records for an asked
// decision: the resolved program and args pattern (exactly these arguments
// unless pattern widens it), or why it must not be recorded.
func allowAlwaysEntry(d *Decision, pattern string) (Entry, error) {
	if d.Resolved == "" {
		return Entry{}, fmt.Errorf("%w: the program was not resolved", ErrAllowAlwaysRefused)
	}
	if d.hidden != "" {
		return Entry{}, fmt.Errorf("%w: %s, which no args pattern matches; allow once or deny", ErrAllowAlwaysRefused, d.hidden)
	}
	if len(d.unsafeEnv) > 0 {
		return Entry{}, fmt.Errorf("%w: the request sets %s and an entry cannot pin their values; allow once, or add an entry with an env list by hand", ErrAllowAlwaysRefused, strings.Join(d.unsafeEnv, ", "))
	}
	joined := JoinArgs(d.Args)
	if pattern == "" {
		pattern = ExactArgs(d.Args)
	}
	re, err := compileArgs("args", pattern)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrAllowAlwaysRefused, err)
	}
	if !re.MatchString(joined) {
		return Entry{}, fmt.Errorf("%w: pattern %s does not match this request's argument string %q", ErrAllowAlwaysRefused, pattern, joined)
	}
	if d.class != classPlain {
		name, args, prefixes := d.Resolved, d.Args, []string{""}
		runsCode := true // without an operand it would run what it reads
		if multicall[family(d.Resolved)] && len(args) > 0 {
			// A multicall binary acts as the applet its first argument
			// names. A pattern admitting the applet "sh -c …" (or any
			// other code-running applet) admits any code, so the probes
			// are tried behind every such name; the applet's own
			// arguments need an operand only if it runs code itself.
			name, args, prefixes = d.Resolved+" "+args[0], args[1:], runnerNames
			runsCode = classify(d.Args[0], d.Args[0]) != classPlain
		}
		if runsCode && !hasOperand(args) {
			return Entry{}, fmt.Errorf("%w: %s runs whatever it reads from stdin or a terminal; allow once or deny", ErrAllowAlwaysRefused, strings.TrimSpace(name+" "+Quote(args)))
		}
		for _, pre := range prefixes {
			for _, p := range probes {
				s := strings.TrimSpace(pre + " " + p)
				if s != joined && re.MatchString(s) {
					return Entry{}, fmt.Errorf("%w: pattern %s would let %s run any code (it matches %q); use a narrower pattern", ErrAllowAlwaysRefused, pattern, name, s)
				}
			}
		}
	}
	return Entry{Path: d.Resolved, Args: pattern}, nil
}

// runnerNames are the programs whose arguments can carry code: the probes
// of a multicall binary's pattern are tried behind each of them.
var runnerNames = func() []string {
	var names []string
	for _, m := range []map[string]bool{interpreters, codeRunners, multicall} {
		for n := range m {
			names = append(names, n)
		}
	}
	for n := range wrappers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}()

// hasOperand reports whether some argument is not an option: a script,
// inline code after -c, an applet name. Without one, an interpreter reads
// its program from stdin.
func hasOperand(args []string) bool {
	for _, a := range args {
		if a != "" && a[0] != '-' && a[0] != '+' {
			return true
		}
	}
	return false
}
