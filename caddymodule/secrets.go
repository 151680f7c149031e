package caddymodule

import (
	"fmt"
	"path/filepath"

	"github.com/clawguard/clawguard/internal/secretref"
	"github.com/clawguard/clawguard/vault"
)

// secrets resolves the placeholders a secret option may use — {env.NAME},
// {file./path} and {vault.NAME} — once, when the config loads. The vault is
// opened only if a {vault.*} placeholder is used.
type secrets struct {
	stateDir string
	vault    *vault.Vault
}

// resolve returns the secret value of raw and a display name for it (empty
// when raw is a literal). Empty results are errors: an unset {env.X} must not
// silently become an empty token.
func (s *secrets) resolve(raw string) (value, name string, err error) {
	if value, err = secretref.Resolve(raw, s.vaultGet); err != nil {
		return "", "", err
	}
	// A value that is exactly one placeholder names the secret
	// (token:<name> upstream) by its last name segment.
	if source, n, ok := secretref.Single(raw); ok {
		name = n
		if source == "file" {
			name = filepath.Base(n)
		}
	}
	return value, name, nil
}

// vaultGet opens the vault on first use and keeps it for the config's
// other secrets. Errors get their placeholder from secretref.
func (s *secrets) vaultGet(name string) ([]byte, error) {
	if s.vault == nil {
		v, err := vault.Open(s.stateDir)
		if err != nil {
			return nil, fmt.Errorf("opening vault: %w", err)
		}
		s.vault = v
	}
	return s.vault.Get(name)
}
