package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/clawguard/clawguard/wire"
)

// edit replaces b[start:end] with repl.
type edit struct {
	start, end int
	repl       string
}

// applyEdits applies non-overlapping edits (overlapping ones after the
// first are dropped).
func applyEdits(b []byte, edits []edit) []byte {
	slices.SortStableFunc(edits, func(x, y edit) int { return x.start - y.start })
	var out bytes.Buffer
	pos := 0
	for _, e := range edits {
		if e.start < pos {
			continue
		}
		out.Write(b[pos:e.start])
		out.WriteString(e.repl)
		pos = e.end
	}
	out.Write(b[pos:])
	return out.Bytes()
}

// lineSpan returns the byte span of the 1-based line n including its line
// ending.
func lineSpan(b []byte, n int) (int, int, bool) {
	start := 0
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(b[start:], '\n')
		if j < 0 {
			return 0, 0, false
		}
		start += j + 1
	}
	end := bytes.IndexByte(b[start:], '\n')
	if end < 0 {
		return start, len(b), start < len(b)
	}
	return start, start + end + 1, true
}

func placeholder(entry string) string { return "{vault." + entry + "}" }

// planRewrites builds and verifies every file rewrite and adds its steps.
func (p *FixPlan) planRewrites(a *auditor, moves []*moveSecretAction, rates []*rateLimitAction) {
	byFile := map[string][]*moveSecretAction{}
	for _, m := range moves {
		byFile[m.file] = append(byFile[m.file], m)
	}
	rateByFile := map[string][]*rateLimitAction{}
	for _, r := range rates {
		rateByFile[r.file] = append(rateByFile[r.file], r)
	}
	// Env variables leaving an env file leave the Caddyfile's {env.KEY}
	// behind: those become {vault.NAME} in the same fix.
	var renames []*moveSecretAction
	for _, m := range moves {
		if m.format == formatEnv {
			renames = append(renames, m)
		}
	}
	files := map[string]bool{}
	for f := range byFile {
		files[f] = true
	}
	for f := range rateByFile {
		files[f] = true
	}
	if cfg := a.opts.Config; cfg != "" && len(renames) > 0 {
		if old, err := readBounded(cfg); err == nil {
			for _, m := range renames {
				if bytes.Contains(old, []byte("{env."+m.envKey+"}")) {
					files[cfg] = true
				}
			}
		}
	}
	for _, path := range sortedKeys(files) {
		p.planRewrite(a, path, byFile[path], rateByFile[path], renames)
	}
}

// planRewrite plans one file: the secrets to store, then the rewrite.
func (p *FixPlan) planRewrite(a *auditor, path string, moves []*moveSecretAction, rates []*rateLimitAction, renames []*moveSecretAction) {
	rw := &rewrite{path: path}
	var storeSteps []int
	for _, m := range moves {
		entry := p.entries[m.value]
		if slices.Contains(rw.secrets, m.value) {
			continue
		}
		rw.secrets = append(rw.secrets, m.value)
		s := Step{Action: StepStoreSecret, Path: path, Entry: entry, Status: StatusPlanned, Reused: p.inVault[m.value],
			Description: fmt.Sprintf("store the %s (%s:%d) in the vault as %s", m.what, path, m.line, entry)}
		if s.Reused {
			s.Description = fmt.Sprintf("the %s (%s:%d) is already in the vault as %s", m.what, path, m.line, entry)
		}
		storeSteps = append(storeSteps, len(p.steps))
		p.steps = append(p.steps, s)
	}
	rw.step = len(p.steps)
	step := Step{Action: StepRewrite, Path: path, Status: StatusPlanned}
	var what []string
	for _, m := range moves {
		what = append(what, fmt.Sprintf("line %d: the %s becomes %s", m.line, m.what, p.replacement(m)))
	}
	for _, r := range rates {
		what = append(what, fmt.Sprintf("line %d: remove `rate_limit off`", r.line))
	}
	err := p.build(a, rw, moves, rates, renames)
	if path == a.opts.Config {
		for _, m := range renames {
			if bytes.Contains(rw.old, []byte("{env."+m.envKey+"}")) {
				what = append(what, fmt.Sprintf("{env.%s} becomes {vault.%s}", m.envKey, p.entries[m.value]))
			}
		}
	}
	step.Description = fmt.Sprintf("rewrite %s (%s); the old content is kept, secrets replaced by placeholders, in %s",
		path, strings.Join(what, "; "), filepath.Join(p.opts.StateDir, wire.DirBackups))
	if err != nil {
		step.Status, step.Error = StatusRefused, err.Error()
		for _, i := range storeSteps {
			p.steps[i].Status, p.steps[i].Error = StatusRefused, "its file cannot be rewritten safely"
		}
	} else {
		p.rewrites = append(p.rewrites, rw)
	}
	p.steps = append(p.steps, step)
}

// replacement says what a moved secret turns into, for the plan.
func (p *FixPlan) replacement(m *moveSecretAction) string {
	switch m.format {
	case formatEnv:
		return "a comment (the value moves to the vault)"
	case formatSidecar:
		return fmt.Sprintf("\"secrets\": {%q: %q}", m.envKey, p.entries[m.value])
	}
	return placeholder(p.entries[m.value])
}

// build reads the file, makes its new content and its backup, and checks
// both: the new content must mean the same with the secrets moved, and the
// backup must not hold any secret.
func (p *FixPlan) build(a *auditor, rw *rewrite, moves []*moveSecretAction, rates []*rateLimitAction, renames []*moveSecretAction) error {
	if !slices.Contains(a.dirs(), filepath.Dir(rw.path)) {
		return fmt.Errorf("%s is outside the config and state directories", rw.path)
	}
	fi, err := os.Lstat(rw.path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (a symlink?); it is never rewritten through", rw.path)
	}
	if rw.old, err = readBounded(rw.path); err != nil {
		return err
	}
	format := formatCaddyfile
	if len(moves) > 0 {
		format = moves[0].format
	}
	switch format {
	case formatEnv:
		err = p.buildEnv(rw, moves)
	case formatSidecar:
		err = p.buildSidecar(rw, moves)
	default:
		err = p.buildCaddyfile(rw, moves, rates, renames)
	}
	if err != nil {
		return err
	}
	for _, m := range moves {
		if holdsSecret(rw.new, m.value, format) {
			return fmt.Errorf("the %s would still be in the rewritten file", m.what)
		}
		if holdsSecret(rw.backup, m.value, format) {
			return fmt.Errorf("the backup would still hold the %s", m.what)
		}
	}
	return nil
}

// holdsSecret reports whether b contains value, raw or as its format
// encodes it (JSON escapes, Caddyfile and env quoting).
func holdsSecret(b []byte, value string, format fileFormat) bool {
	if bytes.Contains(b, []byte(value)) {
		return true
	}
	switch format {
	case formatSidecar:
		strs, err := jsonStrings(b)
		if err != nil {
			return true // cannot tell: assume the worst
		}
		for _, s := range strs {
			if strings.Contains(s.value, value) {
				return true
			}
		}
	case formatEnv:
		entries, _ := parseEnvFile(b)
		for _, e := range entries {
			if strings.Contains(e.value, value) {
				return true
			}
		}
	default:
		toks, err := caddyfile.Tokenize(b, "")
		if err != nil {
			return true
		}
		for _, t := range toks {
			if strings.Contains(t.Text, value) {
				return true
			}
		}
	}
	return false
}

// redact replaces every occurrence of each moved secret, raw and JSON
// escaped, with its placeholder: what backups keep.
func (p *FixPlan) redact(b []byte, moves []*moveSecretAction) []byte {
	for _, m := range moves {
		ph := []byte(placeholder(p.entries[m.value]))
		b = bytes.ReplaceAll(b, []byte(m.value), ph)
		if esc, err := json.Marshal(m.value); err == nil {
			b = bytes.ReplaceAll(b, esc[1:len(esc)-1], ph)
		}
	}
	return b
}

// buildCaddyfile moves literals to {vault.NAME}, renames {env.KEY} of
// moved env variables and removes `rate_limit off` lines, then checks with
// Caddy's adapter that the result still loads and means the same.
func (p *FixPlan) buildCaddyfile(rw *rewrite, moves []*moveSecretAction, rates []*rateLimitAction, renames []*moveSecretAction) error {
	var edits, secretEdits []edit
	for _, m := range moves {
		for _, sp := range delimitedSpans(rw.old, m.value) {
			secretEdits = append(secretEdits, edit{sp[0], sp[1], placeholder(p.entries[m.value])})
		}
	}
	edits = append(edits, secretEdits...)
	for _, m := range renames {
		ref := "{env." + m.envKey + "}"
		for off := 0; ; {
			i := bytes.Index(rw.old[off:], []byte(ref))
			if i < 0 {
				break
			}
			edits = append(edits, edit{off + i, off + i + len(ref), placeholder(p.entries[m.value])})
			off += i + len(ref)
		}
	}
	for _, r := range rates {
		start, end, ok := lineSpan(rw.old, r.line)
		if !ok {
			return fmt.Errorf("line %d is not in the file", r.line)
		}
		edits = append(edits, edit{start, end, ""})
	}
	rw.new = applyEdits(rw.old, edits)
	rw.backup = p.redact(applyEdits(rw.old, secretEdits), moves)

	newJSON, err := adaptCaddyfile(rw.new, rw.path)
	if err != nil {
		return fmt.Errorf("the rewritten Caddyfile would not load: %w", err)
	}
	oldJSON, err := adaptCaddyfile(rw.old, rw.path)
	if err != nil {
		return nil // it did not load before (say, a literal auth_key); it does now
	}
	repl := map[string]string{}
	for _, m := range moves {
		repl[m.value] = placeholder(p.entries[m.value])
	}
	for _, m := range renames {
		repl["{env."+m.envKey+"}"] = placeholder(p.entries[m.value])
	}
	var want, got any
	if err := json.Unmarshal(oldJSON, &want); err != nil {
		return err
	}
	if err := json.Unmarshal(newJSON, &got); err != nil {
		return err
	}
	want = normalizeAdapted(want, repl)
	got = normalizeAdapted(got, nil)
	if !reflect.DeepEqual(want, got) {
		return errors.New("the rewritten Caddyfile would load differently beyond the moved secrets and rate limit; change it by hand")
	}
	return nil
}

// normalizeAdapted replaces strings per repl and drops the rate_limit of
// gates whose rate limiting is off (removing `rate_limit off` restores the
// default), so two adapted configs can be compared for what else changed.
func normalizeAdapted(v any, repl map[string]string) any {
	switch t := v.(type) {
	case map[string]any:
		if t["handler"] == "clawguard" {
			if rl, ok := t["rate_limit"].(map[string]any); ok && rl["off"] == true {
				delete(t, "rate_limit")
			}
		}
		for k, e := range t {
			t[k] = normalizeAdapted(e, repl)
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = normalizeAdapted(e, repl)
		}
		return t
	case string:
		for from, to := range repl {
			t = strings.ReplaceAll(t, from, to)
		}
		return t
	}
	return v
}

// buildEnv turns each moved KEY=VALUE line into a comment naming the vault
// entry, leaving every other line as it was.
func (p *FixPlan) buildEnv(rw *rewrite, moves []*moveSecretAction) error {
	entries, bad := parseEnvFile(rw.old)
	var edits, backupEdits []edit
	moved := map[int]bool{}
	for _, m := range moves {
		found := false
		for i, e := range entries {
			if e.key != m.envKey || e.value != m.value || moved[i] {
				continue
			}
			moved[i], found = true, true
			ph := placeholder(p.entries[m.value])
			edits = append(edits, edit{e.start, e.end, fmt.Sprintf("# %s: moved to the clawguard vault as %s (clawguard audit --fix)", e.key, ph)})
			backupEdits = append(backupEdits, edit{e.start, e.end, e.key + "=" + ph})
		}
		if !found {
			return fmt.Errorf("%s changed since it was audited", m.envKey)
		}
	}
	rw.new = applyEdits(rw.old, edits)
	rw.backup = p.redact(applyEdits(rw.old, backupEdits), moves)
	// Every other line must parse the same.
	newEntries, newBad := parseEnvFile(rw.new)
	var kept []envEntry
	for i, e := range entries {
		if !moved[i] {
			kept = append(kept, e)
		}
	}
	if len(newEntries) != len(kept) || len(newBad) != len(bad) {
		return errors.New("the rewritten env file would parse differently; change it by hand")
	}
	for i := range kept {
		if newEntries[i].key != kept[i].key || newEntries[i].value != kept[i].value {
			return errors.New("the rewritten env file would parse differently; change it by hand")
		}
	}
	return nil
}

// buildSidecar moves sandbox profile env variables to the profile's
// "secrets" map (variable -> vault entry), which the sidecar resolves at
// each command. The file is re-encoded (two-space indent, keys sorted).
func (p *FixPlan) buildSidecar(rw *rewrite, moves []*moveSecretAction) error {
	var root map[string]any
	dec := json.NewDecoder(bytes.NewReader(rw.old))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return fmt.Errorf("decoding: %w", err)
	}
	profiles, _ := root["sandboxes"].(map[string]any)
	for _, m := range moves {
		prof, _ := profiles[m.profile].(map[string]any)
		env, _ := prof["env"].(map[string]any)
		if prof == nil || env == nil || env[m.envKey] != m.value {
			return fmt.Errorf("sandbox profile %q env %s changed since it was audited", m.profile, m.envKey)
		}
		secrets, _ := prof["secrets"].(map[string]any)
		if secrets == nil {
			secrets = map[string]any{}
		}
		if _, dup := secrets[m.envKey]; dup {
			return fmt.Errorf("sandbox profile %q has %s in both env and secrets; remove one by hand", m.profile, m.envKey)
		}
		delete(env, m.envKey)
		if len(env) == 0 {
			delete(prof, "env")
		}
		secrets[m.envKey] = p.entries[m.value]
		prof["secrets"] = secrets
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		return err
	}
	rw.new = out.Bytes()
	rw.backup = p.redact(slices.Clone(rw.old), moves)
	return nil
}
