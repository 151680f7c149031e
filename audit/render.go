package audit

import (
	"fmt"
	"io"
	"strings"
)

// ANSI styles of the text report.
const (
	styleReset    = "\x1b[0m"
	styleCritical = "\x1b[1;31m"
	styleWarn     = "\x1b[33m"
	styleInfo     = "\x1b[36m"
	stylePass     = "\x1b[32m"
	styleDim      = "\x1b[2m"
)

// painter applies ANSI styles, or nothing when color is off.
type painter bool

func (p painter) paint(style, s string) string {
	if !p {
		return s
	}
	return style + s + styleReset
}

func (p painter) severity(s Severity) string {
	style := map[Severity]string{SeverityCritical: styleCritical, SeverityWarn: styleWarn, SeverityInfo: styleInfo}[s]
	return p.paint(style, fmt.Sprintf("%-8s", s))
}

// WriteText renders the report as a table for people: one row per finding
// (severity, check, finding), its location and remedy below it, then the
// checks that were skipped or could not run, then a summary. color adds
// ANSI colors (callers decide: a terminal, and NO_COLOR unset).
func (r *Report) WriteText(w io.Writer, color bool) error {
	p := painter(color)
	var b strings.Builder
	where := "no Caddy config"
	if r.Config != "" {
		where = "config " + r.Config
	}
	fmt.Fprintf(&b, "clawguard audit: %s, state %s\n\n", where, r.StateDir)
	width := len("CHECK")
	for _, f := range r.Findings {
		width = max(width, len(f.Check))
	}
	indent := strings.Repeat(" ", 8+2+width+2)
	if len(r.Findings) > 0 {
		fmt.Fprintf(&b, "%-8s  %-*s  %s\n", "SEVERITY", width, "CHECK", "FINDING")
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%s  %-*s  %s\n", p.severity(f.Severity), width, f.Check, f.Finding)
		if loc := f.location(); loc != "" && !strings.Contains(f.Finding, loc) {
			fmt.Fprintf(&b, "%s%s\n", indent, p.paint(styleDim, "at "+loc))
		}
		fix := "fix: " + f.Remedy
		if f.Fixable {
			fix += "  [--fix]"
		}
		fmt.Fprintf(&b, "%s%s\n", indent, p.paint(styleDim, fix))
	}
	var passed, skipped int
	var notes []string
	for _, c := range r.Checks {
		switch c.Status {
		case StatusPass:
			passed++
		case StatusSkipped:
			skipped++
			if !strings.HasPrefix(c.ID, "deep.") || r.Deep {
				notes = append(notes, fmt.Sprintf("  skipped  %s: %s", c.ID, c.Note))
			}
		case StatusError:
			notes = append(notes, p.paint(styleWarn, fmt.Sprintf("  error    %s: %s", c.ID, c.Note)))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, "\n%s\n", strings.Join(notes, "\n"))
	}
	failed := len(r.Checks) - passed - skipped
	fmt.Fprintf(&b, "\n%d checks: %s, %d with findings or errors, %d skipped", len(r.Checks), p.paint(stylePass, fmt.Sprintf("%d passed", passed)), failed, skipped)
	if !r.Deep {
		b.WriteString(" (--deep probes the running gate and sidecar)")
	}
	fmt.Fprintf(&b, "\n%s, %s, %s", p.paint(styleCritical, fmt.Sprintf("%d critical", r.Summary.Critical)),
		p.paint(styleWarn, fmt.Sprintf("%d warn", r.Summary.Warn)), p.paint(styleInfo, fmt.Sprintf("%d info", r.Summary.Info)))
	fixable := 0
	for _, f := range r.Findings {
		if f.Fixable {
			fixable++
		}
	}
	if fixable > 0 {
		fmt.Fprintf(&b, "; %d fixable with --fix", fixable)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteText renders a fix plan or its outcome as a numbered list.
func (fr *FixReport) WriteText(w io.Writer, color bool) error {
	p := painter(color)
	var b strings.Builder
	if len(fr.Steps) == 0 {
		b.WriteString("Nothing to fix.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	if fr.Applied {
		b.WriteString("Fix results:\n")
	} else {
		fmt.Fprintf(&b, "Fix plan (%d steps):\n", len(fr.Steps))
	}
	for i, s := range fr.Steps {
		line := fmt.Sprintf("%3d. %s", i+1, s.Description)
		status := s.Status
		if s.Error != "" {
			status += ": " + s.Error
		}
		switch s.Status {
		case StatusDone:
			line += " " + p.paint(stylePass, "["+status+"]")
		case StatusFailed, StatusRefused:
			line += " " + p.paint(styleCritical, "["+status+"]")
		case StatusUnchanged:
			line += " " + p.paint(styleDim, "["+status+"]")
		}
		b.WriteString(line + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
