package audit

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// clawguardModule is this project's Go module: its Caddy modules (the gate,
// the clawguard app, the tailnet network and app) are always allowed.
const clawguardModule = "github.com/clawguard/clawguard"

// caddyModule is one Caddy module compiled into the audited binary.
type caddyModule struct {
	id  string
	pkg string // its Go package path (in-process) or Go module path (external binary)
}

// modules lists the Caddy modules of the audited binary: this program's
// registry, or `<caddy> list-modules --json` of an external binary.
func (a *auditor) modules(ctx context.Context) ([]caddyModule, error) {
	if a.opts.CaddyBinary == "" {
		var out []caddyModule
		for _, id := range caddy.Modules() {
			m := caddyModule{id: id}
			if info, err := caddy.GetModule(id); err == nil {
				m.pkg = modulePackage(info)
			}
			out = append(out, m)
		}
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.opts.CaddyBinary, "list-modules", "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s list-modules --json: %w: %s", a.opts.CaddyBinary, err, strings.TrimSpace(stderr.String()))
	}
	mainModule := ""
	if bi, err := buildinfo.ReadFile(a.opts.CaddyBinary); err == nil {
		mainModule = bi.Main.Path
	}
	return parseListModules(outb, mainModule)
}

// parseListModules parses the output of `caddy list-modules --json`.
// Caddy classifies a module as standard by its package, and reports the Go
// module it comes from only for dependencies: a module without one is in
// the binary's main module (mainModule), or standard.
func parseListModules(b []byte, mainModule string) ([]caddyModule, error) {
	var list []struct {
		Name    string `json:"module_name"`
		Type    string `json:"module_type"`
		Package string `json:"package_url"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("list-modules --json: %w (a Caddy older than v2.10 has no --json)", err)
	}
	out := make([]caddyModule, 0, len(list))
	for _, m := range list {
		if m.Name == "" {
			return nil, fmt.Errorf("list-modules --json: a module without a name")
		}
		pkg := m.Package
		switch {
		case m.Type == "standard":
			pkg = caddy.ImportPath
		case pkg == "" && m.Type == "non-standard":
			pkg = mainModule
		}
		out = append(out, caddyModule{id: m.Name, pkg: pkg})
	}
	return out, nil
}

// modulePackage returns the Go package a module's value comes from, as
// `caddy list-modules` finds it: New returns a pointer; its element type
// names the package.
func modulePackage(info caddy.ModuleInfo) string {
	t := reflect.TypeOf(info.New())
	if t == nil {
		return ""
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath()
}

func inModule(pkg, module string) bool { return pkg == module || strings.HasPrefix(pkg, module+"/") }

// allowedModule reports whether id is on the allowlist: an exact ID, or a
// namespace written "ns.*".
func allowedModule(id string, allow []string) bool {
	for _, a := range allow {
		if a == id || (strings.HasSuffix(a, ".*") && strings.HasPrefix(id, strings.TrimSuffix(a, "*"))) {
			return true
		}
	}
	return false
}

func checkPlugins(ctx context.Context, a *auditor) ([]Finding, error) {
	mods, err := a.modules(ctx)
	if err != nil {
		return nil, err
	}
	what := "this program"
	if a.opts.CaddyBinary != "" {
		what = a.opts.CaddyBinary
	}
	var out []Finding
	for _, m := range mods {
		switch {
		case inModule(m.pkg, caddy.ImportPath):
			continue
		case inModule(m.pkg, clawguardModule) && !strings.HasSuffix(m.pkg, "_test"):
			continue
		case allowedModule(m.id, a.opts.AllowModules):
			continue
		}
		pkg := m.pkg
		if pkg == "" {
			pkg = "unknown package"
		}
		out = append(out, Finding{Severity: SeverityWarn, Path: a.opts.CaddyBinary,
			Finding: fmt.Sprintf("Caddy module %s (%s) in %s is neither standard nor allowed: a plugin sees every request and runs with the server's rights", m.id, pkg, what),
			Remedy:  fmt.Sprintf("rebuild without it, or review it and allow it with --allow-module %s", m.id)})
	}
	return out, nil
}
