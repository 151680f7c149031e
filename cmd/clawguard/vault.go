package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/clawguard/clawguard/statedir"
	"github.com/clawguard/clawguard/vault"
)

func init() {
	register(&command{
		name:    "vault",
		summary: "encrypted secrets: vault set|get|list|rm|rotate|import-env …",
		run:     runVault,
	})
}

// vaultVerbs maps each verb to its usage line and implementation.
var vaultVerbs = map[string]struct {
	usage string
	run   func(c *cli, v *vault.Vault, dir string, args []string, asJSON bool) error
	nargs int // positional arguments: exactly nargs, or at least one when -1
}{
	"set":        {"vault set [--state-dir DIR] NAME   (the value is read from stdin, or prompted for without echo on a terminal)", vaultSet, 1},
	"get":        {"vault get [--state-dir DIR] NAME   (prints the value to stdout)", vaultGet, 1},
	"list":       {"vault list [--state-dir DIR] [--json]", vaultList, 0},
	"rm":         {"vault rm [--state-dir DIR] NAME", vaultRm, 1},
	"rotate":     {"vault rotate [--state-dir DIR]   (re-encrypts every entry under a new salt and key)", vaultRotate, 0},
	"import-env": {"vault import-env [--state-dir DIR] VAR...   (stores $VAR under the name lowercase(VAR))", vaultImportEnv, -1},
}

const vaultHelp = `Usage: clawguard vault <verb> [flags] [args]

Secrets are encrypted with AES-256-GCM in <state_dir>/vault.json under a key
derived with scrypt from this machine's identity plus <state_dir>/vault.key,
or from $CLAWGUARD_VAULT_PASSPHRASE when it is set. Values never go on the
command line: set reads stdin, import-env reads the environment.

Verbs:
  set NAME          store stdin (one trailing newline stripped) or a hidden prompt's input
  get NAME          print the value to stdout, byte for byte
  list [--json]     print the entry names
  rm NAME           delete an entry
  rotate            re-encrypt everything under a new salt and key
  import-env VAR... store each environment variable VAR as lowercase(VAR)

Examples:
  clawguard vault set gateway_token            # prompts, input hidden
  printf %s "$TOKEN" | clawguard vault set gateway_token
  OPENAI_API_KEY=... clawguard vault import-env OPENAI_API_KEY   # entry openai_api_key
  curl -H "Authorization: Bearer $(clawguard vault get gateway_token)" ...

Every verb takes --state-dir and --help.
`

func runVault(_ context.Context, c *cli, args []string) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		io.WriteString(c.stdout, vaultHelp)
		return flag.ErrHelp
	}
	names := []string{"set", "get", "list", "rm", "rotate", "import-env"}
	verb, args, err := subcommand(args, names...)
	if err != nil {
		return err
	}
	spec := vaultVerbs[verb]
	fs := c.flagSet("vault "+verb, spec.usage)
	dirFlag := stateDirFlag(fs)
	asJSON := false
	if verb == "list" {
		fs.BoolVar(&asJSON, "json", false, "print JSON: {\"vault\": path, \"names\": [...]}")
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case spec.nargs == -1 && len(pos) == 0:
		return usageError{verb + ": name at least one environment variable"}
	case spec.nargs == 1 && verb == "set" && len(pos) > 1:
		// Do not echo the arguments: the extra one is likely the secret.
		return usageError{"set takes only NAME: the value is read from stdin or a prompt, never from the command line"}
	case spec.nargs >= 0 && len(pos) != spec.nargs:
		return usageError{fmt.Sprintf("%s takes %d argument(s), got %d; see clawguard vault %s --help", verb, spec.nargs, len(pos), verb)}
	}
	dir := statedir.Resolve(*dirFlag)
	v, err := vault.Open(dir)
	if err != nil {
		return err
	}
	return spec.run(c, v, dir, pos, asJSON)
}

// parseInterspersed parses flags wherever they appear among args (the flag
// package stops at the first positional argument) and returns the
// positional ones. Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func vaultSet(c *cli, v *vault.Vault, dir string, args []string, _ bool) error {
	name := args[0]
	if err := vault.ValidName(name); err != nil {
		return usageError{err.Error()}
	}
	value, err := readSecret(c, name)
	if err != nil {
		return err
	}
	if len(value) == 0 {
		return errors.New("empty value: nothing stored (pipe the value to stdin, or type it at the prompt)")
	}
	if err := v.Set(name, value); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "stored %q in %s\n", name, vault.Path(dir))
	return nil
}

// readSecret reads a value from a hidden prompt when stdin is a terminal,
// else all of stdin minus one trailing newline ("\n" or "\r\n").
func readSecret(c *cli, name string) ([]byte, error) {
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(c.stderr, "Value for %s (input hidden): ", name)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return nil, fmt.Errorf("read value from terminal: %w", err)
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(c.stdin, vault.MaxValueSize+3))
	if err != nil {
		return nil, fmt.Errorf("read value from stdin: %w", err)
	}
	b, ok := bytes.CutSuffix(b, []byte("\n"))
	if ok {
		b, _ = bytes.CutSuffix(b, []byte("\r"))
	}
	if len(b) > vault.MaxValueSize {
		return nil, fmt.Errorf("read value from stdin: more than %d bytes", vault.MaxValueSize)
	}
	return b, nil
}

func vaultGet(c *cli, v *vault.Vault, _ string, args []string, _ bool) error {
	value, err := v.Get(args[0])
	if err != nil {
		return err
	}
	if f, ok := c.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(c.stderr, "warning: printing secret %q on a terminal\n", args[0])
		value = append(value, '\n')
	}
	_, err = c.stdout.Write(value)
	return err
}

func vaultList(c *cli, v *vault.Vault, dir string, _ []string, asJSON bool) error {
	names, err := v.List()
	if err != nil {
		return err
	}
	if asJSON {
		return c.writeJSON(struct {
			Vault string   `json:"vault"`
			Names []string `json:"names"`
		}{vault.Path(dir), names})
	}
	if len(names) == 0 {
		fmt.Fprintf(c.stderr, "no entries in %s\n", vault.Path(dir))
	}
	for _, n := range names {
		fmt.Fprintln(c.stdout, n)
	}
	return nil
}

func vaultRm(c *cli, v *vault.Vault, dir string, args []string, _ bool) error {
	if err := v.Delete(args[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "removed %q from %s\n", args[0], vault.Path(dir))
	return nil
}

func vaultRotate(c *cli, v *vault.Vault, dir string, _ []string, _ bool) error {
	if err := v.Rotate(); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "rotated %s: every entry re-encrypted under a new salt and key\n", vault.Path(dir))
	return nil
}

// vaultImportEnv stores each named environment variable under
// lowercase(VAR). Every argument is checked before anything is stored, and
// arguments are never echoed unless they are valid variable names: a
// mistaken VAR=value must not print the value.
func vaultImportEnv(c *cli, v *vault.Vault, dir string, args []string, _ bool) error {
	type item struct {
		env, name string
		value     []byte
	}
	var items []item
	seen := map[string]bool{}
	for i, env := range args {
		if !isEnvName(env) {
			return usageError{fmt.Sprintf("argument %d is not an environment variable name (letters, digits, '_'); import-env takes names such as OPENAI_API_KEY, never values", i+1)}
		}
		name := strings.ToLower(env)
		if err := vault.ValidName(name); err != nil {
			return usageError{fmt.Sprintf("%s: %v; store it under another name with: printenv %s | clawguard vault set NAME", env, err, env)}
		}
		if seen[name] {
			return usageError{fmt.Sprintf("%s named twice", env)}
		}
		seen[name] = true
		value, ok := os.LookupEnv(env)
		switch {
		case !ok:
			return fmt.Errorf("environment variable %s is not set; nothing stored", env)
		case value == "":
			return fmt.Errorf("environment variable %s is empty; nothing stored", env)
		}
		items = append(items, item{env, name, []byte(value)})
	}
	for _, it := range items {
		if err := v.Set(it.name, it.value); err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "stored $%s as %q in %s\n", it.env, it.name, vault.Path(dir))
	}
	return nil
}

func isEnvName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_', 'A' <= r && r <= 'Z', 'a' <= r && r <= 'z':
		case i > 0 && '0' <= r && r <= '9':
		default:
			return false
		}
	}
	return s != ""
}
