package approvals

import (
	"regexp"
	"slices"
	"strings"
)

// Environment variables change what a program does as much as its
// arguments: LD_PRELOAD, BASH_ENV, NODE_OPTIONS, PYTHONSTARTUP, PERL5OPT,
// GIT_SSH_COMMAND, PAGER, PATH or HOME can each make an allowed program run
// other code. So a request that sets a variable outside SafeEnv — in its
// env or through `env NAME=value` — is allowed by an entry only if the
// entry's env list names it.

// SafeEnv lists the variables any request may set (a trailing "*" is a
// prefix): they only select terminal, colour, locale and time zone.
var SafeEnv = []string{
	"TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "CLICOLOR", "CLICOLOR_FORCE",
	"COLUMNS", "LINES", "LANG", "LANGUAGE", "LC_*", "TZ", "CI",
}

var (
	envName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	envPattern = regexp.MustCompile(`^(?:[A-Za-z_][A-Za-z0-9_]*\*?|\*)$`)
)

// envMatch reports whether name is matched by one of patterns (NAME or
// PREFIX*).
func envMatch(patterns []string, name string) bool {
	for _, p := range patterns {
		if pre, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(name, pre) {
				return true
			}
		} else if p == name {
			return true
		}
	}
	return false
}

// unsafeEnv returns the names in set that SafeEnv does not cover, without
// duplicates, in order.
func unsafeEnv(set []string) []string {
	var out []string
	for _, n := range set {
		if !envMatch(SafeEnv, n) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
