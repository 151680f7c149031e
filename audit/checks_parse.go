package audit

import (
	"context"
	"fmt"
)

func checkConfigParse(_ context.Context, a *auditor) ([]Finding, error) {
	var out []Finding
	ran := false
	c, err := a.config()
	switch {
	case err == nil:
		ran = true
		if c.adaptErr != nil {
			out = append(out, Finding{Severity: SeverityWarn, Path: c.path,
				Finding: fmt.Sprintf("the Caddy config does not load: %v", c.adaptErr),
				Remedy:  "fix it (clawguard caddy adapt --config " + c.path + " shows the error); the checks that need the loaded config were skipped"})
		}
	case !isSkip(err):
		ran = true
		out = append(out, Finding{Severity: SeverityWarn, Path: a.opts.Config,
			Finding: fmt.Sprintf("cannot read the Caddy config: %v", err), Remedy: "check the path and its permissions"})
	}
	if sf, err := a.sidecarConfig(); err == nil {
		ran = true
		if sf.parseErr != nil {
			out = append(out, Finding{Severity: SeverityWarn, Path: sf.path,
				Finding: fmt.Sprintf("the sidecar config is not valid JSON: %v", sf.parseErr),
				Remedy:  "fix it (clawguard sidecar --check validates it); the sandbox checks were skipped"})
		}
	}
	if ac, err := a.approvalsFile(); err == nil {
		ran = true
		if ac.parseErr != nil {
			out = append(out, Finding{Severity: SeverityWarn, Path: ac.path,
				Finding: fmt.Sprintf("the approvals file is not valid JSON: %v", ac.parseErr),
				Remedy:  "fix it; the approvals checks were skipped (the sidecar denies every command while it is broken)"})
		}
	}
	if !ran {
		return nil, skip("no config files found")
	}
	return out, nil
}
