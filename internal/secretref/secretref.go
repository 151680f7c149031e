package secretref

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/clawguard/clawguard/vault"
)

// VaultGetter returns the value of the vault entry name.
type VaultGetter func(name string) ([]byte, error)

// VaultError is a {vault.NAME} placeholder that did not resolve.
type VaultError struct {
	Name string
	Err  error
}

func (e *VaultError) Error() string { return "{vault." + e.Name + "}: " + e.Err.Error() }
func (e *VaultError) Unwrap() error { return e.Err }

// Resolve replaces every placeholder in raw, calling get for each
// {vault.NAME}; its errors come back as *VaultError. {env.NAME} and
// {file./path} mean what they mean to Caddy (a file's one trailing newline
// is dropped; at most 1 MiB is read), and \{ \} are literal braces. An
// unknown placeholder, an unreadable file or a placeholder that resolves
// to nothing is an error naming it: an unset {env.X} must never become an
// empty secret.
func Resolve(raw string, get VaultGetter) (string, error) {
	if !strings.ContainsAny(raw, "{}") {
		return raw, nil
	}
	var sb strings.Builder
	for rest := raw; rest != ""; {
		i := strings.IndexAny(rest, "\\{")
		if i < 0 {
			sb.WriteString(rest)
			break
		}
		sb.WriteString(rest[:i])
		if rest[i] == '\\' {
			if i+1 < len(rest) && (rest[i+1] == '{' || rest[i+1] == '}') {
				sb.WriteByte(rest[i+1])
				rest = rest[i+2:]
			} else {
				sb.WriteByte('\\')
				rest = rest[i+1:]
			}
			continue
		}
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			sb.WriteString(rest[i:])
			break
		}
		key := rest[i+1 : i+end]
		v, err := lookup(key, get)
		if err != nil {
			return "", err
		}
		if v == "" {
			return "", fmt.Errorf("evaluated placeholder {%s} is empty", key)
		}
		sb.WriteString(v)
		rest = rest[i+end+1:]
	}
	return sb.String(), nil
}

// maxFileSize is how much of a {file./path} secret is read, as Caddy does.
const maxFileSize = 1 << 20

// lookup returns the value of one placeholder key (without braces).
func lookup(key string, get VaultGetter) (string, error) {
	source, name, _ := strings.Cut(key, ".")
	switch {
	case name == "":
	case source == "env":
		return os.Getenv(name), nil
	case source == "vault":
		b, err := get(name)
		if err != nil {
			return "", &VaultError{Name: name, Err: err}
		}
		return string(b), nil
	case source == "file":
		f, err := os.Open(name)
		if err != nil {
			return "", fmt.Errorf("placeholder {%s}: %w", key, err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxFileSize))
		if err != nil {
			return "", fmt.Errorf("placeholder {%s}: %w", key, err)
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		return string(bytes.TrimSuffix(b, []byte("\r"))), nil
	}
	return "", fmt.Errorf("unrecognized placeholder {%s}", key)
}

// single matches a value that is exactly one secret placeholder.
var single = regexp.MustCompile(`^\{(env|file|vault)\.([^{}]+)\}$`)

// Single reports whether raw is exactly one secret placeholder, and
// returns its source (env, file or vault) and name.
func Single(raw string) (source, name string, ok bool) {
	m := single.FindStringSubmatch(raw)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// anyPlaceholder matches a Caddy placeholder ({env.X}, {vault.X}, {$X}, …).
var anyPlaceholder = regexp.MustCompile(`\{[^{}\s]+\}`)

// IsLiteral reports whether a config value holds no placeholder at all.
func IsLiteral(s string) bool { return !anyPlaceholder.MatchString(s) }

// OpenVault returns a VaultGetter for the vault in stateDir, opened on the
// first {vault.*} placeholder only.
func OpenVault(stateDir string) VaultGetter {
	var v *vault.Vault
	return func(name string) ([]byte, error) {
		if v == nil {
			var err error
			if v, err = vault.Open(stateDir); err != nil {
				return nil, err
			}
		}
		return v.Get(name)
	}
}
