package vault

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

const testPass = "correct horse battery staple"

// testOptions is a passphrase vault in a fresh state dir, with the cheapest
// scrypt the package accepts: these tests are not about scrypt's cost.
func testOptions(t *testing.T) Options {
	t.Helper()
	return Options{StateDir: filepath.Join(t.TempDir(), "state"), Passphrase: testPass, ScryptN: minScryptN}
}

func mustOpen(t *testing.T, opts Options) *Vault {
	t.Helper()
	v, err := OpenWithOptions(opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustSet(t *testing.T, v *Vault, name, value string) {
	t.Helper()
	if err := v.Set(name, []byte(value)); err != nil {
		t.Fatal(err)
	}
}

func mustGet(t *testing.T, v *Vault, name, want string) {
	t.Helper()
	got, err := v.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("Get(%q) = %q, want %q", name, got, want)
	}
}

// wantErr fails unless err is non-nil and its message contains every part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}

// editFile decodes vault.json as generic JSON, lets edit change it, and
// writes it back: how an attacker with write access would tamper.
func editFile(t *testing.T, path string, edit func(m map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ = json.Marshal(m)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func entry(m map[string]any, name string) map[string]any {
	return m["entries"].(map[string]any)[name].(map[string]any)
}

// assertUnchanged runs op, which must fail, and checks the file is untouched.
func assertUnchanged(t *testing.T, path string, op func() error, parts ...string) {
	t.Helper()
	before, _ := os.ReadFile(path)
	wantErr(t, op(), parts...)
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("a refused operation changed the vault file")
	}
}

func TestRoundTrip(t *testing.T) {
	opts := testOptions(t)
	v := mustOpen(t, opts)
	mustSet(t, v, "gateway_token", "tok-1")
	mustSet(t, v, "hmac.key", "\x00\xffbinary\n")
	mustSet(t, v, "empty", "")
	mustGet(t, v, "gateway_token", "tok-1")
	mustGet(t, v, "hmac.key", "\x00\xffbinary\n")
	mustGet(t, v, "empty", "")

	// A second handle (as another process would have) sees every change,
	// though it keeps the last file it decoded.
	other := mustOpen(t, opts)
	mustGet(t, other, "gateway_token", "tok-1")
	mustSet(t, v, "gateway_token", "tok-2")
	mustGet(t, other, "gateway_token", "tok-2")

	names, err := v.List()
	if err != nil || !slices.Equal(names, []string{"empty", "gateway_token", "hmac.key"}) {
		t.Fatalf("List = %q, %v", names, err)
	}
	if err := v.Delete("empty"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Get("empty"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := v.Delete("empty"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete of a missing entry: %v, want ErrNotFound", err)
	}
	wantErr(t, v.Set("x", make([]byte, MaxValueSize+1)), "limit")
	wantErr(t, v.Set("Bad Name", nil), "invalid entry name", "a-z")
}

// TestNoPlaintextOnDisk greps every byte in the state dir for the values and
// the passphrase, raw and in the encodings a careless format would use.
func TestNoPlaintextOnDisk(t *testing.T) {
	for _, machine := range []bool{false, true} {
		opts := testOptions(t)
		if machine {
			opts.Passphrase = ""
			opts.MachineIDPath = writeMachineID(t, "0123456789abcdef0123456789abcdef")
		}
		v := mustOpen(t, opts)
		secrets := []string{"sk-live-SECRET-one-4f1a", "second secret value with spaces", testPass}
		mustSet(t, v, "one", secrets[0])
		mustSet(t, v, "two", secrets[1])
		mustSet(t, v, "two", secrets[1]) // overwrite: the old ciphertext must not linger either
		if err := v.Rotate(); err != nil {
			t.Fatal(err)
		}
		mustGet(t, v, "one", secrets[0])

		var files int
		filepath.WalkDir(opts.StateDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			files++
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range secrets {
				for _, enc := range []string{s, hex.EncodeToString([]byte(s)), base64.StdEncoding.EncodeToString([]byte(s)),
					base64.RawURLEncoding.EncodeToString([]byte(s))} {
					if bytes.Contains(b, []byte(enc)) {
						t.Errorf("machine=%v: %s contains secret %q (as %q)", machine, p, s, enc)
					}
				}
			}
			return nil
		})
		if files < 2 { // vault.json and its lock, plus vault.key with the machine key
			t.Fatalf("walked only %d files", files)
		}
	}
}

func TestFileModes(t *testing.T) {
	opts := testOptions(t)
	opts.Passphrase = ""
	opts.MachineIDPath = writeMachineID(t, "id")
	mustSet(t, mustOpen(t, opts), "a", "1")
	for p, want := range map[string]fs.FileMode{
		opts.StateDir:       0o700 | fs.ModeDir,
		Path(opts.StateDir): 0o600,
		filepath.Join(opts.StateDir, "vault.key"): 0o600,
		Path(opts.StateDir) + ".lock":             0o600,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
}

func TestTamperedEntryRefusedOthersSurvive(t *testing.T) {
	opts := testOptions(t)
	v := mustOpen(t, opts)
	mustSet(t, v, "gateway_token", "tok")
	mustSet(t, v, "other", "kept")
	mustGet(t, v, "gateway_token", "tok") // the handle now holds the good file
	path := Path(opts.StateDir)
	var tampered string
	editFile(t, path, func(m map[string]any) {
		e := entry(m, "gateway_token")
		ct, _ := base64.StdEncoding.DecodeString(e["ciphertext"].(string))
		ct[0] ^= 1
		tampered = base64.StdEncoding.EncodeToString(ct)
		e["ciphertext"] = tampered
	})

	_, err := v.Get("gateway_token")
	wantErr(t, err, `entry "gateway_token"`, "authentication failed", path)
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("%v is not ErrAuthFailed", err)
	}
	mustGet(t, v, "other", "kept")

	// Writing another entry works and keeps the damaged one as it is.
	mustSet(t, v, "third", "3")
	b, _ := os.ReadFile(path)
	if !bytes.Contains(b, []byte(tampered)) {
		t.Fatal("Set of another entry dropped the damaged entry")
	}
	// Rotate cannot re-encrypt it, so it refuses, naming it, and writes nothing.
	assertUnchanged(t, path, v.Rotate, `"gateway_token"`, "nothing was changed")

	mustSet(t, v, "gateway_token", "fresh")
	if err := v.Rotate(); err != nil {
		t.Fatal(err)
	}
	mustGet(t, v, "gateway_token", "fresh")
	mustGet(t, v, "other", "kept")
}

func TestFlippedNonceRefused(t *testing.T) {
	opts := testOptions(t)
	v := mustOpen(t, opts)
	mustSet(t, v, "a", "1")
	editFile(t, Path(opts.StateDir), func(m map[string]any) {
		e := entry(m, "a")
		n, _ := base64.StdEncoding.DecodeString(e["nonce"].(string))
		n[11] ^= 0x80
		e["nonce"] = base64.StdEncoding.EncodeToString(n)
	})
	_, err := v.Get("a")
	wantErr(t, err, `entry "a"`, "authentication failed")
}

func TestSwappedEntriesRefused(t *testing.T) {
	opts := testOptions(t)
	v := mustOpen(t, opts)
	mustSet(t, v, "admin_token", "admin")
	mustSet(t, v, "guest_token", "guest")
	editFile(t, Path(opts.StateDir), func(m map[string]any) {
		es := m["entries"].(map[string]any)
		es["admin_token"], es["guest_token"] = es["guest_token"], es["admin_token"]
	})
	for _, n := range []string{"admin_token", "guest_token"} {
		_, err := v.Get(n)
		wantErr(t, err, `entry "`+n+`"`, "authentication failed")
	}
	// Renaming an entry is the same attack.
	editFile(t, Path(opts.StateDir), func(m map[string]any) {
		es := m["entries"].(map[string]any)
		es["renamed"] = es["admin_token"]
	})
	_, err := v.Get("renamed")
	wantErr(t, err, `entry "renamed"`, "authentication failed")
}

func TestTamperedHeaderRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
	}{
		{"lower n", func(m map[string]any) { m["kdf"].(map[string]any)["n"] = 2048 }},
		{"r", func(m map[string]any) { m["kdf"].(map[string]any)["r"] = 4 }},
		{"salt", func(m map[string]any) {
			m["kdf"].(map[string]any)["salt"] = base64.StdEncoding.EncodeToString(make([]byte, 32))
		}},
		{"check", func(m map[string]any) {
			c := m["check"].(map[string]any)
			ct, _ := base64.StdEncoding.DecodeString(c["ciphertext"].(string))
			ct[len(ct)-1] ^= 1
			c["ciphertext"] = base64.StdEncoding.EncodeToString(ct)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions(t)
			v := mustOpen(t, opts)
			mustSet(t, v, "a", "1")
			mustGet(t, v, "a", "1") // the handle now holds the good file
			path := Path(opts.StateDir)
			editFile(t, path, tc.edit)
			_, err := v.Get("a")
			wantErr(t, err, "header of "+path, "authentication failed")
			if !errors.Is(err, ErrAuthFailed) {
				t.Fatalf("%v is not ErrAuthFailed", err)
			}
			assertUnchanged(t, path, func() error { return v.Set("b", []byte("2")) }, "header")
			assertUnchanged(t, path, func() error { return v.Delete("a") }, "header")
			assertUnchanged(t, path, v.Rotate, "header")
		})
	}
}

func TestWrongPassphraseRefused(t *testing.T) {
	opts := testOptions(t)
	mustSet(t, mustOpen(t, opts), "a", "1")
	opts.Passphrase = "not the passphrase"
	wrong := mustOpen(t, opts)
	path := Path(opts.StateDir)
	_, err := wrong.Get("a")
	wantErr(t, err, "header of "+path, "authentication failed", "passphrase")
	_, err = wrong.List()
	wantErr(t, err, "authentication failed")
	assertUnchanged(t, path, func() error { return wrong.Set("b", []byte("2")) }, "authentication failed")
	assertUnchanged(t, path, wrong.Rotate, "authentication failed")
}

func TestKeySourceMismatch(t *testing.T) {
	opts := testOptions(t)
	mustSet(t, mustOpen(t, opts), "a", "1")
	machine := opts
	machine.Passphrase = ""
	machine.MachineIDPath = writeMachineID(t, "id")
	_, err := mustOpen(t, machine).Get("a")
	wantErr(t, err, "sealed with a passphrase", PassphraseEnv)

	opts2 := testOptions(t)
	machine.StateDir = opts2.StateDir
	mustSet(t, mustOpen(t, machine), "a", "1")
	_, err = mustOpen(t, opts2).Get("a")
	wantErr(t, err, "sealed with this machine's identity", "unset")
}

func TestTruncatedFileRefused(t *testing.T) {
	opts := testOptions(t)
	v := mustOpen(t, opts)
	mustSet(t, v, "a", "1")
	mustSet(t, v, "b", "2")
	path := Path(opts.StateDir)
	whole, _ := os.ReadFile(path)
	for _, n := range []int{0, 1, len(whole) / 3, len(whole) / 2, len(whole) - 3} {
		os.WriteFile(path, whole[:n], 0o600)
		_, err := v.Get("a")
		wantErr(t, err, path, "truncated?")
		assertUnchanged(t, path, func() error { return v.Set("c", []byte("3")) }, path)
		if _, err := v.List(); err == nil {
			t.Fatalf("List of a vault truncated to %d bytes succeeded", n)
		}
	}
	os.WriteFile(path, whole, 0o600)
	mustGet(t, v, "b", "2")
}

func TestMachineKey(t *testing.T) {
	opts := testOptions(t)
	opts.Passphrase = ""
	opts.MachineIDPath = writeMachineID(t, "4c4c4544004d3510804bb4c04f4e4d32")
	keyFile := filepath.Join(opts.StateDir, "vault.key")
	v := mustOpen(t, opts)
	if _, err := os.Stat(keyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open created the key file: %v", err)
	}
	mustSet(t, v, "a", "1")
	key, _ := os.ReadFile(keyFile)
	if len(bytes.TrimSpace(key)) != 64 {
		t.Fatalf("key file holds %q, want 64 hex digits", key)
	}
	mustGet(t, mustOpen(t, opts), "a", "1")

	// The same files on a machine with another identity do not open.
	other := opts
	other.MachineIDPath = writeMachineID(t, "ffffffffffffffffffffffffffffffff")
	_, err := mustOpen(t, other).Get("a")
	wantErr(t, err, "header of", "machine's identity or key file")

	// Nor with another key file (a copied vault.json without its vault.key).
	// The key file is checked whenever a handle decodes the vault (a fresh
	// handle here; Set always does), not on every Get of an unchanged file.
	os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	_, err = mustOpen(t, opts).Get("a")
	wantErr(t, err, "authentication failed")
	wantErr(t, v.Set("b", []byte("2")), "authentication failed")
	os.WriteFile(keyFile, key, 0o600)
	mustGet(t, mustOpen(t, opts), "a", "1")

	// A key file others can read is refused, not used.
	os.Chmod(keyFile, 0o644)
	_, err = mustOpen(t, opts).Get("a")
	wantErr(t, err, keyFile, "chmod 600")
	wantErr(t, v.Set("b", []byte("2")), "chmod 600")
	os.Chmod(keyFile, 0o600)

	// A missing key file is never silently regenerated for an existing vault.
	os.Remove(keyFile)
	_, err = mustOpen(t, opts).Get("a")
	wantErr(t, err, keyFile, "missing")
	wantErr(t, v.Set("b", []byte("2")), "missing")
	if _, err := os.Stat(keyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("Set recreated the key file of an existing vault")
	}
}

func TestMachineIDFallback(t *testing.T) {
	saved := machineIDPaths
	t.Cleanup(func() { machineIDPaths = saved })
	second := writeMachineID(t, "from-dbus")
	machineIDPaths = []string{filepath.Join(t.TempDir(), "absent"), second}
	v, err := OpenWithOptions(Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if string(v.machineID) != "from-dbus" {
		t.Fatalf("machine id %q, want the fallback's", v.machineID)
	}
}

func TestNoKeyMaterial(t *testing.T) {
	_, err := OpenWithOptions(Options{StateDir: t.TempDir(), MachineIDPath: filepath.Join(t.TempDir(), "absent")})
	wantErr(t, err, "no machine identity", PassphraseEnv)
	_, err = OpenWithOptions(Options{StateDir: t.TempDir(), MachineIDPath: writeMachineID(t, "  \n")})
	wantErr(t, err, "machine identity", PassphraseEnv)
}

func TestOpenPicksPassphraseFromEnv(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	t.Setenv(PassphraseEnv, testPass)
	v, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v.source() != sourcePassphrase || string(v.passphrase) != testPass {
		t.Fatalf("Open ignored %s", PassphraseEnv)
	}
	t.Setenv(PassphraseEnv, "")
	if v, err = Open(dir); err == nil && v.source() != sourceMachine {
		t.Fatal("empty passphrase used as a key")
	}
}

// TestReadsCreateNothing: reads and refused writes on a missing vault leave
// no trace, and reads of an existing one add no file (not even a lock).
func TestReadsCreateNothing(t *testing.T) {
	opts := testOptions(t)
	v := mustOpen(t, opts)
	if _, err := v.Get("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get on a missing vault: %v, want ErrNotFound", err)
	}
	if names, err := v.List(); err != nil || len(names) != 0 {
		t.Fatalf("List on a missing vault: %q, %v", names, err)
	}
	if err := v.Delete("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete on a missing vault: %v", err)
	}
	if err := v.Rotate(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Rotate on a missing vault: %v", err)
	}
	if _, err := os.Stat(opts.StateDir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("state dir was created: %v", err)
	}

	os.MkdirAll(opts.StateDir, 0o700)
	mustSet(t, v, "a", "1")
	os.Remove(Path(opts.StateDir) + ".lock")
	before := dirNames(t, opts.StateDir)
	os.Chmod(opts.StateDir, 0o500) // root ignores this; the listing check below does not
	t.Cleanup(func() { os.Chmod(opts.StateDir, 0o700) })
	mustGet(t, v, "a", "1")
	if _, err := v.Get("zz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing entry: %v", err)
	}
	if _, err := v.List(); err != nil {
		t.Fatal(err)
	}
	if after := dirNames(t, opts.StateDir); !slices.Equal(before, after) {
		t.Fatalf("reads changed the state dir: %q -> %q", before, after)
	}
}

func TestWritableStateDirRefused(t *testing.T) {
	opts := testOptions(t)
	v := mustOpen(t, opts)
	mustSet(t, v, "a", "1")
	os.Chmod(opts.StateDir, 0o777)
	_, err := v.Get("a")
	wantErr(t, err, "writable by group or others")
	wantErr(t, v.Set("b", nil), "writable by group or others")
}

func TestKeyDerivedOncePerProcess(t *testing.T) {
	opts := testOptions(t)
	before := derivedKeys.derived.Load()
	mustSet(t, mustOpen(t, opts), "a", "1") // creates the vault: one derivation
	for range 50 {
		mustGet(t, mustOpen(t, opts), "a", "1") // new handles, same salt: none
	}
	if got := derivedKeys.derived.Load() - before; got != 1 {
		t.Fatalf("%d scrypt derivations for one salt, want 1", got)
	}
	if err := mustOpen(t, opts).Rotate(); err != nil {
		t.Fatal(err)
	}
	mustGet(t, mustOpen(t, opts), "a", "1")
	if got := derivedKeys.derived.Load() - before; got != 2 {
		t.Fatalf("%d derivations after a rotation, want 2", got)
	}
}

// TestConcurrentUseInProcess: goroutines sharing and not sharing a handle;
// the first derivation happens once however many ask for it at the same time.
func TestConcurrentUseInProcess(t *testing.T) {
	opts := testOptions(t)
	mustSet(t, mustOpen(t, opts), "a", "1")
	saved := derivedKeys
	derivedKeys = &keyCache{entries: map[[32]byte]*cachedKey{}} // as in a fresh process
	t.Cleanup(func() { derivedKeys = saved })

	v := mustOpen(t, opts)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := v
			if g%2 == 0 {
				h = mustOpen(t, opts)
			}
			for i := range 5 {
				if got, err := h.Get("a"); err != nil || string(got) != "1" {
					t.Errorf("Get: %q, %v", got, err)
				}
				if err := h.Set(fmt.Sprintf("g%d-%d", g, i), []byte("x")); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := derivedKeys.derived.Load(); n != 1 {
		t.Fatalf("%d derivations, want 1", n)
	}
	if names, _ := v.List(); len(names) != 1+8*5 {
		t.Fatalf("%d entries, want %d: lost writes", len(names), 1+8*5)
	}
}

func TestScryptParams(t *testing.T) {
	opts := testOptions(t)
	opts.ScryptN = 0 // the default: this test is about it
	mustSet(t, mustOpen(t, opts), "a", "1")
	var f file
	b, _ := os.ReadFile(Path(opts.StateDir))
	json.Unmarshal(b, &f)
	if f.KDF.N != DefaultScryptN || DefaultScryptN < 1<<15 || f.KDF.R != 8 || f.KDF.P != 1 {
		t.Fatalf("kdf header %+v, want n=%d r=8 p=1", f.KDF, DefaultScryptN)
	}
	salt, _ := base64.StdEncoding.DecodeString(f.KDF.Salt)
	if len(salt) != 32 {
		t.Fatalf("salt of %d bytes", len(salt))
	}

	// Rotate re-salts with the configured N, so it upgrades a vault's cost.
	opts.ScryptN = minScryptN
	v := mustOpen(t, opts)
	if err := v.Rotate(); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(Path(opts.StateDir))
	json.Unmarshal(b, &f)
	salt2, _ := base64.StdEncoding.DecodeString(f.KDF.Salt)
	if f.KDF.N != minScryptN || bytes.Equal(salt, salt2) {
		t.Fatalf("after Rotate: n=%d, salt changed %v", f.KDF.N, !bytes.Equal(salt, salt2))
	}
	mustGet(t, v, "a", "1")

	for _, n := range []int{1000, 1 << 9, 1 << 21} {
		opts.ScryptN = n
		_, err := OpenWithOptions(opts)
		wantErr(t, err, "ScryptN", "power of two")
	}
}

func TestStaleTempFilesRemoved(t *testing.T) {
	opts := testOptions(t)
	v := mustOpen(t, opts)
	mustSet(t, v, "a", "1")
	stale := filepath.Join(opts.StateDir, ".vault.json.tmp-12345")
	os.WriteFile(stale, []byte("half a vault"), 0o600)
	mustSet(t, v, "b", "2")
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("stale temp file left behind")
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"a", "gateway_token", "tailnet.authkey", "node-1", "0", strings.Repeat("x", 128)} {
		if err := ValidName(ok); err != nil {
			t.Errorf("ValidName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Gateway", "_x", ".x", "-x", "a b", "a/b", "a}", "é", "a\x00", strings.Repeat("x", 129)} {
		err := ValidName(bad)
		wantErr(t, err, "invalid entry name", "a-z, 0-9")
	}
}

func writeMachineID(t testing.TB, id string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "machine-id")
	if err := os.WriteFile(p, []byte(id+"\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	return p
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
