package vault

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/clawguard/clawguard/wire"
)

// PassphraseEnv names the environment variable Open reads for a passphrase.
// When it is set and non-empty the vault is sealed with it instead of the
// machine identity, which makes the vault portable (containers, moving hosts).
const PassphraseEnv = "CLAWGUARD_VAULT_PASSPHRASE"

// DefaultScryptN is scrypt's cost parameter for new vaults and rotations: 2^15
// with r=8, p=1 costs about 32 MiB and tens of milliseconds, once per process.
const DefaultScryptN = 1 << 15

// Bounds on scrypt's N, for Options and for headers read from disk. The upper
// bound caps the memory a crafted header can make us allocate (128·N·r bytes:
// 1 GiB at 2^20); the lower one is for tests, never a default.
const (
	minScryptN = 1 << 10
	maxScryptN = 1 << 20
)

// machineIDPaths are tried in order when Options.MachineIDPath is empty.
var machineIDPaths = []string{"/etc/machine-id", "/var/lib/dbus/machine-id"}

// Options configures OpenWithOptions. Only StateDir is required.
type Options struct {
	// StateDir is the directory holding vault.json (see Path). Required.
	StateDir string

	// Passphrase, when non-empty, is the key material, and the machine
	// identity is not used. Open fills it from CLAWGUARD_VAULT_PASSPHRASE.
	// Default: empty, meaning machine identity.
	Passphrase string

	// MachineIDPath is the file holding this machine's identity. Default:
	// /etc/machine-id, falling back to /var/lib/dbus/machine-id.
	MachineIDPath string

	// KeyFile is the random per-installation key that, with the machine
	// identity, forms the key material. It is created (32 random bytes, hex,
	// mode 0600) by the first Set and never replaced. Default:
	// <StateDir>/vault.key.
	KeyFile string

	// ScryptN is scrypt's cost parameter used when a vault is created or
	// rotated; existing vaults keep the N stored in their header. A power of
	// two from 2^10 to 2^20; values below 2^15 are for tests only. Default:
	// DefaultScryptN (2^15).
	ScryptN int
}

// Path returns the vault file of a state directory: <stateDir>/vault.json.
func Path(stateDir string) string { return filepath.Join(stateDir, wire.FileVault) }

// Open opens the vault in stateDir. The key comes from
// CLAWGUARD_VAULT_PASSPHRASE when it is set and non-empty, else from the
// machine identity. Nothing is created until the first Set, and the key is not
// derived until the first operation.
func Open(stateDir string) (*Vault, error) {
	return OpenWithOptions(Options{StateDir: stateDir, Passphrase: os.Getenv(PassphraseEnv)})
}

// OpenWithOptions opens a vault as configured by opts. It fails early when
// there is no key material at all (no passphrase and no machine identity).
func OpenWithOptions(opts Options) (*Vault, error) {
	if opts.StateDir == "" {
		return nil, errors.New("vault: open: no state directory given")
	}
	n := opts.ScryptN
	if n == 0 {
		n = DefaultScryptN
	}
	if err := checkScryptN(n); err != nil {
		return nil, fmt.Errorf("vault: open: Options.ScryptN: %w", err)
	}
	v := &Vault{
		dir:     opts.StateDir,
		path:    Path(opts.StateDir),
		scryptN: n,
	}
	if opts.Passphrase != "" {
		v.passphrase = []byte(opts.Passphrase)
		return v, nil
	}
	id, err := readMachineID(opts.MachineIDPath)
	if err != nil {
		return nil, fmt.Errorf("vault: open: %w", err)
	}
	v.machineID = id
	v.keyFile = opts.KeyFile
	if v.keyFile == "" {
		v.keyFile = filepath.Join(opts.StateDir, "vault.key")
	}
	return v, nil
}

func checkScryptN(n int) error {
	if n < minScryptN || n > maxScryptN || n&(n-1) != 0 {
		return fmt.Errorf("scrypt N must be a power of two from 2^10 to 2^20, got %d", n)
	}
	return nil
}
