package vault

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/clawguard/clawguard/statedir"
)

var (
	// ErrNotFound is returned (wrapped) by Get and Delete for a missing entry
	// or a vault file that does not exist yet, and by Rotate for the latter.
	ErrNotFound = errors.New("not found")

	// ErrAuthFailed is returned (wrapped, naming the entry or the header) when
	// a sealed box does not open: it was altered, or the key is not the one
	// that sealed it.
	ErrAuthFailed = errors.New("authentication failed (tampered, or wrong key)")
)

// MaxValueSize is the largest value Set stores.
const MaxValueSize = 1 << 20

// Vault is an opened vault. It holds the key material; each method reads the
// file afresh. Safe for concurrent use, including by several processes.
type Vault struct {
	dir, path string
	scryptN   int // for new salts

	// Exactly one of passphrase and machineID is set.
	passphrase []byte
	machineID  []byte
	keyFile    string

	mu   sync.Mutex
	last *snapshot // the file as last read by Get or List, unlocked
}

// snapshot is a vault file as read, decoded and authenticated.
type snapshot struct {
	raw  []byte
	file *decodedFile
	aead cipher.AEAD
}

// Get returns the value of entry name, or an error wrapping ErrNotFound. It
// writes nothing.
func (v *Vault) Get(name string) ([]byte, error) {
	if err := ValidName(name); err != nil {
		return nil, fmt.Errorf("vault: get: %w", err)
	}
	d, aead, err := v.snapshot()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("vault: entry %q: %w (no vault at %s)", name, ErrNotFound, v.path)
	}
	if err != nil {
		return nil, err
	}
	e, ok := d.entries[name]
	if !ok {
		return nil, fmt.Errorf("vault: entry %q: %w in %s", name, ErrNotFound, v.path)
	}
	value, err := open(aead, e, entryAD(name))
	if err != nil {
		return nil, fmt.Errorf("vault: entry %q in %s: %w", name, v.path, err)
	}
	return value, nil
}

// List returns the entry names, sorted. A vault that does not exist yet has
// none. It writes nothing, but checks the key so a wrong one is reported.
func (v *Vault) List() ([]string, error) {
	d, _, err := v.snapshot()
	if errors.Is(err, fs.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(d.entries))
	for n := range d.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Set stores value under name, creating the vault (and, with the machine key,
// its key file) if needed. Other entries are copied as they are, still sealed:
// one damaged entry does not block writing the others.
func (v *Vault) Set(name string, value []byte) error {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("vault: set: %w", err)
	}
	if len(value) > MaxValueSize {
		return fmt.Errorf("vault: set %q: value is %d bytes, more than the %d-byte limit", name, len(value), MaxValueSize)
	}
	return v.update(true, func(d *decodedFile, aead cipher.AEAD) error {
		d.entries[name] = seal(aead, value, entryAD(name))
		return nil
	})
}

// Delete removes entry name, or returns an error wrapping ErrNotFound.
func (v *Vault) Delete(name string) error {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("vault: delete: %w", err)
	}
	err := v.update(false, func(d *decodedFile, _ cipher.AEAD) error {
		if _, ok := d.entries[name]; !ok {
			return fmt.Errorf("vault: entry %q: %w in %s", name, ErrNotFound, v.path)
		}
		delete(d.entries, name)
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vault: entry %q: %w (no vault at %s)", name, ErrNotFound, v.path)
	}
	return err
}

// Rotate re-encrypts every entry under a key derived with a new random salt
// (and the current Options.ScryptN), replacing the file in one atomic write.
// If any entry fails to open, nothing is written and the error names them.
func (v *Vault) Rotate() error {
	err := v.update(false, func(d *decodedFile, aead cipher.AEAD) error {
		plain := make(map[string][]byte, len(d.entries))
		var bad []string
		for name, e := range d.entries {
			pt, err := open(aead, e, entryAD(name))
			if err != nil {
				bad = append(bad, fmt.Sprintf("%q", name))
				continue
			}
			plain[name] = pt
		}
		if len(bad) > 0 {
			sort.Strings(bad)
			return fmt.Errorf("vault: rotate %s: entries %s: %w; nothing was changed: overwrite them (set) or remove them (rm), then rotate again",
				v.path, strings.Join(bad, ", "), ErrAuthFailed)
		}
		rotated, err := v.newHeader(d)
		if err != nil {
			return err
		}
		for name, pt := range plain {
			d.entries[name] = seal(rotated, pt, entryAD(name))
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vault: rotate: %w (no vault at %s)", ErrNotFound, v.path)
	}
	return err
}

// ValidName reports whether name can name an entry: 1 to 128 characters of
// a-z, 0-9, '_', '-' and '.', starting with a letter or digit. Names appear
// in Caddy placeholders ({vault.NAME}) and file names, hence the narrow set.
func ValidName(name string) error {
	ok := len(name) >= 1 && len(name) <= 128
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '-' || c == '.'):
		default:
			ok = false
		}
	}
	if ok {
		return nil
	}
	if len(name) > 64 {
		name = name[:64] + "…"
	}
	return fmt.Errorf("invalid entry name %q: names are 1 to 128 characters of a-z, 0-9, '_', '-' and '.', starting with a letter or digit", name)
}

// readRaw returns the vault file's bytes, without the lock: writers replace
// it by rename, so a read sees one whole version. A missing state dir or file
// is reported as fs.ErrNotExist.
func (v *Vault) readRaw() ([]byte, error) {
	fi, err := os.Stat(v.dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("vault: %w", err)
	}
	// A directory others can write could hold a vault and key file of their
	// making. Ensure words the refusal; on an existing directory it creates
	// nothing, and the fast path spares every Get its extra stats.
	if !fi.IsDir() || fi.Mode().Perm()&0o022 != 0 {
		if err := statedir.Ensure(v.dir); err != nil {
			return nil, fmt.Errorf("vault: %w", err)
		}
	}
	data, err := statedir.ReadFile(v.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("vault: %w", err)
	}
	return data, err
}

// read loads and validates the vault file.
func (v *Vault) read() (*decodedFile, error) {
	data, err := v.readRaw()
	if err != nil {
		return nil, err
	}
	d, err := decodeFile(data)
	if err != nil {
		return nil, fmt.Errorf("vault: %s: %w", v.path, err)
	}
	return d, nil
}

// snapshot is read plus unlock for the read-only operations. The file is
// read every time; only when its bytes equal the last ones seen are the
// decoded file and its verified key reused, sparing Get the decoding and the
// header check. The result must not be modified.
func (v *Vault) snapshot() (*decodedFile, cipher.AEAD, error) {
	data, err := v.readRaw()
	if err != nil {
		return nil, nil, err
	}
	v.mu.Lock()
	last := v.last
	v.mu.Unlock()
	if last != nil && bytes.Equal(last.raw, data) {
		return last.file, last.aead, nil
	}
	d, err := decodeFile(data)
	if err != nil {
		return nil, nil, fmt.Errorf("vault: %s: %w", v.path, err)
	}
	aead, err := v.unlock(d)
	if err != nil {
		return nil, nil, err
	}
	v.mu.Lock()
	v.last = &snapshot{raw: data, file: d, aead: aead}
	v.mu.Unlock()
	return d, aead, nil
}

// update is the read-modify-write cycle of every writer, under the lock. With
// create, a missing vault is started empty; without, the fs.ErrNotExist is
// returned and nothing is created. fn's error aborts without writing.
func (v *Vault) update(create bool, fn func(*decodedFile, cipher.AEAD) error) error {
	if !create {
		if _, err := os.Stat(v.path); errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := statedir.Ensure(v.dir); err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	unlock, err := statedir.Lock(v.path)
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	defer unlock()

	var aead cipher.AEAD
	d, err := v.read()
	switch {
	case errors.Is(err, fs.ErrNotExist) && create:
		d = &decodedFile{keySource: v.source(), entries: map[string]sealed{}}
		if v.machineID != nil {
			if err := createKeyFile(v.keyFile); err != nil {
				return fmt.Errorf("vault: %w", err)
			}
		}
		aead, err = v.newHeader(d)
	case err == nil:
		aead, err = v.unlock(d)
	}
	if err != nil {
		return err
	}
	if err := fn(d, aead); err != nil {
		return err
	}
	data, err := d.encode()
	if err != nil {
		return fmt.Errorf("vault: encode: %w", err)
	}
	v.removeStaleTemps()
	if err := statedir.WriteFile(v.path, data); err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	return nil
}

// removeStaleTemps deletes temp files of writers that died before their
// rename (statedir.WriteFile's ".vault.json.tmp-*"). They hold only
// ciphertext; this just keeps the directory tidy. The caller holds the lock,
// so no live writer owns one.
func (v *Vault) removeStaleTemps() {
	stale, _ := filepath.Glob(filepath.Join(v.dir, "."+filepath.Base(v.path)+".tmp-*"))
	for _, p := range stale {
		os.Remove(p)
	}
}

func (v *Vault) source() string {
	if v.passphrase != nil {
		return sourcePassphrase
	}
	return sourceMachine
}

// material returns the scrypt input for a vault sealed with source.
func (v *Vault) material(source string) ([]byte, error) {
	switch {
	case source == sourceMachine && v.passphrase != nil:
		return nil, fmt.Errorf("vault: %s is sealed with this machine's identity, but a passphrase was given (%s is set): unset it to open this vault",
			v.path, PassphraseEnv)
	case source == sourcePassphrase && v.passphrase == nil:
		return nil, fmt.Errorf("vault: %s is sealed with a passphrase: set %s", v.path, PassphraseEnv)
	case source == sourcePassphrase:
		return append([]byte("clawguard-vault passphrase\x00"), v.passphrase...), nil
	}
	key, err := readKeyFile(v.keyFile)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	m := append([]byte("clawguard-vault machine\x00"), v.machineID...)
	m = append(m, 0)
	return append(m, key...), nil
}

// unlock derives (or recalls) the key for d and proves it on d's check box,
// which also authenticates every header field.
func (v *Vault) unlock(d *decodedFile) (cipher.AEAD, error) {
	aead, err := v.aead(d)
	if err != nil {
		return nil, err
	}
	if _, err := open(aead, d.check, headerAD(d.keySource, d.params)); err != nil {
		what := "the passphrase is not the one"
		if d.keySource == sourceMachine {
			what = "this machine's identity or key file is not the one"
		}
		return nil, fmt.Errorf("vault: header of %s: %w: %s that sealed this vault, or the header was altered",
			v.path, err, what)
	}
	return aead, nil
}

// newHeader gives d a fresh salt with the configured scrypt cost, and seals
// its check box under the new key, which it returns.
func (v *Vault) newHeader(d *decodedFile) (cipher.AEAD, error) {
	salt := make([]byte, 32)
	rand.Read(salt)
	d.keySource = v.source()
	d.params = kdfParams{Salt: salt, N: v.scryptN, R: 8, P: 1}
	aead, err := v.aead(d)
	if err != nil {
		return nil, err
	}
	d.check = seal(aead, []byte(checkPlaintext), headerAD(d.keySource, d.params))
	return aead, nil
}

func (v *Vault) aead(d *decodedFile) (cipher.AEAD, error) {
	m, err := v.material(d.keySource)
	if err != nil {
		return nil, err
	}
	key, err := derivedKeys.get(m, d.params)
	if err != nil {
		return nil, fmt.Errorf("vault: derive key: %w", err)
	}
	return newAEAD(key)
}
