package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
)

const (
	nonceSize = 12 // random 96-bit nonces, GCM's standard size
	tagSize   = 16
)

// checkPlaintext is what the header's check box holds. Opening it proves the
// key is right and, through headerAD, that no header field was altered.
const checkPlaintext = "clawguard vault key check"

// entryAD binds a ciphertext to its entry name, so entries cannot be swapped
// or renamed.
func entryAD(name string) []byte {
	return []byte(fmt.Sprintf("clawguard-vault v%d entry\x00%s", formatVersion, name))
}

// headerAD binds the check box to every header field.
func headerAD(source string, p kdfParams) []byte {
	return fmt.Appendf(nil, "clawguard-vault v%d header\x00scrypt n=%d r=%d p=%d salt=%x\x00key_source=%s",
		formatVersion, p.N, p.R, p.P, p.Salt, source)
}

// newAEAD returns AES-256-GCM for a 32-byte key.
func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("vault: cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

func seal(aead cipher.AEAD, plaintext, ad []byte) sealed {
	nonce := make([]byte, nonceSize)
	rand.Read(nonce)
	return sealed{Nonce: nonce, Ciphertext: aead.Seal(nil, nonce, plaintext, ad)}
}

// open returns the plaintext, or ErrAuthFailed if the box, its nonce or its
// associated data were altered or the key is wrong.
func open(aead cipher.AEAD, s sealed, ad []byte) ([]byte, error) {
	pt, err := aead.Open(nil, s.Nonce, s.Ciphertext, ad)
	if err != nil {
		return nil, ErrAuthFailed
	}
	return pt, nil
}
