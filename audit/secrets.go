package audit

import (
	"math"
	"regexp"
	"strings"

	"github.com/clawguard/clawguard/internal/secretref"
)

// secretPattern recognises a credential by its well-known prefix.
type secretPattern struct {
	kind string
	re   *regexp.Regexp
}

// secretPatterns are credential formats recognised wherever they appear.
// Each must start at a word boundary so that a prefix inside a longer word
// (say "task-…") does not count.
var secretPatterns = func() []secretPattern {
	defs := []struct{ kind, re string }{
		{"an API key (sk-…)", `sk-[A-Za-z0-9_-]{20,}`},
		{"a Stripe key (sk_live_/sk_test_…)", `[sr]k_(?:live|test)_[A-Za-z0-9]{16,}`},
		{"a GitHub token (gh?_…)", `gh[pousr]_[A-Za-z0-9]{30,}`},
		{"a GitHub token (github_pat_…)", `github_pat_[A-Za-z0-9_]{40,}`},
		{"a Slack token (xox?-…)", `xox[abposr]-[A-Za-z0-9-]{10,}`},
		{"a Slack app token (xapp-…)", `xapp-[A-Za-z0-9-]{10,}`},
		{"an AWS access key ID (AKIA…)", `(?:AKIA|ASIA)[0-9A-Z]{16}`},
		{"a Tailscale auth key (tskey-…)", `tskey-[A-Za-z0-9-]{10,}`},
		{"a GitLab token (glpat-…)", `glpat-[A-Za-z0-9_-]{20,}`},
		{"a Google API key (AIza…)", `AIza[0-9A-Za-z_-]{35}`},
		{"a Hugging Face token (hf_…)", `hf_[A-Za-z0-9]{30,}`},
		{"an npm token (npm_…)", `npm_[A-Za-z0-9]{36}`},
		{"a clawguard device token (cgd_…)", `cgd_[A-Za-z0-9_-]{40,}`},
		{"a private key (PEM)", `-----BEGIN [A-Z ]*PRIVATE KEY-----`},
		{"a password in a URL", `[a-z][a-z0-9+.-]*://[^/\s:@{}]+:[^/\s@{}]+@`},
	}
	out := make([]secretPattern, len(defs))
	for i, d := range defs {
		out[i] = secretPattern{d.kind, regexp.MustCompile(`(?:^|[^A-Za-z0-9_])(` + d.re + `)`)}
	}
	return out
}()

// knownSecret returns what kind of credential s contains and the
// credential itself, or "" when it contains none.
func knownSecret(s string) (kind, secret string) {
	for _, p := range secretPatterns {
		if m := p.re.FindStringSubmatch(s); m != nil {
			return p.kind, m[1]
		}
	}
	return "", ""
}

// secretKeyRE matches names of settings and variables that hold secrets.
var secretKeyRE = regexp.MustCompile(`(?i)(?:^|[_.-])(?:token|secret|password|passwd|pass|pwd|api[_-]?key|apikey|auth[_-]?key|private[_-]?key|access[_-]?key|client[_-]?secret|credentials?|authorization|key)$`)

// notSecretKeyRE matches names that end like a secret's but hold none.
var notSecretKeyRE = regexp.MustCompile(`(?i)(?:public[_-]?key|key[_-]?id|keyid|token[_-]?(?:url|endpoint|type|ttl))$`)

// secretKey reports whether a variable or setting named name holds a
// secret by its name.
func secretKey(name string) bool {
	return secretKeyRE.MatchString(name) && !notSecretKeyRE.MatchString(name)
}

// secretValue reports whether value, stored under a secret-looking name,
// is a literal secret rather than a reference, a path or a toggle. What a
// value under any name is flagged for is knownSecret's business.
func secretValue(value string) bool {
	v := strings.TrimSpace(value)
	switch {
	case len(v) < 8,
		!secretref.IsLiteral(v), strings.HasPrefix(v, "$"),
		strings.HasPrefix(v, "/"), strings.HasPrefix(v, "./"), strings.HasPrefix(v, "~/"),
		passwordHash(v):
		return false
	}
	switch strings.ToLower(v) {
	case "true", "false", "yes", "no", "on", "off", "none", "null":
		return false
	}
	if strings.Contains(v, "://") {
		return false // a URL with a password is knownSecret's
	}
	if strings.Trim(v, "0123456789") == "" {
		return false
	}
	return entropy(v) >= 2.5
}

// passwordHash reports whether v is a password hash (bcrypt, argon2,
// scrypt, sha-crypt), raw or base64 as Caddy stores bcrypt hashes: hashes
// are what should be on disk.
func passwordHash(v string) bool {
	for _, p := range []string{"$2a$", "$2b$", "$2y$", "$argon2", "$scrypt$", "$6$", "$5$", "JDJhJ", "JDJ5J", "JDJiJ"} {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	return false
}

// entropy is the Shannon entropy of s in bits per character: about 4 to 6
// for random tokens, below 3 for words.
func entropy(s string) float64 {
	if s == "" {
		return 0
	}
	counts := map[rune]int{}
	n := 0
	for _, r := range s {
		counts[r]++
		n++
	}
	h := 0.0
	for _, c := range counts {
		p := float64(c) / float64(n)
		h -= p * math.Log2(p)
	}
	return h
}

// vaultName makes a vault entry name from s: lower case, characters
// outside a-z, 0-9, '_', '-' and '.' replaced by '_', starting with a
// letter or digit, at most 64 characters.
func vaultName(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_', c == '-', c == '.':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	n := strings.TrimLeft(b.String(), "_-.")
	if len(n) > 64 {
		n = n[:64]
	}
	if n == "" {
		n = "secret"
	}
	return n
}
