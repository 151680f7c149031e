package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/clawguard/clawguard/internal/secretref"
)

// secretSlot is a place in a Caddyfile that holds a secret. Slots where
// clawguard resolves {vault.NAME} can have their literal moved to the vault.
type secretSlot struct {
	what  string // for messages: "gate token", "HMAC key ops", …
	name  string // suggested vault entry name
	vault bool   // {vault.NAME} works here
}

// authHeaderRE matches header fields that carry credentials.
var authHeaderRE = regexp.MustCompile(`(?i)^[+-]?(?:proxy-)?(?:authorization|x-api-key|api-key|.*token.*|.*secret.*|.*api[-_]?key.*)$`)

// slotOf says whether argument i of line l holds a secret, or nil.
func slotOf(l cfLine, i int) *secretSlot {
	args := l.args()
	switch {
	case l.parent() == "clawguard" && l.name() == "token":
		return &secretSlot{what: "gate token", name: "gateway_token", vault: true}
	case l.parent() == "clawguard" && l.name() == "hmac" && i == 1:
		return &secretSlot{what: "HMAC key " + args[0].Text, name: vaultName("hmac_" + args[0].Text), vault: true}
	case l.name() == "auth_key" && l.parent() == "node" && l.in("tailnet"):
		node := "node"
		if b := l.block("node"); len(b) > 1 {
			node = b[1]
		}
		return &secretSlot{what: "tailnet auth key of node " + node, name: vaultName("tailnet_" + node + "_auth_key"), vault: true}
	}
	switch l.name() {
	case "header_up", "header_down", "header", "request_header":
		for j := 0; j < i; j++ {
			if authHeaderRE.MatchString(args[j].Text) {
				return &secretSlot{what: "header " + strings.TrimLeft(args[j].Text, "+-") + " (" + l.name() + ")"}
			}
		}
	}
	return nil
}

// tokenFingerprint is how the gate names a literal token upstream
// (token:<fingerprint>): the first 4 bytes of its SHA-256, hex.
func tokenFingerprint(tok string) string {
	d := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(d[:4])
}

// caddyfileSecrets finds literal secrets in a Caddyfile: every literal in a
// secret slot, every known credential format anywhere (comments included).
func caddyfileSecrets(c *caddyConfig, admins map[string]bool) []Finding {
	var out []Finding
	flagged := map[int]bool{}
	for _, l := range c.lines {
		for i, t := range l.args() {
			if !secretref.IsLiteral(t.Text) || passwordHash(t.Text) {
				continue
			}
			slot := slotOf(l, i)
			kind, _ := knownSecret(t.Text)
			value := t.Text
			if slot != nil && !slot.vault {
				value = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(value, "Bearer "), "Basic "), "Token "))
			}
			var f Finding
			switch {
			case slot != nil && slot.vault:
				f = Finding{Severity: SeverityCritical,
					Finding: fmt.Sprintf("the %s is written in the Caddyfile as a literal (%s)", slot.what, describeSecret(kind, t.Text))}
			case slot != nil && (kind != "" || secretValue(value)):
				f = Finding{Severity: SeverityCritical,
					Finding: fmt.Sprintf("%s carries a literal credential (%s)", slot.what, describeSecret(kind, value))}
			case kind != "":
				f = Finding{Severity: SeverityCritical,
					Finding: fmt.Sprintf("%s holds %s", l.name(), kind)}
			default:
				continue
			}
			f.Path, f.Line = c.path, t.Line
			flagged[t.Line] = true
			if slot != nil && slot.vault && len(delimitedOnLine(c.raw, t.Text, t.Line)) > 0 {
				name := slot.name
				if l.name() == "token" && admins["token:"+tokenFingerprint(t.Text)] {
					// An admins entry names this token by its fingerprint;
					// keep that name so the admin keeps access.
					name = tokenFingerprint(t.Text)
				}
				f.Remedy = "clawguard audit --fix moves it to the vault and writes {vault." + name + "} in its place"
				f.fix = &moveSecretAction{file: c.path, format: formatCaddyfile, value: t.Text, name: name, line: t.Line, what: slot.what}
			} else if slot != nil && slot.vault {
				f.Remedy = "store it with `clawguard vault set NAME` and write {vault.NAME} in its place"
			} else {
				f.Remedy = "store it outside the Caddyfile: {env.NAME} from a root-only environment file, or {file./path} of a 0600 file"
			}
			out = append(out, f)
		}
	}
	// Literal gate tokens that came from a snippet or an imported file,
	// which the lines above do not see: the adapted config does.
	if c.adaptErr == nil {
		seen := map[string]bool{}
		for _, l := range c.lines {
			if l.parent() == "clawguard" && l.name() == "token" {
				for _, t := range l.args() {
					seen[t.Text] = true
				}
			}
		}
		for _, g := range c.gates() {
			for i, tok := range g.Tokens {
				if secretref.IsLiteral(tok) && !seen[tok] {
					seen[tok] = true
					out = append(out, Finding{Severity: SeverityCritical, Path: c.path,
						Finding: fmt.Sprintf("token %d of the gate on server %s is a literal (%d characters), written in a snippet or an imported file", i+1, g.server, len(tok)),
						Remedy:  "store it with `clawguard vault set NAME` and write {vault.NAME} in its place"})
				}
			}
		}
	}
	// Credentials in comments, or where the lexer did not reach.
	for n, line := range bytes.Split(c.raw, []byte("\n")) {
		if flagged[n+1] {
			continue
		}
		if kind, _ := knownSecret(string(line)); kind != "" {
			out = append(out, Finding{Severity: SeverityCritical, Path: c.path, Line: n + 1,
				Finding: fmt.Sprintf("line %d holds %s outside any directive (a comment?)", n+1, kind),
				Remedy:  "delete it from the file; if it is in use, rotate it"})
		}
	}
	return out
}

// describeSecret says what a secret is without revealing it.
func describeSecret(kind, value string) string {
	if kind != "" {
		return kind
	}
	return fmt.Sprintf("%d characters", len(value))
}

// delimitedSpans returns the byte spans of s in b that stand alone: not
// part of a longer run of token characters.
func delimitedSpans(b []byte, s string) [][2]int {
	if s == "" {
		return nil
	}
	var out [][2]int
	for off := 0; ; {
		i := bytes.Index(b[off:], []byte(s))
		if i < 0 {
			return out
		}
		start, end := off+i, off+i+len(s)
		if (start == 0 || !tokenChar(b[start-1])) && (end == len(b) || !tokenChar(b[end])) {
			out = append(out, [2]int{start, end})
		}
		off = start + 1
	}
}

// delimitedOnLine returns the spans of s that start on the 1-based line.
func delimitedOnLine(b []byte, s string, line int) [][2]int {
	var out [][2]int
	for _, sp := range delimitedSpans(b, s) {
		if 1+bytes.Count(b[:sp[0]], []byte("\n")) == line {
			out = append(out, sp)
		}
	}
	return out
}

func tokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_-+/=.~$%", c) >= 0
}

// envRef is a use of an environment variable in the Caddyfile.
type envRef struct {
	line  int
	text  string // the placeholder as written
	where string
	vault bool // the use is a whole value in a slot where {vault.NAME} works
}

// envRefs finds {env.KEY}, {$KEY} and {$KEY:default} in the Caddyfile.
func envRefs(c *caddyConfig, key string) []envRef {
	if c == nil {
		return nil
	}
	if c.isJSON {
		// Caddy JSON is not rewritten: any use blocks the move.
		if i := bytes.Index(c.raw, []byte("{env."+key+"}")); i >= 0 {
			return []envRef{{line: 1 + bytes.Count(c.raw[:i], []byte("\n")), text: "{env." + key + "}", where: "the JSON config"}}
		}
		return nil
	}
	var out []envRef
	for _, l := range c.lines {
		for i, t := range l.tokens {
			for _, ph := range []string{"{env." + key + "}", "{$" + key + "}", "{$" + key + ":"} {
				if !strings.Contains(t.Text, ph) {
					continue
				}
				r := envRef{line: t.Line, text: ph, where: l.name()}
				// {$KEY} is replaced when the Caddyfile is parsed, so only
				// {env.KEY} can become {vault.NAME} without changing when
				// the value is read.
				if i > 0 && t.Text == ph && strings.HasPrefix(ph, "{env.") {
					if s := slotOf(l, i-1); s != nil && s.vault {
						r.vault = true
					}
				}
				out = append(out, r)
			}
		}
	}
	return out
}

// envFileSecrets finds literal secrets in an env file.
func envFileSecrets(path string, c *caddyConfig) []Finding {
	data, err := readBounded(path)
	if err != nil {
		return []Finding{{Severity: SeverityWarn, Path: path, Finding: "cannot read the env file: " + err.Error(), Remedy: "check its permissions"}}
	}
	entries, bad := parseEnvFile(data)
	var out []Finding
	for _, e := range entries {
		kind, _ := knownSecret(e.value)
		if kind == "" && !(secretKey(e.key) && secretValue(e.value)) {
			continue
		}
		name := vaultName(e.key)
		f := Finding{Severity: SeverityCritical, Path: path, Line: e.line,
			Finding: fmt.Sprintf("%s is set to a literal secret (%s)", e.key, describeSecret(kind, e.value))}
		refs := envRefs(c, e.key)
		var blocking []string
		for _, r := range refs {
			if !r.vault {
				blocking = append(blocking, fmt.Sprintf("%s on line %d", r.where, r.line))
			}
		}
		if len(blocking) > 0 {
			f.Remedy = fmt.Sprintf("the Caddyfile uses %s where {vault.*} does not work (%s): keep it in a root-only env file (chmod 600), or use {file./path}", e.key, strings.Join(blocking, ", "))
		} else {
			f.Remedy = fmt.Sprintf("clawguard audit --fix moves it to the vault as {vault.%s} (programs that read %s from this file must then use `clawguard vault get %s`)", name, e.key, name)
			f.fix = &moveSecretAction{file: path, format: formatEnv, value: e.value, name: name, line: e.line, what: e.key, envKey: e.key}
		}
		out = append(out, f)
	}
	for _, b := range bad {
		if kind, _ := knownSecret(string(data[b.start:b.end])); kind != "" {
			out = append(out, Finding{Severity: SeverityCritical, Path: path, Line: b.line,
				Finding: fmt.Sprintf("line %d holds %s (and is not KEY=VALUE: %v)", b.line, kind, b.err),
				Remedy:  "move the secret to the vault (`clawguard vault set NAME`) and delete the line"})
		}
	}
	return out
}

// jsonString is a string value of a JSON document.
type jsonString struct {
	path  []string // object keys and array indexes from the root
	value string
	line  int
}

// jsonStrings lists every string value of a JSON document with its path
// and line.
func jsonStrings(data []byte) ([]jsonString, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out []jsonString
	var walk func(path []string) error
	walk = func(path []string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				for dec.More() {
					k, err := dec.Token()
					if err != nil {
						return err
					}
					key, _ := k.(string)
					if err := walk(append(slices.Clip(path), key)); err != nil {
						return err
					}
				}
			case '[':
				for i := 0; dec.More(); i++ {
					if err := walk(append(slices.Clip(path), strconv.Itoa(i))); err != nil {
						return err
					}
				}
			}
			_, err := dec.Token() // the closing delimiter
			return err
		case string:
			off := int(dec.InputOffset())
			out = append(out, jsonString{path: path, value: t, line: 1 + bytes.Count(data[:off], []byte("\n"))})
		}
		return nil
	}
	if err := walk(nil); err != nil {
		return nil, err
	}
	return out, nil
}

// lastKey is the innermost object key of a JSON path ("tokens" for
// tokens/0).
func lastKey(path []string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if _, err := strconv.Atoi(path[i]); err != nil {
			return path[i]
		}
	}
	return ""
}

// vaultRef reports whether a sidecar config path holds a vault entry name
// rather than a value: a profile's secrets and the identity keys.
func vaultRef(path []string) bool {
	return len(path) == 2 && path[0] == "identity_keys" ||
		len(path) == 4 && path[0] == "sandboxes" && path[2] == "secrets"
}

// jsonFileSecrets finds literal secrets in a JSON config file. In the
// sidecar's config, a sandbox profile's env secret can move to the vault
// (the profile's "secrets" map reads it from there at each command).
func jsonFileSecrets(path string, data []byte, sidecar bool) []Finding {
	strs, err := jsonStrings(data)
	if err != nil {
		return nil // config.parse reports files that do not parse
	}
	var out []Finding
	for _, s := range strs {
		if sidecar && vaultRef(s.path) {
			continue
		}
		key := lastKey(s.path)
		kind, _ := knownSecret(s.value)
		if kind == "" && !((secretKey(key) || key == "tokens") && secretValue(s.value)) {
			continue
		}
		where := strings.Join(s.path, ".")
		f := Finding{Severity: SeverityCritical, Path: path, Line: s.line,
			Finding: fmt.Sprintf("%s is a literal secret (%s)", where, describeSecret(kind, s.value)),
			Remedy:  "store it with `clawguard vault set NAME` and refer to the entry instead"}
		if sidecar && len(s.path) == 4 && s.path[0] == "sandboxes" && s.path[2] == "env" {
			name := vaultName(s.path[3])
			f.Remedy = fmt.Sprintf("clawguard audit --fix moves it to the vault as %q and lists it under the profile's \"secrets\"", name)
			f.fix = &moveSecretAction{file: path, format: formatSidecar, value: s.value, name: name, line: s.line,
				what: s.path[3] + " of sandbox profile " + strconv.Quote(s.path[1]), envKey: s.path[3], profile: s.path[1]}
		}
		out = append(out, f)
	}
	return out
}

func checkPlaintextSecrets(_ context.Context, a *auditor) ([]Finding, error) {
	var out []Finding
	scanned := map[string]bool{}
	c, err := a.config()
	if err == nil {
		scanned[c.path] = true
		if c.isJSON {
			out = append(out, jsonFileSecrets(c.path, c.raw, false)...)
		} else {
			admins := map[string]bool{}
			if c.adaptErr == nil {
				for _, g := range c.gates() {
					for _, ad := range g.Admins {
						admins[ad] = true
					}
				}
			}
			out = append(out, caddyfileSecrets(c, admins)...)
		}
	} else if !isSkip(err) {
		return nil, err
	}
	for _, p := range a.envFiles() {
		if scanned[p] {
			continue
		}
		scanned[p] = true
		if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
			continue // fs.config.perms reports links
		}
		out = append(out, envFileSecrets(p, c)...)
	}
	for _, dir := range a.dirs() {
		matches, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		if p := a.opts.SidecarConfig; exists(p) && !slices.Contains(matches, p) {
			matches = append(matches, p)
		}
		for _, p := range matches {
			if scanned[p] || (filepath.Dir(p) == a.opts.StateDir && slices.Contains(vaultFiles, filepath.Base(p))) {
				continue
			}
			scanned[p] = true
			if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
				continue
			}
			data, err := readBounded(p)
			if err != nil {
				continue
			}
			out = append(out, jsonFileSecrets(p, data, p == a.opts.SidecarConfig)...)
		}
	}
	if len(scanned) == 0 {
		return nil, skip("no config, env or JSON files found")
	}
	return out, nil
}
