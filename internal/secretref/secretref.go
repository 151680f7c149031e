// Package secretref resolves the placeholders a secret option may use:
// Caddy's {env.NAME} and {file./path}, and {vault.NAME} from clawguard's
// vault. The gate, the tailnet nodes and the audit resolve secrets through
// it, so a secret means the same thing to all three.
package secretref

import (
	"strings"

	"github.com/caddyserver/caddy/v2"

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
// {vault.NAME}; its errors come back as *VaultError. An unknown placeholder
// or one that resolves to nothing is an error (Caddy's, naming it): an
// unset {env.X} must never become an empty secret.
func Resolve(raw string, get VaultGetter) (string, error) {
	repl := caddy.NewReplacer()
	var vaultErr error
	repl.Map(func(key string) (any, bool) {
		name, ok := strings.CutPrefix(key, "vault.")
		if !ok {
			return nil, false
		}
		b, err := get(name)
		if err != nil {
			vaultErr = &VaultError{Name: name, Err: err}
			return nil, false
		}
		return string(b), true
	})
	v, err := repl.ReplaceOrErr(raw, true, true)
	if vaultErr != nil {
		return "", vaultErr
	}
	if err != nil {
		return "", err
	}
	return v, nil
}

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
