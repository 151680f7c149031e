package vault

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// validFile returns a real vault file with two entries.
func validFile(t testing.TB) []byte {
	dir := filepath.Join(t.TempDir(), "state")
	v, err := OpenWithOptions(Options{StateDir: dir, Passphrase: testPass, ScryptN: minScryptN})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "gateway_token"} {
		if err := v.Set(n, []byte("value of "+n)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeErrorsSayWhatAndWhere(t *testing.T) {
	good := string(validFile(t))
	// replace applies (regexp, replacement) pairs to the first match each.
	replace := func(pairs ...string) string {
		s := good
		for i := 0; i < len(pairs); i += 2 {
			re := regexp.MustCompile(pairs[i])
			loc := re.FindStringSubmatchIndex(s)
			if loc == nil {
				t.Fatalf("fixture lacks %q", pairs[i])
			}
			s = s[:loc[0]] + string(re.ExpandString(nil, pairs[i+1], s, loc)) + s[loc[1]:]
		}
		return s
	}
	for _, tc := range []struct {
		name, data string
		want       []string
	}{
		{"empty", "", []string{"empty file"}},
		{"blank", " \n", []string{"empty file"}},
		{"truncated", good[:len(good)/2], []string{"invalid JSON at byte offset", "truncated"}},
		{"syntax", replace(`"kdf": {`, `"kdf": {,`), []string{"invalid JSON at byte offset"}},
		{"trailing", good + "{}", []string{"invalid JSON at byte offset"}},
		{"not a vault", `{"hello": 1}`, []string{`"version": missing`}},
		{"future version", replace(`"version": 1`, `"version": 2`), []string{"unsupported version 2"}},
		{"type", replace(`"r": 8`, `"r": "8"`), []string{`field "kdf.r"`, "byte offset"}},
		{"unknown top field", replace(`"version": 1,`, `"version": 1, "plaintext": "x",`), []string{`unknown field "plaintext"`}},
		{"kdf name", replace(`"name": "scrypt"`, `"name": "none"`), []string{`"kdf.name"`}},
		{"huge n", replace(`"n": 1024`, `"n": 1073741824`), []string{`"kdf.n"`, "power of two"}},
		{"odd n", replace(`"n": 1024`, `"n": 1000`), []string{`"kdf.n"`}},
		{"huge r", replace(`"r": 8`, `"r": 32`, `"n": 1024`, `"n": 1048576`), []string{`MiB`}},
		{"p", replace(`"p": 1`, `"p": 0`), []string{`"kdf.p"`}},
		{"salt", replace(`"salt": "`, `"salt": "!`), []string{`"kdf.salt"`}},
		{"short salt", replace(`"salt": "[^"]*"`, `"salt": "AAAA"`), []string{`"kdf.salt"`, "16 to 64 bytes"}},
		{"key source", replace(`"key_source": "passphrase"`, `"key_source": "none"`), []string{`"key_source"`}},
		{"entry name", replace(`"gateway_token": {`, `"Gateway Token": {`), []string{`"entries"`, `"Gateway Token"`}},
		{"nonce", replace(`"nonce": "`, `"nonce": "AAAA`), []string{`"nonce"`, "12 bytes"}},
		{"short ciphertext", replace(`"ciphertext": "[^"]*"`, `"ciphertext": "AAAA"`), []string{`"check": "ciphertext"`, "16 bytes"}},
		{"entry ciphertext", replace(`("gateway_token": \{\s*"nonce": "[^"]*",\s*)"ciphertext": "[^"]*"`, `${1}"ciphertext": "%%%"`),
			[]string{`"entries.gateway_token": "ciphertext"`}},
		{"unknown field", replace(`"nonce"`, `"plaintext": "x", "nonce"`), []string{`unknown field "plaintext"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeFile([]byte(tc.data))
			wantErr(t, err, tc.want...)
		})
	}
}

// FuzzDecode: no input makes the decoder panic, and whatever it accepts
// re-encodes to a file it decodes to the same thing.
func FuzzDecode(f *testing.F) {
	good := validFile(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{"version": 1}`))
	f.Add([]byte(`{"version": 1, "kdf": {"name": "scrypt", "n": 1073741824, "r": 8, "p": 1}}`))
	f.Add(bytes.Replace(good, []byte(`"a"`), []byte(`"A"`), 1))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := decodeFile(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		again, err := d.encode()
		if err != nil {
			t.Fatal(err)
		}
		d2, err := decodeFile(again)
		if err != nil {
			t.Fatalf("re-encoded file does not decode: %v", err)
		}
		if len(d2.entries) != len(d.entries) || d2.keySource != d.keySource || d2.params.N != d.params.N ||
			!bytes.Equal(d2.params.Salt, d.params.Salt) || !bytes.Equal(d2.check.Ciphertext, d.check.Ciphertext) {
			t.Fatal("round trip changed the file")
		}
		for n, e := range d.entries {
			if !bytes.Equal(d2.entries[n].Ciphertext, e.Ciphertext) || !bytes.Equal(d2.entries[n].Nonce, e.Nonce) {
				t.Fatalf("round trip changed entry %q", n)
			}
		}
	})
}
