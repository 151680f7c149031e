// Package secretref resolves the placeholders a secret option may use:
// {env.NAME} and {file./path} with Caddy's meaning, and {vault.NAME} from
// clawguard's vault. The gate, the tailnet nodes and the audit resolve
// secrets through it, so a secret means the same thing to all three. It also
// quotes option names in config errors without ever echoing a value that could
// be a secret.
//
// It must not import Caddy (tsnet and the sidecar use it); it imports vault.
package secretref
