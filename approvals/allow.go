package approvals

import (
	"fmt"
	"strings"
)

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
		return Entry{}, fmt.Errorf("allow-always refused: the program was not resolved")
	}
	if d.hidden != "" {
		return Entry{}, fmt.Errorf("allow-always refused: %s, which no args pattern matches; allow once or deny", d.hidden)
	}
	if len(d.unsafeEnv) > 0 {
		return Entry{}, fmt.Errorf("allow-always refused: the request sets %s and an entry cannot pin their values; allow once, or add an entry with an env list by hand", strings.Join(d.unsafeEnv, ", "))
	}
	joined := JoinArgs(d.Args)
	if pattern == "" {
		pattern = ExactArgs(d.Args)
	}
	re, err := compileArgs("args", pattern)
	if err != nil {
		return Entry{}, fmt.Errorf("allow-always refused: %w", err)
	}
	if !re.MatchString(joined) {
		return Entry{}, fmt.Errorf("allow-always refused: pattern %s does not match this request's argument string %q", pattern, joined)
	}
	if d.class != classPlain {
		name := d.Resolved
		if !hasOperand(d.Args) {
			return Entry{}, fmt.Errorf("allow-always refused: %s %s runs whatever it reads from stdin or a terminal; allow once or deny", name, Quote(d.Args))
		}
		for _, p := range probes {
			if p != joined && re.MatchString(p) {
				return Entry{}, fmt.Errorf("allow-always refused: pattern %s would let %s run any code (it matches %q); use a narrower pattern", pattern, name, p)
			}
		}
	}
	return Entry{Path: d.Resolved, Args: pattern}, nil
}

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
