package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// sidecarFile is the sidecar config as written, decoded tolerantly: the
// audit must see a dangerous setting even where the sidecar would refuse
// the whole file, and settings the sidecar may add later.
type sidecarFile struct {
	path     string
	raw      []byte
	parseErr error

	WorkspaceRoot string                     `json:"workspace_root"`
	ExecAllow     []execAllow                `json:"exec_allow"`
	Sandboxes     map[string]json.RawMessage `json:"sandboxes"`
}

type execAllow struct {
	Agent  string `json:"agent"`
	Path   string `json:"path"`
	Target string `json:"target"`
}

// profileView is a sandbox profile as written.
type profileView struct {
	User         string            `json:"user"`
	Network      string            `json:"network"`
	Workspace    string            `json:"workspace"`
	WorkspaceDir string            `json:"workspace_dir"`
	Scope        string            `json:"scope"`
	Privileged   bool              `json:"privileged"`
	Env          map[string]string `json:"env"`
	Mounts       []struct {
		Source   string `json:"source"`
		Target   string `json:"target"`
		ReadOnly bool   `json:"read_only"`
	} `json:"mounts"`

	raw map[string]json.RawMessage
}

// escapeKeys are Docker settings that undo a sandbox's isolation; the
// sidecar has no such profile fields today, so any of them in a profile is
// either a mistake or a loosened sidecar.
var escapeKeys = []string{"cap_add", "devices", "security_opt", "binds", "volumes", "pid", "pid_mode", "ipc", "ipc_mode", "userns_mode", "uts", "cgroup_parent", "runtime"}

func loadSidecarFile(path string) (*sidecarFile, error) {
	raw, err := readBounded(path)
	if notExist(err) {
		return nil, skip("no sidecar config at " + path)
	}
	if err != nil {
		return nil, err
	}
	sf := &sidecarFile{path: path, raw: raw}
	if err := json.Unmarshal(raw, sf); err != nil {
		sf.parseErr = fmt.Errorf("%s: %w", path, err)
	}
	return sf, nil
}

func (a *auditor) sidecarConfig() (*sidecarFile, error) {
	return a.sidecar.get(func() (*sidecarFile, error) { return loadSidecarFile(a.opts.SidecarConfig) })
}

// parsedSidecar returns the sidecar config if it parses, else skip.
func (a *auditor) parsedSidecar() (*sidecarFile, error) {
	sf, err := a.sidecarConfig()
	if err != nil {
		return nil, err
	}
	if sf.parseErr != nil {
		return nil, skip("the sidecar config does not parse (see config.parse)")
	}
	return sf, nil
}

// workspaceRoot is the sandboxes' workspace root: the sidecar's
// workspace_root, default <state_dir>/workspaces.
func (a *auditor) workspaceRoot() string {
	if sf, err := a.parsedSidecar(); err == nil && sf.WorkspaceRoot != "" {
		return filepath.Clean(sf.WorkspaceRoot)
	}
	return filepath.Join(a.opts.StateDir, "workspaces")
}

// sandboxProfiles decodes the sidecar config's sandbox profiles, names
// sorted; a skip when there are none.
func (a *auditor) sandboxProfiles() (*sidecarFile, []string, map[string]*profileView, error) {
	sf, err := a.parsedSidecar()
	if err != nil {
		return nil, nil, nil, err
	}
	if len(sf.Sandboxes) == 0 {
		return nil, nil, nil, skip("no sandbox profiles")
	}
	out := map[string]*profileView{}
	for name, raw := range sf.Sandboxes {
		p := &profileView{}
		if err := json.Unmarshal(raw, p); err != nil {
			return nil, nil, nil, fmt.Errorf("sandbox profile %q: %w", name, err)
		}
		if err := json.Unmarshal(raw, &p.raw); err != nil {
			return nil, nil, nil, fmt.Errorf("sandbox profile %q: %w", name, err)
		}
		out[name] = p
	}
	return sf, sortedKeys(out), out, nil
}

// approvalsConfig is the approvals file as written.
type approvalsConfig struct {
	path     string
	parseErr error

	Defaults struct {
		Mode string `json:"mode"`
	} `json:"defaults"`
	Agents map[string]*struct {
		Mode     string `json:"mode"`
		Elevated *bool  `json:"elevated"`
		Node     *bool  `json:"node"`
	} `json:"agents"`
}

func (a *auditor) approvalsFile() (*approvalsConfig, error) {
	return a.approvals.get(func() (*approvalsConfig, error) {
		raw, err := readBounded(a.opts.Approvals)
		if notExist(err) {
			return nil, skip("no approvals file at " + a.opts.Approvals + " (the default asks a person about every command)")
		}
		if err != nil {
			return nil, err
		}
		ac := &approvalsConfig{path: a.opts.Approvals}
		if err := json.Unmarshal(raw, ac); err != nil {
			ac.parseErr = fmt.Errorf("%s: %w", a.opts.Approvals, err)
		}
		return ac, nil
	})
}

func (a *auditor) parsedApprovals() (*approvalsConfig, error) {
	ac, err := a.approvalsFile()
	if err != nil {
		return nil, err
	}
	if ac.parseErr != nil {
		return nil, skip("the approvals file does not parse (see config.parse)")
	}
	return ac, nil
}

// mode returns an agent's effective mode: its own, else "*"'s, else the
// default, else ask.
func (ac *approvalsConfig) mode(agent string) string {
	for _, name := range []string{agent, "*"} {
		if ag := ac.Agents[name]; ag != nil && ag.Mode != "" {
			return ag.Mode
		}
	}
	if ac.Defaults.Mode != "" {
		return ac.Defaults.Mode
	}
	return "ask"
}

func checkModeFull(_ context.Context, a *auditor) ([]Finding, error) {
	ac, err := a.parsedApprovals()
	if err != nil {
		return nil, err
	}
	remedy := "set mode \"allowlist\" or \"ask\" in " + ac.path + " (clawguard approvals check tests a policy)"
	var out []Finding
	if ac.Defaults.Mode == "full" {
		out = append(out, Finding{Severity: SeverityCritical, Path: ac.path, Remedy: remedy,
			Finding: "defaults.mode is \"full\": every agent without a mode of its own runs any command without approval"})
	}
	for _, name := range sortedKeys(ac.Agents) {
		ag := ac.Agents[name]
		if ag == nil || ag.Mode != "full" {
			continue
		}
		if name == "*" {
			out = append(out, Finding{Severity: SeverityCritical, Path: ac.path, Remedy: remedy,
				Finding: "agents.\"*\".mode is \"full\": every agent runs any command without approval"})
			continue
		}
		out = append(out, Finding{Severity: SeverityWarn, Path: ac.path, Remedy: remedy,
			Finding: fmt.Sprintf("agent %q has mode \"full\": it runs any command without approval", name)})
	}
	return out, nil
}

func checkElevated(_ context.Context, a *auditor) ([]Finding, error) {
	var out []Finding
	ran := false
	if ac, err := a.parsedApprovals(); err == nil {
		ran = true
		for _, name := range sortedKeys(ac.Agents) {
			ag := ac.Agents[name]
			if ag == nil || ag.Elevated == nil || !*ag.Elevated {
				continue
			}
			f := Finding{Severity: SeverityWarn, Path: ac.path,
				Finding: fmt.Sprintf("agent %q may run commands on the host, outside any sandbox (elevated)", name),
				Remedy:  fmt.Sprintf("remove \"elevated\": true from agent %q unless it must run on the host; every such run is in the audit trail", name)}
			switch {
			case name == "*":
				f.Severity = SeverityCritical
				f.Finding = "agents.\"*\" sets elevated: every agent may run commands on the host (the sidecar refuses this file)"
			case ac.mode(name) == "full":
				f.Severity = SeverityCritical
				f.Finding = fmt.Sprintf("agent %q runs any command on the host without approval (elevated with mode \"full\")", name)
			}
			out = append(out, f)
		}
	} else if !isSkip(err) {
		return nil, err
	}
	if sf, err := a.parsedSidecar(); err == nil {
		ran = true
		for _, r := range sf.ExecAllow {
			if r.Target != "host" {
				continue
			}
			out = append(out, Finding{Severity: SeverityWarn, Path: sf.path,
				Finding: fmt.Sprintf("exec_allow lets agent %q run %s on the host, outside any sandbox", r.Agent, r.Path),
				Remedy:  "use target \"sandbox\" unless the command must run on the host"})
		}
	} else if !isSkip(err) {
		return nil, err
	}
	if !ran {
		return nil, skip("no approvals file and no sidecar config")
	}
	return out, nil
}

// checkNode reports agents whose commands may run on a node's own host
// (approvals node: true, their own or "*"'s), outside any sandbox.
func checkNode(_ context.Context, a *auditor) ([]Finding, error) {
	ac, err := a.parsedApprovals()
	if err != nil {
		return nil, err
	}
	starNode := false
	if star := ac.Agents["*"]; star != nil && star.Node != nil {
		starNode = *star.Node
	}
	var out []Finding
	for _, name := range sortedKeys(ac.Agents) {
		ag := ac.Agents[name]
		if ag == nil {
			continue
		}
		node := starNode
		if ag.Node != nil {
			node = *ag.Node
		}
		if !node || name != "*" && ag.Node == nil && ac.mode(name) != "full" {
			continue // "*"'s own finding covers it
		}
		who := fmt.Sprintf("agent %q", name)
		if name == "*" {
			who = "every agent (agents.\"*\".node)"
		}
		f := Finding{Severity: SeverityWarn, Path: ac.path,
			Finding: who + " may run commands on the node's host, outside any sandbox (node), where the sidecar has node_exec",
			Remedy:  "set \"node\": true only for agents that must run on the node's host, with mode \"allowlist\" or \"ask\"; every such run is in the audit trail"}
		if ac.mode(name) == "full" {
			f.Severity = SeverityCritical
			f.Finding = who + " runs any command on the node's host without approval (node with mode \"full\")"
		}
		out = append(out, f)
	}
	return out, nil
}

// sensitivePaths are host paths whose bind mount hands a sandbox the host:
// its configuration, kernel interfaces, container runtime (root), keys.
var sensitivePaths = []string{
	"/etc", "/proc", "/sys", "/dev", "/boot", "/root", "/var/lib/docker", "/var/lib/containerd",
	"/run/docker.sock", "/var/run/docker.sock", "/run/containerd", "/var/run/containerd",
}

// credentialDirRE matches paths inside, or being, a home credential store.
var credentialDirRE = regexp.MustCompile(`(^|/)\.(ssh|aws|docker|kube|gnupg|azure|password-store|config/gcloud)(/|$)`)

// homeRE matches a home directory itself (which holds credential stores).
var homeRE = regexp.MustCompile(`^/home/[^/]+$`)

func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// bindDanger says why mounting host path src into a sandbox is dangerous,
// or "". The workspace root may lie in the state directory (its default
// does); the rest of the state directory may not be mounted.
func bindDanger(src, stateDir, workspaces string) string {
	p := filepath.Clean(src)
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	switch {
	case p == "/":
		return "the host's root file system"
	case credentialDirRE.MatchString(p), homeRE.MatchString(p):
		return "a home directory's credentials"
	case within(stateDir, p) || within(p, stateDir) && !within(p, workspaces):
		return "clawguard's state directory (vault, keys)"
	}
	for _, s := range sensitivePaths {
		if within(p, s) || within(s, p) {
			return s
		}
	}
	return ""
}

func checkDangerousProfiles(_ context.Context, a *auditor) ([]Finding, error) {
	sf, names, profiles, err := a.sandboxProfiles()
	if err != nil {
		return nil, err
	}
	root := a.workspaceRoot()
	var out []Finding
	add := func(sev Severity, name, msg, remedy string) {
		out = append(out, Finding{Severity: sev, Path: sf.path, Remedy: remedy,
			Finding: fmt.Sprintf("sandbox profile %q: %s", name, msg)})
	}
	for _, name := range names {
		p := profiles[name]
		if p.Privileged {
			add(SeverityCritical, name, "privileged: a privileged container can take over the host", "remove \"privileged\"")
		}
		if n := p.Network; n == "host" || strings.HasPrefix(n, "container:") {
			add(SeverityCritical, name, fmt.Sprintf("network %q shares a network namespace, loopback services included", n), "use network \"none\" (default)")
		}
		if uid, gid, _ := strings.Cut(p.User, ":"); uid == "0" || uid == "root" || gid == "0" || gid == "root" {
			add(SeverityCritical, name, fmt.Sprintf("user %q runs commands as root", p.User), "remove \"user\" (default 65532:65532) or pick a non-root UID:GID")
		}
		for _, k := range escapeKeys {
			if v, ok := p.raw[k]; ok && string(v) != "null" && string(v) != "false" && string(v) != "[]" && string(v) != "\"\"" {
				add(SeverityCritical, name, fmt.Sprintf("sets %q, which loosens the container's isolation", k), "remove \""+k+"\"")
			}
		}
		binds := map[string]string{}
		if p.WorkspaceDir != "" {
			binds[p.WorkspaceDir] = "workspace_dir"
		}
		for i, m := range p.Mounts {
			binds[m.Source] = fmt.Sprintf("mounts[%d]", i)
		}
		for _, src := range sortedKeys(binds) {
			if why := bindDanger(src, a.opts.StateDir, root); why != "" {
				add(SeverityCritical, name, fmt.Sprintf("%s mounts %s, exposing %s", binds[src], src, why), "mount only directories inside the workspace root "+root)
			} else if !within(filepath.Clean(src), root) {
				add(SeverityWarn, name, fmt.Sprintf("%s mounts %s, outside the workspace root %s (the sidecar refuses it)", binds[src], src, root), "move the directory under "+root)
			}
		}
		if p.Scope == "shared" && p.Workspace == "rw" {
			add(SeverityWarn, name, "a shared sandbox with a writable workspace: one agent can plant files another agent runs", "use workspace \"ro\" or scope \"agent\"")
		}
	}
	return out, nil
}

func checkSandboxNetwork(_ context.Context, a *auditor) ([]Finding, error) {
	sf, names, profiles, err := a.sandboxProfiles()
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, name := range names {
		n := profiles[name].Network
		if n == "" || n == "none" || n == "host" || strings.HasPrefix(n, "container:") {
			continue // host and container: are sandbox.dangerous_profile's
		}
		who := fmt.Sprintf("agent %q", name)
		if name == "*" {
			who = "every agent without a profile of its own"
		}
		out = append(out, Finding{Severity: SeverityWarn, Path: sf.path,
			Finding: fmt.Sprintf("sandbox profile %q has network %q: commands of %s can reach the network (exfiltration, internal services)", name, n, who),
			Remedy:  "use network \"none\" (default) unless the agent needs the network; a user-defined network with egress rules limits it"})
	}
	return out, nil
}
