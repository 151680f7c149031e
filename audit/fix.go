package audit

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/clawguard/clawguard/vault"
)

// Step kinds of a fix plan.
const (
	StepChmod       = "chmod"        // remove group and other permission bits
	StepStoreSecret = "store_secret" // put a plaintext secret into the vault
	StepRewrite     = "rewrite"      // rewrite a config file (backup kept)
)

// Step statuses.
const (
	StatusPlanned   = "planned"
	StatusDone      = "done"
	StatusUnchanged = "unchanged" // already as wanted when applied
	StatusFailed    = "failed"
	StatusRefused   = "refused" // not safe to do (a symlink, a file that does not verify)
)

// Step is one change of a fix plan.
type Step struct {
	Action      string `json:"action"`
	Path        string `json:"path,omitempty"`
	Description string `json:"description"`
	Status      string `json:"status"`
	Error       string `json:"error,omitempty"`
	// From and To are the modes of a chmod, in octal.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Entry is the vault entry a secret goes to; Reused when the vault
	// already held the same value under that name.
	Entry  string `json:"entry,omitempty"`
	Reused bool   `json:"reused,omitempty"`
	// Backup is where the file's previous content was saved, secrets
	// replaced by their {vault.NAME} placeholders.
	Backup string `json:"backup,omitempty"`
}

// FixReport is the plan of `clawguard audit --fix` and what came of it.
type FixReport struct {
	// Applied is false for a plan not (yet) carried out.
	Applied bool   `json:"applied"`
	Steps   []Step `json:"steps"`
}

// action is what --fix does about one finding.
type action interface {
	key() string // actions with equal keys are one change
}

// chmodAction removes group and other bits from a file or directory.
type chmodAction struct {
	path     string
	from, to fs.FileMode
}

func (c *chmodAction) key() string { return "chmod " + c.path }

// fileFormat says how a file holding a moved secret is rewritten.
type fileFormat int

const (
	formatCaddyfile fileFormat = iota // the literal becomes {vault.NAME}
	formatEnv                         // the KEY=VALUE line becomes a comment
	formatSidecar                     // profile env var moves to the profile's "secrets"
)

// moveSecretAction moves a plaintext secret into the vault.
type moveSecretAction struct {
	file   string
	format fileFormat
	value  string // the secret; never printed, never logged
	name   string // preferred entry name
	line   int
	what   string // "gate token", "OPENAI_API_KEY", …
	// envKey is the variable of an env file or sandbox profile; {env.KEY}
	// and {$KEY} in the Caddyfile then become {vault.NAME}.
	envKey  string
	profile string // the sandbox profile, for formatSidecar
}

func (m *moveSecretAction) key() string {
	return fmt.Sprintf("secret %s:%d:%s", m.file, m.line, m.envKey+m.what)
}

// rateLimitAction removes a `rate_limit off` line from a Caddyfile.
type rateLimitAction struct {
	file string
	line int
}

func (r *rateLimitAction) key() string { return fmt.Sprintf("rate_limit %s:%d", r.file, r.line) }

// FixPlan is a planned --fix: every change is decided, and every rewritten
// file is built and verified in memory, before anything is touched.
type FixPlan struct {
	opts     Options
	vault    *vault.Vault
	steps    []Step
	chmods   []*chmodAction
	rewrites []*rewrite
	entries  map[string]string // secret value -> vault entry
	inVault  map[string]bool   // secret values the vault already holds
	now      time.Time
}

// rewrite is a planned file rewrite and the secrets it moves.
type rewrite struct {
	path    string
	old     []byte
	new     []byte
	backup  []byte
	secrets []string // values to store before the file is replaced
	step    int      // index of its Step
}

// PlanFix plans the fixes for the fixable findings of rep, which Run made
// with the same options. Nothing is changed; Apply does the work.
func PlanFix(ctx context.Context, opts Options, rep *Report) (*FixPlan, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &FixPlan{opts: o, entries: map[string]string{}, inVault: map[string]bool{}, now: time.Now().UTC()}
	a := &auditor{opts: o}
	seen := map[string]bool{}
	var moves []*moveSecretAction
	var rates []*rateLimitAction
	for _, f := range rep.Findings {
		if f.fix == nil || seen[f.fix.key()] {
			continue
		}
		seen[f.fix.key()] = true
		switch act := f.fix.(type) {
		case *chmodAction:
			p.chmods = append(p.chmods, act)
		case *moveSecretAction:
			moves = append(moves, act)
		case *rateLimitAction:
			rates = append(rates, act)
		}
	}
	if len(moves) > 0 {
		if err := p.planEntries(a, moves); err != nil {
			return nil, err
		}
	}
	p.planRewrites(a, moves, rates)
	for _, c := range p.chmods {
		p.steps = append(p.steps, Step{Action: StepChmod, Path: c.path, Status: StatusPlanned,
			From: fmt.Sprintf("%04o", c.from), To: fmt.Sprintf("%04o", c.to),
			Description: fmt.Sprintf("chmod %04o %s (was %04o): remove group and other access", c.to, c.path, c.from)})
	}
	return p, ctx.Err()
}

// Report returns the plan as a FixReport.
func (p *FixPlan) Report() *FixReport {
	return &FixReport{Steps: slices.Clone(p.steps)}
}

// Empty reports whether the plan would change anything.
func (p *FixPlan) Empty() bool {
	for _, s := range p.steps {
		if s.Status == StatusPlanned {
			return false
		}
	}
	return true
}

// planEntries picks a vault entry for each secret: the entry that already
// holds the same value, else the suggested name, else the name with a
// numeric suffix. An entry holding something else is never overwritten.
func (p *FixPlan) planEntries(a *auditor, moves []*moveSecretAction) error {
	for _, name := range vaultFiles {
		if fi, err := os.Lstat(filepath.Join(p.opts.StateDir, name)); err == nil && !fi.Mode().IsRegular() {
			return fmt.Errorf("audit fix: %s is not a regular file (a symlink?); fix that before secrets can move into the vault", filepath.Join(p.opts.StateDir, name))
		}
	}
	v, err := a.vault()
	if err != nil {
		return fmt.Errorf("audit fix: opening the vault: %w", err)
	}
	p.vault = v
	names, err := v.List()
	if err != nil {
		return fmt.Errorf("audit fix: listing the vault: %w", err)
	}
	taken := map[string]bool{}
	for _, n := range names {
		val, err := v.Get(n)
		if err != nil {
			return fmt.Errorf("audit fix: reading vault entry %s: %w", n, err)
		}
		taken[n] = true
		if _, dup := p.entries[string(val)]; !dup {
			p.entries[string(val)] = n
			p.inVault[string(val)] = true
		}
	}
	for _, m := range moves {
		if _, ok := p.entries[m.value]; ok {
			continue
		}
		name := m.name
		for i := 2; taken[name] || vault.ValidName(name) != nil; i++ {
			name = fmt.Sprintf("%s_%d", vaultName(m.name), i)
		}
		taken[name] = true
		p.entries[m.value] = name
	}
	return nil
}

// Interface guards
var (
	_ action = (*chmodAction)(nil)
	_ action = (*moveSecretAction)(nil)
	_ action = (*rateLimitAction)(nil)
)
