package authn

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// PasswordSet verifies HTTP Basic credentials against bcrypt hashes, with a
// cache of successful verifications so that steady state costs no bcrypt.
//
// The cache is keyed by HMAC-SHA256 under a random per-process key of
// (user, password, hash): it never holds a plaintext password, and an entry
// made under an old hash stops matching when the hash changes.
type PasswordSet struct {
	users map[string][]byte // user -> bcrypt hash
	// decoy is a configured user's hash, compared against for unknown users
	// so that they cost the same bcrypt time as a wrong password (no user
	// enumeration by timing).
	decoy []byte

	// ipad and opad are HMAC-SHA256's padded forms of a random per-set
	// key (RFC 2104), so that the cache key is computed with two
	// sha256.Sum256 calls over stack buffers, without allocating.
	ipad, opad [sha256.BlockSize]byte
	mu         sync.RWMutex
	cache      map[[sha256.Size]byte]struct{}
}

// passwordCacheSize bounds the verification cache. Each entry is 32 bytes;
// when full, an arbitrary entry is dropped (it only costs one bcrypt later).
const passwordCacheSize = 4096

// NewPasswordSet returns an empty set.
func NewPasswordSet() *PasswordSet {
	var key [32]byte
	rand.Read(key[:]) // never fails (crypto/rand panics rather than return an error)
	s := &PasswordSet{users: map[string][]byte{}, cache: map[[sha256.Size]byte]struct{}{}}
	for i := range sha256.BlockSize {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		s.ipad[i], s.opad[i] = k^0x36, k^0x5c
	}
	return s
}

// ParseBcryptHash accepts a bcrypt hash as written by `htpasswd -B`
// ($2y$…) or by `caddy hash-password` (the same, base64-encoded), and
// returns the raw hash.
func ParseBcryptHash(s string) ([]byte, error) {
	raw := []byte(s)
	if !strings.HasPrefix(s, "$2") {
		dec, err := base64.StdEncoding.DecodeString(s)
		if err != nil || !strings.HasPrefix(string(dec), "$2") {
			return nil, errors.New("malformed bcrypt hash: want $2a$/$2b$/$2y$… (htpasswd -B) or base64 of it (caddy hash-password)")
		}
		raw = dec
	}
	if _, err := bcrypt.Cost(raw); err != nil {
		return nil, fmt.Errorf("malformed bcrypt hash: %w", err)
	}
	return raw, nil
}

// Add registers user with a bcrypt hash (see ParseBcryptHash).
func (s *PasswordSet) Add(user, hash string) error {
	if user == "" || strings.ContainsAny(user, ": \t") {
		return fmt.Errorf("invalid user name %q: must be non-empty without ':' or spaces", user)
	}
	if _, dup := s.users[user]; dup {
		return fmt.Errorf("user %q listed twice", user)
	}
	raw, err := ParseBcryptHash(hash)
	if err != nil {
		return err
	}
	s.users[user] = raw
	if c, _ := bcrypt.Cost(raw); s.decoy == nil || c > mustCost(s.decoy) {
		s.decoy = raw
	}
	return nil
}

// Len is the number of users.
func (s *PasswordSet) Len() int { return len(s.users) }

// MaxPasswordBytes is the longest password bcrypt checks in full: it
// ignores every byte after the 72nd.
const MaxPasswordBytes = 72

// Check's refusals.
var (
	// ErrPasswordTooLong refuses a presented password over MaxPasswordBytes.
	// bcrypt checks only the first 72 bytes, so accepting one would let in
	// every password that starts with the same 72 bytes. Its message is
	// fit for the client.
	ErrPasswordTooLong = errors.New("passwords longer than 72 bytes are refused (bcrypt checks only the first 72)")
	// ErrInvalidPassword refuses an unknown user or a wrong password,
	// without saying which.
	ErrInvalidPassword = errors.New("basic auth: unknown user or wrong password")
)

// Verify reports whether password is user's password (Check returns nil).
func (s *PasswordSet) Verify(user, password string) bool {
	return s.Check(user, password) == nil
}

// Check returns nil when password is user's password, ErrPasswordTooLong
// for a password over MaxPasswordBytes (refused before any bcrypt or cache
// lookup, whoever the user), and ErrInvalidPassword otherwise. The errors
// are returned as they are, never wrapped.
func (s *PasswordSet) Check(user, password string) error {
	if len(password) > MaxPasswordBytes {
		return ErrPasswordTooLong
	}
	hash, known := s.users[user]
	if !known {
		if s.decoy != nil {
			bcrypt.CompareHashAndPassword(s.decoy, []byte(password))
		}
		return ErrInvalidPassword
	}
	key := s.cacheKeyFor(user, password, hash)
	s.mu.RLock()
	_, hit := s.cache[key]
	s.mu.RUnlock()
	if hit {
		return nil
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return ErrInvalidPassword
	}
	s.mu.Lock()
	if len(s.cache) >= passwordCacheSize {
		for k := range s.cache {
			delete(s.cache, k)
			break
		}
	}
	s.cache[key] = struct{}{}
	s.mu.Unlock()
	return nil
}

// cacheKeyStackBytes is how much of the cache key's inner message is built
// on the stack: the key pad, the two lengths, a user name, a 72-byte
// password and a bcrypt hash fit; longer user names fall back to the heap.
const cacheKeyStackBytes = 512

// cacheKeyFor is HMAC-SHA256 under the set's key of (user, password,
// bcrypt hash), computed as RFC 2104 defines it: H(opad ‖ H(ipad ‖ msg)).
func (s *PasswordSet) cacheKeyFor(user, password string, bcryptHash []byte) [sha256.Size]byte {
	var buf [cacheKeyStackBytes]byte
	msg := append(buf[:0], s.ipad[:]...)
	// Length-prefix user and password so no two (user, password) pairs
	// serialise to the same bytes.
	msg = binary.AppendUvarint(msg, uint64(len(user)))
	msg = binary.AppendUvarint(msg, uint64(len(password)))
	msg = append(msg, user...)
	msg = append(msg, password...)
	msg = append(msg, bcryptHash...)
	inner := sha256.Sum256(msg)
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], s.opad[:])
	copy(outer[sha256.BlockSize:], inner[:])
	return sha256.Sum256(outer[:])
}

func mustCost(hash []byte) int {
	c, _ := bcrypt.Cost(hash)
	return c
}
