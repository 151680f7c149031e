package vault

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/scrypt"
)

// Key sources recorded in the header, so a mismatch is a clear error rather
// than a bare authentication failure.
const (
	sourceMachine    = "machine"
	sourcePassphrase = "passphrase"
)

const keyFileBytes = 32

// readMachineID reads the machine identity from path, or from the first of
// machineIDPaths that exists when path is empty.
func readMachineID(path string) ([]byte, error) {
	paths := machineIDPaths
	if path != "" {
		paths = []string{path}
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("machine identity: %w; set %s to use a passphrase instead", err, PassphraseEnv)
		}
		id := bytes.TrimSpace(b)
		if len(id) == 0 || len(id) > 1024 {
			return nil, fmt.Errorf("machine identity %s: want one line of 1 to 1024 bytes, got %d bytes; set %s to use a passphrase instead",
				p, len(id), PassphraseEnv)
		}
		return id, nil
	}
	return nil, fmt.Errorf("no machine identity (%v not found): set %s to seal the vault with a passphrase",
		paths, PassphraseEnv)
}

// readKeyFile loads the per-installation key. A key file that others can read
// is refused: it is the secret half of the machine key.
func readKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("vault key file %s is missing: the vault cannot be opened without it (restore it from the machine that sealed the vault)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("vault key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("vault key file %s: not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("vault key file %s: accessible by group or others (mode %04o); run chmod 600 %s",
			path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vault key file: %w", err)
	}
	key, err := hex.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(key) != keyFileBytes {
		return nil, fmt.Errorf("vault key file %s: want %d hex-encoded random bytes on one line", path, keyFileBytes)
	}
	return key, nil
}

// createKeyFile writes a fresh random key unless one exists already (a first
// Set that crashed before writing vault.json leaves one behind; reuse it). The
// caller holds the vault lock.
func createKeyFile(path string) error {
	key := make([]byte, keyFileBytes)
	rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create vault key file: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("create vault key file: %w", err)
	}
	return nil
}

// kdfParams are scrypt's inputs besides the key material.
type kdfParams struct {
	Salt    []byte
	N, R, P int
}

// keyCache memoises scrypt per (key material, salt, parameters) for the life
// of the process: every operation re-reads the vault file, but only a new salt
// or new material costs a derivation. Keys stay in memory only.
type keyCache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]*cachedKey
	order   [][sha256.Size]byte // insertion order, for eviction
	derived atomic.Int64        // scrypt runs, for tests
}

type cachedKey struct {
	once sync.Once
	key  []byte
	err  error
}

// maxCachedKeys bounds the cache; old entries only come from rotations or
// other vaults, so a handful is plenty.
const maxCachedKeys = 16

var derivedKeys = &keyCache{entries: map[[sha256.Size]byte]*cachedKey{}}

// get returns the 32-byte key for material and p, deriving it at most once.
// Concurrent callers for the same key wait for one derivation.
func (c *keyCache) get(material []byte, p kdfParams) ([]byte, error) {
	id := cacheID(material, p)
	c.mu.Lock()
	e, ok := c.entries[id]
	if !ok {
		if len(c.order) >= maxCachedKeys {
			delete(c.entries, c.order[0])
			c.order = c.order[1:]
		}
		e = &cachedKey{}
		c.entries[id] = e
		c.order = append(c.order, id)
	}
	c.mu.Unlock()
	e.once.Do(func() {
		c.derived.Add(1)
		e.key, e.err = scrypt.Key(material, p.Salt, p.N, p.R, p.P, 32)
	})
	return e.key, e.err
}

func cacheID(material []byte, p kdfParams) [sha256.Size]byte {
	h := sha256.New()
	for _, b := range [][]byte{material, p.Salt} {
		binary.Write(h, binary.BigEndian, uint64(len(b)))
		h.Write(b)
	}
	binary.Write(h, binary.BigEndian, [3]uint64{uint64(p.N), uint64(p.R), uint64(p.P)})
	var id [sha256.Size]byte
	h.Sum(id[:0])
	return id
}
