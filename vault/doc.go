// Package vault is clawguard's encrypted secret store: one JSON file,
// <state_dir>/vault.json (mode 0600), holding entries sealed with AES-256-GCM
// under a key derived by scrypt from the machine identity plus a random
// per-installation key file, or from CLAWGUARD_VAULT_PASSPHRASE.
//
// Several processes (the gate inside Caddy, the sidecar, the CLI) use the same
// file: every operation re-reads it, writers serialise on a lock file and
// replace the file atomically, so readers need neither the lock nor write
// access. The scrypt key is derived once per process and kept in memory only.
//
// It imports only statedir and wire of the module: everything else that
// holds a secret reads it through here.
package vault
