package vault

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// formatVersion is the version of the file layout below; readers refuse
// others rather than guess.
const formatVersion = 1

// file is vault.json. Header fields are authenticated by Check; each entry by
// its own AEAD tag with the entry name as associated data.
type file struct {
	Version   int                   `json:"version"`
	KDF       kdfHeader             `json:"kdf"`
	KeySource string                `json:"key_source"`
	Check     sealedJSON            `json:"check"`
	Entries   map[string]sealedJSON `json:"entries"`
}

type kdfHeader struct {
	Name string `json:"name"`
	N    int    `json:"n"`
	R    int    `json:"r"`
	P    int    `json:"p"`
	Salt string `json:"salt"` // base64
}

// sealedJSON is one AES-256-GCM box as stored: base64 nonce and ciphertext
// (tag included).
type sealedJSON struct {
	Nonce      string `json:"nonce"`
	Ciphertext string `json:"ciphertext"`
}

// sealed is a decoded sealedJSON.
type sealed struct {
	Nonce, Ciphertext []byte
}

// decodedFile is a validated vault file.
type decodedFile struct {
	params    kdfParams
	keySource string
	check     sealed
	entries   map[string]sealed
}

var b64 = base64.StdEncoding

// decodeFile parses and validates vault.json. Errors name the field or the
// byte offset at fault; the caller adds the path.
func decodeFile(data []byte) (*decodedFile, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("empty file (truncated?)")
	}
	var f file
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(&f)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = fmt.Errorf("invalid JSON at byte offset %d: data after the vault object", dec.InputOffset())
		}
	}
	version := f.Version
	if err != nil {
		// Another version may well have other fields: report the version.
		var probe struct {
			Version int `json:"version"`
		}
		if json.Unmarshal(data, &probe) != nil || probe.Version == formatVersion {
			return nil, jsonError(err, len(data))
		}
		version = probe.Version
	}
	switch {
	case version == 0:
		return nil, errors.New(`field "version": missing (not a clawguard vault?)`)
	case version != formatVersion:
		return nil, fmt.Errorf(`field "version": unsupported version %d (this clawguard reads version %d)`, version, formatVersion)
	}
	d := &decodedFile{keySource: f.KeySource, entries: make(map[string]sealed, len(f.Entries))}
	if f.KDF.Name != "scrypt" {
		return nil, fmt.Errorf(`field "kdf.name": want "scrypt", got %q`, f.KDF.Name)
	}
	if err := checkScryptN(f.KDF.N); err != nil {
		return nil, fmt.Errorf(`field "kdf.n": %w`, err)
	}
	if f.KDF.R < 1 || f.KDF.R > 32 {
		return nil, fmt.Errorf(`field "kdf.r": want 1 to 32, got %d`, f.KDF.R)
	}
	if f.KDF.P < 1 || f.KDF.P > 16 {
		return nil, fmt.Errorf(`field "kdf.p": want 1 to 16, got %d`, f.KDF.P)
	}
	if 128*f.KDF.N*f.KDF.R > 128*maxScryptN*8 {
		return nil, fmt.Errorf(`fields "kdf.n", "kdf.r": scrypt would need %d MiB, more than %d MiB`,
			128*f.KDF.N*f.KDF.R>>20, 128*maxScryptN*8>>20)
	}
	salt, err := b64.DecodeString(f.KDF.Salt)
	if err != nil || len(salt) < 16 || len(salt) > 64 {
		return nil, fmt.Errorf(`field "kdf.salt": want base64 of 16 to 64 bytes`)
	}
	d.params = kdfParams{Salt: salt, N: f.KDF.N, R: f.KDF.R, P: f.KDF.P}
	if f.KeySource != sourceMachine && f.KeySource != sourcePassphrase {
		return nil, fmt.Errorf(`field "key_source": want %q or %q, got %q`, sourceMachine, sourcePassphrase, f.KeySource)
	}
	if d.check, err = f.Check.decode(); err != nil {
		return nil, fmt.Errorf(`field "check": %w`, err)
	}
	for name, e := range f.Entries {
		if err := ValidName(name); err != nil {
			return nil, fmt.Errorf(`field "entries": %w`, err)
		}
		if d.entries[name], err = e.decode(); err != nil {
			return nil, fmt.Errorf(`field "entries.%s": %w`, name, err)
		}
	}
	return d, nil
}

func (s sealedJSON) decode() (sealed, error) {
	nonce, err := b64.DecodeString(s.Nonce)
	if err != nil || len(nonce) != nonceSize {
		return sealed{}, fmt.Errorf(`"nonce": want base64 of %d bytes`, nonceSize)
	}
	ct, err := b64.DecodeString(s.Ciphertext)
	if err != nil || len(ct) < tagSize {
		return sealed{}, fmt.Errorf(`"ciphertext": want base64 of at least %d bytes`, tagSize)
	}
	return sealed{Nonce: nonce, Ciphertext: ct}, nil
}

func (s sealed) encode() sealedJSON {
	return sealedJSON{Nonce: b64.EncodeToString(s.Nonce), Ciphertext: b64.EncodeToString(s.Ciphertext)}
}

// encode renders d as vault.json: indented, entries sorted by name.
func (d *decodedFile) encode() ([]byte, error) {
	f := file{
		Version: formatVersion,
		KDF: kdfHeader{
			Name: "scrypt", N: d.params.N, R: d.params.R, P: d.params.P,
			Salt: b64.EncodeToString(d.params.Salt),
		},
		KeySource: d.keySource,
		Check:     d.check.encode(),
		Entries:   make(map[string]sealedJSON, len(d.entries)),
	}
	for name, e := range d.entries {
		f.Entries[name] = e.encode()
	}
	b, err := json.MarshalIndent(f, "", "  ")
	return append(b, '\n'), err
}

// jsonError turns encoding/json's errors into "what, where".
func jsonError(err error, size int) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn) && strings.HasPrefix(syn.Error(), "unexpected end"):
		return fmt.Errorf("invalid JSON at byte offset %d: %v (file truncated?)", syn.Offset, err)
	case errors.As(err, &syn):
		return fmt.Errorf("invalid JSON at byte offset %d: %v", syn.Offset, err)
	case errors.As(err, &typ):
		return fmt.Errorf("field %q at byte offset %d: want %s, got JSON %s", typ.Field, typ.Offset, typ.Type, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("invalid JSON at byte offset %d: unexpected end of input (file truncated?)", size)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("unknown field %s (not in vault format version %d)", f, formatVersion)
	}
	return fmt.Errorf("invalid vault file: %w", err)
}
