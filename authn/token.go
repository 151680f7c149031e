package authn

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
)

// TokenSet holds the shared gateway tokens, as SHA-256 digests only.
type TokenSet struct {
	entries []tokenEntry
}

type tokenEntry struct {
	digest [sha256.Size]byte
	name   string
}

// MinTokenLength is the shortest shared token the gate accepts. Shorter
// tokens are guessable within a rate limiter's patience.
const MinTokenLength = 16

// Add registers a token under name (shown upstream as token:<name>). An empty
// name is replaced by a short fingerprint of the token.
func (s *TokenSet) Add(name, token string) error {
	if token == "" {
		return errors.New("empty token")
	}
	if len(token) < MinTokenLength {
		return errors.New("token too short: use at least 16 characters (24 or more recommended; `openssl rand -base64 32`)")
	}
	d := sha256.Sum256([]byte(token))
	if name == "" {
		name = hex.EncodeToString(d[:4])
	}
	for _, e := range s.entries {
		if e.digest == d {
			return errors.New("token listed twice")
		}
	}
	s.entries = append(s.entries, tokenEntry{digest: d, name: name})
	return nil
}

// Len is the number of tokens.
func (s *TokenSet) Len() int { return len(s.entries) }

// Name is the name of the i'th token added (0 ≤ i < Len).
func (s *TokenSet) Name(i int) string { return s.entries[i].name }

// Match compares token against every configured token in constant time (the
// loop never exits early) and returns the matching token's name.
func (s *TokenSet) Match(token string) (name string, ok bool) {
	i, ok := s.MatchIndex(token)
	if !ok {
		return "", false
	}
	return s.entries[i].name, true
}

// tokenStackBytes is how long a presented token may be and still be hashed
// from a stack copy rather than a heap one.
const tokenStackBytes = 256

// MatchIndex is Match returning the index of the matching token (see Name),
// so that callers can keep per-token values in a slice.
func (s *TokenSet) MatchIndex(token string) (int, bool) {
	var buf [tokenStackBytes]byte
	d := sha256.Sum256(append(buf[:0], token...))
	match := -1
	for i := range s.entries {
		if subtle.ConstantTimeCompare(d[:], s.entries[i].digest[:]) == 1 {
			match = i
		}
	}
	return match, match >= 0
}
