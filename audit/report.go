package audit

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Severity ranks a finding. Only critical findings make `clawguard audit`
// exit 1.
type Severity string

const (
	// SeverityCritical is an exposure: fix it before anything else.
	SeverityCritical Severity = "critical"
	// SeverityWarn weakens a protection or is unusual enough to look at.
	SeverityWarn Severity = "warn"
	// SeverityInfo is for the record; nothing needs to change.
	SeverityInfo Severity = "info"
)

// Severities lists the severities from the most to the least severe.
var Severities = []Severity{SeverityCritical, SeverityWarn, SeverityInfo}

func (s Severity) rank() int { return slices.Index(Severities, s) }

// Finding is one problem a check found.
type Finding struct {
	// Check is the stable ID of the check, e.g. "fs.vault.perms".
	Check string `json:"check"`
	// Severity is critical, warn or info.
	Severity Severity `json:"severity"`
	// Finding says what is wrong, in one line. It never contains a secret.
	Finding string `json:"finding"`
	// Remedy says how to fix it, in one line.
	Remedy string `json:"remedy"`
	// Path is the file the finding is about, if any.
	Path string `json:"path,omitempty"`
	// Line is the 1-based line in Path, if known.
	Line int `json:"line,omitempty"`
	// Fixable reports whether `clawguard audit --fix` fixes it.
	Fixable bool `json:"fixable"`

	fix action // what --fix does about it; nil when not Fixable
}

// CheckStatus says how a check went.
type CheckStatus string

const (
	// StatusPass means the check ran and found nothing.
	StatusPass CheckStatus = "pass"
	// StatusFail means the check ran and has findings.
	StatusFail CheckStatus = "fail"
	// StatusSkipped means there was nothing to check (e.g. no Caddyfile) or
	// the check only runs with --deep.
	StatusSkipped CheckStatus = "skipped"
	// StatusError means the check could not run; Note says why.
	StatusError CheckStatus = "error"
)

// CheckResult is the outcome of one check.
type CheckResult struct {
	ID     string      `json:"id"`
	Title  string      `json:"title"`
	Status CheckStatus `json:"status"`
	// Note explains a skipped or failed-to-run check.
	Note string `json:"note,omitempty"`
}

// Summary counts findings by severity.
type Summary struct {
	Critical int `json:"critical"`
	Warn     int `json:"warn"`
	Info     int `json:"info"`
}

// Report is the result of one audit run.
type Report struct {
	// Version of the report format; 1.
	Version int `json:"version"`
	// Time is when the audit ran.
	Time time.Time `json:"time"`
	// Config is the Caddy config audited ("" when none was found).
	Config string `json:"config"`
	// StateDir is the state directory audited.
	StateDir string `json:"state_dir"`
	// Deep reports whether the live probes ran.
	Deep bool `json:"deep"`
	// Summary counts Findings by severity.
	Summary Summary `json:"summary"`
	// Checks lists every check with its status, in a stable order.
	Checks []CheckResult `json:"checks"`
	// Findings are sorted by severity, then check ID, then path and line.
	Findings []Finding `json:"findings"`
	// Fix is what --fix planned and did; nil without --fix.
	Fix *FixReport `json:"fix,omitempty"`
}

// Critical reports whether any finding is critical: `clawguard audit` then
// exits 1.
func (r *Report) Critical() bool { return r.Summary.Critical > 0 }

// Count returns the number of findings of severity s.
func (r *Report) Count(s Severity) int {
	switch s {
	case SeverityCritical:
		return r.Summary.Critical
	case SeverityWarn:
		return r.Summary.Warn
	case SeverityInfo:
		return r.Summary.Info
	}
	return 0
}

// finish sorts the findings and fills in the summary and check statuses.
func (r *Report) finish() {
	slices.SortStableFunc(r.Findings, func(a, b Finding) int {
		if c := a.Severity.rank() - b.Severity.rank(); c != 0 {
			return c
		}
		if c := strings.Compare(a.Check, b.Check); c != 0 {
			return c
		}
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return a.Line - b.Line
	})
	r.Summary = Summary{}
	failed := map[string]bool{}
	for _, f := range r.Findings {
		failed[f.Check] = true
		switch f.Severity {
		case SeverityCritical:
			r.Summary.Critical++
		case SeverityWarn:
			r.Summary.Warn++
		default:
			r.Summary.Info++
		}
	}
	for i := range r.Checks {
		if failed[r.Checks[i].ID] {
			r.Checks[i].Status = StatusFail
		}
	}
}

// location renders a finding's path and line for people.
func (f Finding) location() string {
	switch {
	case f.Path == "":
		return ""
	case f.Line > 0:
		return fmt.Sprintf("%s:%d", f.Path, f.Line)
	}
	return f.Path
}
