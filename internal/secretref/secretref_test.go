package secretref

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawguard/clawguard/vault"
)

func TestResolve(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	t.Setenv(vault.PassphraseEnv, "secretref test passphrase")
	v, err := vault.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Set("tok", []byte("from-the-vault")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte("from-a-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECRETREF_TEST", "from-env")
	t.Setenv("SECRETREF_EMPTY", "")

	get := OpenVault(state)
	for raw, want := range map[string]string{
		"{vault.tok}":            "from-the-vault",
		"{env.SECRETREF_TEST}":   "from-env",
		"{file." + file + "}":    "from-a-file",
		"literal":                "literal",
		"a-{env.SECRETREF_TEST}": "a-from-env",
	} {
		if got, err := Resolve(raw, get); err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
	// Nothing resolves to an empty secret, and vault errors come through.
	for _, raw := range []string{"{env.SECRETREF_EMPTY}", "{env.SECRETREF_UNSET}", "{nope.x}", "{vault.missing}"} {
		if got, err := Resolve(raw, get); err == nil {
			t.Errorf("Resolve(%q) = %q, want an error", raw, got)
		}
	}
	_, err = Resolve("{vault.missing}", get)
	var ve *VaultError
	if !errors.Is(err, vault.ErrNotFound) || !errors.As(err, &ve) || ve.Name != "missing" || !strings.HasPrefix(err.Error(), "{vault.missing}: ") {
		t.Errorf("missing entry: %v, want a VaultError naming {vault.missing} around vault.ErrNotFound", err)
	}
	// The vault is opened only when a {vault.*} placeholder needs it.
	calls := 0
	counting := func(string) ([]byte, error) { calls++; return nil, errors.New("unused") }
	if _, err := Resolve("{env.SECRETREF_TEST}", counting); err != nil || calls != 0 {
		t.Errorf("env placeholder: err %v, vault calls %d", err, calls)
	}
	if _, err := Resolve("{vault.x}", counting); err == nil || !strings.Contains(err.Error(), "unused") || calls != 1 {
		t.Errorf("vault placeholder: err %v, vault calls %d", err, calls)
	}
}

func TestResolveSyntax(t *testing.T) {
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte("k3y\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECRETREF_TEST", "v")
	none := func(string) ([]byte, error) { return nil, errors.New("no vault") }
	for raw, want := range map[string]string{
		`\{env.SECRETREF_TEST\}`: "{env.SECRETREF_TEST}",
		`a\b`:                    `a\b`,
		"{unclosed":              "{unclosed",
		"x}":                     "x}",
		"{file." + file + "}":    "k3y",
		"{env.SECRETREF_TEST}{env.SECRETREF_TEST}": "vv",
	} {
		if got, err := Resolve(raw, none); err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
	for raw, want := range map[string]string{
		"{file./nonexistent/secret}": "placeholder {file./nonexistent/secret}: open /nonexistent/secret: no such file or directory",
		"{env.}":                     "unrecognized placeholder {env.}",
		"{system.hostname}":          "unrecognized placeholder {system.hostname}",
		"{env.SECRETREF_UNSET_X}":    "evaluated placeholder {env.SECRETREF_UNSET_X} is empty",
	} {
		if _, err := Resolve(raw, none); err == nil || err.Error() != want {
			t.Errorf("Resolve(%q): %v; want %q", raw, err, want)
		}
	}
}

func TestSingleAndLiteral(t *testing.T) {
	if src, name, ok := Single("{vault.gate-token}"); !ok || src != "vault" || name != "gate-token" {
		t.Errorf("Single(vault) = %q, %q, %v", src, name, ok)
	}
	for _, raw := range []string{"literal", "{env.A}{env.B}", "x{env.A}", "{nope.x}", "{env.}"} {
		if _, _, ok := Single(raw); ok {
			t.Errorf("Single(%q) = ok", raw)
		}
	}
	if !IsLiteral("hunter2") || IsLiteral("{env.X}") || IsLiteral("a{$X}b") {
		t.Error("IsLiteral misjudges")
	}
}

// FuzzResolve: any input resolves or fails with an error, never panics,
// and a value without braces or backslashes is returned unchanged.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"{env.HOME}", `\{x\}`, "{", "}{", "{file./dev/null}", "{vault.a}", `\\{env.X}`} {
		f.Add(s)
	}
	none := func(string) ([]byte, error) { return nil, errors.New("no vault") }
	f.Fuzz(func(t *testing.T, raw string) {
		if strings.Contains(raw, "file.") {
			return // reading arbitrary paths is not the point here
		}
		got, err := Resolve(raw, none)
		if !strings.ContainsAny(raw, `{}\`) && (err != nil || got != raw) {
			t.Fatalf("Resolve(%q) = %q, %v", raw, got, err)
		}
	})
}
