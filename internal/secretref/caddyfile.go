package secretref

import (
	"fmt"
	"regexp"
)

// Dispenser is the part of Caddy's caddyfile.Dispenser that ArgErr needs,
// so this package stays Caddy-free.
type Dispenser interface {
	Errf(format string, args ...any) error
}

// ArgErr is Caddy's argument-count error for option without the token the
// dispenser stopped at: that token may be a secret on the wrong line (a
// key after its placeholder, a token list's continuation), and config
// errors end up in logs.
func ArgErr(d Dispenser, option, want string) error {
	return d.Errf("%s: wrong argument count (%s)", option, want)
}

// Quote quotes an option name for an error message, or says
// "(value not shown)" when the token does not look like one and so could
// be a secret.
func Quote(tok string) string {
	if optionName.MatchString(tok) {
		return fmt.Sprintf("%q", tok)
	}
	return "(value not shown)"
}

var optionName = regexp.MustCompile(`^[a-z_]{1,32}$`)
