package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Scope says which commands share a sandbox container.
type Scope string

const (
	// ScopeSession gives each (agent, session) a fresh container of its own.
	ScopeSession Scope = "session"
	// ScopeAgent keeps one persistent container per agent, across sessions
	// and sidecar restarts.
	ScopeAgent Scope = "agent"
	// ScopeShared keeps one persistent container per profile, used by every
	// agent the profile applies to.
	ScopeShared Scope = "shared"
)

// Workspace access modes: the workspace is mounted at /workspace.
const (
	WorkspaceNone = "none" // a private tmpfs at /workspace, nothing of the host
	WorkspaceRO   = "ro"
	WorkspaceRW   = "rw"
)

// WorkspacePath is where the workspace appears inside every sandbox.
const WorkspacePath = "/workspace"

// Defaults for unset Profile fields.
const (
	DefaultUser        = "65532:65532"
	DefaultCPUs        = 1.0
	DefaultMemoryMB    = 512
	DefaultPidsLimit   = 256
	DefaultTmpMB       = 64
	DefaultTimeout     = 60 * time.Second
	DefaultIdleTimeout = 15 * time.Minute
	DefaultMaxAge      = 24 * time.Hour
	DefaultOutputLimit = 1 << 20
	DefaultPath        = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

	// MaxOutputLimit bounds output_limit_bytes: buffered results live in memory.
	MaxOutputLimit = 16 << 20
	// MaxPoolSize bounds pool_size per agent.
	MaxPoolSize = 16
)

// DefaultIdleCommand keeps a sandbox container of an "exec": "docker"
// profile alive between commands.
var DefaultIdleCommand = []string{"sleep", "infinity"}

// How commands reach a sandbox container (profile field "exec").
const (
	// ExecAgent (the default): the container's process is clawguard-agent,
	// which runs each command over the container's attached stdio. A warm
	// command costs milliseconds, and a timeout or cancel kills that
	// command's process group only.
	ExecAgent = "agent"
	// ExecDocker: the container idles in idle_command and every command is
	// a docker exec; a timeout or cancel kills the whole container.
	ExecDocker = "docker"
)

// Profile is one sandbox profile of the sidecar config (key "sandboxes", by
// agent name or "*"). Every field is optional except Image; the security
// settings that are not fields (read-only root, tmpfs /tmp, cap-drop ALL,
// no-new-privileges, init, no privileges) cannot be loosened.
type Profile struct {
	// Image is the image reference. It must exist locally: the sidecar never
	// pulls. Required.
	Image string `json:"image"`
	// User is the numeric "UID[:GID]" commands run as. Default "65532:65532".
	// UID 0 and GID 0 are refused; names are refused because an image can map
	// any name to root.
	User string `json:"user,omitempty"`
	// CPUs is the CPU quota, in CPUs. Default 1.
	CPUs float64 `json:"cpus,omitempty"`
	// MemoryMB is the memory limit in MiB. Default 512.
	MemoryMB int64 `json:"memory_mb,omitempty"`
	// SwapMB is swap allowed beyond MemoryMB, in MiB. Default 0: no swap.
	SwapMB int64 `json:"swap_mb,omitempty"`
	// PidsLimit caps the number of processes in the container (a fork bomb
	// stops there). Default 256; unlimited is refused.
	PidsLimit int64 `json:"pids_limit,omitempty"`
	// TmpMB is the size of the tmpfs at /tmp, in MiB. Default 64.
	TmpMB int64 `json:"tmp_mb,omitempty"`
	// Timeout is the longest a command may run; a request may ask for less.
	// Default "60s".
	Timeout Duration `json:"timeout,omitempty"`
	// Network is "none" (default), "bridge", or the name of a user-defined
	// Docker network. "host" and "container:<id>" are refused.
	Network string `json:"network,omitempty"`
	// Workspace is the access to the agent's workspace at /workspace: "none"
	// (default; a private tmpfs), "ro" or "rw".
	Workspace string `json:"workspace,omitempty"`
	// WorkspaceDir is the host directory mounted at /workspace. It must lie
	// inside the sidecar's workspace_root. Default <workspace_root>/<agent>,
	// or <workspace_root>/_shared.<profile> for the shared scope. Created on
	// first use.
	WorkspaceDir string `json:"workspace_dir,omitempty"`
	// Mounts are further bind mounts (tool caches, datasets). Their sources
	// must lie inside workspace_root, like the workspace.
	Mounts []Mount `json:"mounts,omitempty"`
	// Scope is "session" (default), "agent" or "shared".
	Scope Scope `json:"scope,omitempty"`
	// PoolSize keeps this many started containers ready per agent so a new
	// session's first command does not wait for a container start. Session
	// scope only. Default 0.
	PoolSize int `json:"pool_size,omitempty"`
	// IdleTimeout removes a container unused for this long. Default "15m".
	IdleTimeout Duration `json:"idle_timeout,omitempty"`
	// MaxAge removes a container this old once it is idle. Default "24h".
	MaxAge Duration `json:"max_age,omitempty"`
	// OutputLimitBytes caps stdout and stderr of a command, each; the rest is
	// discarded and the truncation reported. Default 1 MiB, at most 16 MiB.
	OutputLimitBytes int64 `json:"output_limit_bytes,omitempty"`
	// Path is PATH inside the sandbox; requests cannot change it. Default
	// "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".
	Path string `json:"path,omitempty"`
	// Env is fixed environment for every command.
	Env map[string]string `json:"env,omitempty"`
	// Secrets maps environment variable names to vault entry names; the
	// values are read at each command and passed to that command only (never
	// to the container's configuration, never logged).
	Secrets map[string]string `json:"secrets,omitempty"`
	// Exec is how commands run: "agent" (default; the exec agent is the
	// container's process) or "docker" (a docker exec per command).
	Exec string `json:"exec,omitempty"`
	// IdleCommand keeps the container alive between commands; only with
	// "exec": "docker". Default ["sleep", "infinity"]; images without sleep
	// need another.
	IdleCommand []string `json:"idle_command,omitempty"`
	// Privileged is refused when true. It exists so that asking for it is a
	// clear error rather than an unknown field.
	Privileged bool `json:"privileged,omitempty"`
}

// Mount is a further bind mount of a profile.
type Mount struct {
	// Source is the host directory or file; it must lie inside workspace_root.
	Source string `json:"source"`
	// Target is the absolute path inside the sandbox.
	Target string `json:"target"`
	// ReadOnly mounts it read-only. Default false.
	ReadOnly bool `json:"read_only,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("90s", "15m").
type Duration time.Duration

// UnmarshalJSON accepts a duration string. Errors are json type errors so
// the decoder names the field.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: string(b) + ` (want a duration string like "30s")`, Type: reflect.TypeFor[Duration]()}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &json.UnmarshalTypeError{Value: strconv.Quote(s) + ` (want a duration like "30s")`, Type: reflect.TypeFor[Duration]()}
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// ProfileError names the profile and field a refusal is about.
type ProfileError struct {
	Profile string
	Field   string
	Msg     string
}

func (e *ProfileError) Error() string {
	return fmt.Sprintf("sandbox profile %q: %s: %s", e.Profile, e.Field, e.Msg)
}

var (
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	sessionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	userRE    = regexp.MustCompile(`^([0-9]{1,10})(?::([0-9]{1,10}))?$`)
	netRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	imageRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}$`)
)

// ValidName reports whether s is a valid agent or profile name: 1 to 64
// characters of letters, digits, '.', '_' and '-', starting with a letter or
// digit. Names become label values and directory names.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// ValidSession reports whether s is a valid session id: 1 to 128 characters
// of letters, digits, '.', '_', ':' and '-', starting with a letter or digit.
func ValidSession(s string) bool { return sessionRE.MatchString(s) }

// Paths inside the sandbox a mount may not cover.
var reservedTargets = []string{"/", "/proc", "/sys", "/dev", "/tmp", WorkspacePath, "/sbin/docker-init", agentDir}

// CheckProfile validates p and returns it with defaults applied. name is its
// key in the config ("*" or an agent name); root is the workspace root
// (absolute); protected are further host paths no bind may touch (the state
// directory). Every refusal is a *ProfileError naming the field.
func CheckProfile(name string, p Profile, root string, protected []string) (Profile, error) {
	bad := func(field, format string, a ...any) (Profile, error) {
		return Profile{}, &ProfileError{Profile: name, Field: field, Msg: fmt.Sprintf(format, a...)}
	}
	if name != "*" && !ValidName(name) {
		return bad("name", "must be \"*\" or an agent name (letters, digits, '.', '_', '-'; at most 64)")
	}
	if p.Privileged {
		return bad("privileged", "privileged sandboxes are refused: they can take over the host")
	}
	if p.Image == "" {
		return bad("image", "required (a local image; the sidecar never pulls)")
	}
	if !imageRE.MatchString(p.Image) {
		return bad("image", "%q is not an image reference", p.Image)
	}
	if p.User == "" {
		p.User = DefaultUser
	}
	m := userRE.FindStringSubmatch(p.User)
	if m == nil {
		return bad("user", "%q must be numeric UID[:GID] (names can map to root inside an image)", p.User)
	}
	if uid, _ := strconv.ParseUint(m[1], 10, 32); uid == 0 {
		return bad("user", "%q is root; sandboxes run as a non-root user", p.User)
	}
	if m[2] != "" {
		if gid, _ := strconv.ParseUint(m[2], 10, 32); gid == 0 {
			return bad("user", "%q uses group 0 (root); pick another group", p.User)
		}
	} else {
		p.User += ":" + m[1] // an explicit group, so the image cannot pick root's
	}
	if !orDefault(&p.CPUs, DefaultCPUs, 0.01, 256) {
		return bad("cpus", "%g is out of range (0.01 to 256)", p.CPUs)
	}
	if !orDefault(&p.MemoryMB, DefaultMemoryMB, 8, 1<<20) {
		return bad("memory_mb", "%d is out of range (8 to 1048576)", p.MemoryMB)
	}
	if !orDefault(&p.SwapMB, 0, 0, 1<<20) {
		return bad("swap_mb", "%d is out of range (0 to 1048576); unlimited swap is refused", p.SwapMB)
	}
	if !orDefault(&p.PidsLimit, DefaultPidsLimit, 8, 1<<16) {
		return bad("pids_limit", "%d is out of range (8 to 65536); unlimited is refused", p.PidsLimit)
	}
	if !orDefault(&p.TmpMB, DefaultTmpMB, 1, 1<<16) {
		return bad("tmp_mb", "%d is out of range (1 to 65536)", p.TmpMB)
	}
	for _, d := range []struct {
		field    string
		v        *Duration
		def, max time.Duration
	}{
		{"timeout", &p.Timeout, DefaultTimeout, 24 * time.Hour},
		{"idle_timeout", &p.IdleTimeout, DefaultIdleTimeout, 30 * 24 * time.Hour},
		{"max_age", &p.MaxAge, DefaultMaxAge, 365 * 24 * time.Hour},
	} {
		if !orDefault(d.v, Duration(d.def), Duration(time.Second), Duration(d.max)) {
			return bad(d.field, "%s is out of range (1s to %s)", time.Duration(*d.v), d.max)
		}
	}
	if !orDefault(&p.OutputLimitBytes, DefaultOutputLimit, 1, MaxOutputLimit) {
		return bad("output_limit_bytes", "%d is out of range (1 to %d)", p.OutputLimitBytes, MaxOutputLimit)
	}
	switch n := p.Network; {
	case n == "":
		p.Network = "none"
	case n == "host":
		return bad("network", "\"host\" is refused: it gives the sandbox the host's network stack, loopback services included")
	case strings.HasPrefix(n, "container:"):
		return bad("network", "%q is refused: it joins another container's network namespace", n)
	case !netRE.MatchString(n):
		return bad("network", "%q must be \"none\", \"bridge\" or a network name", n)
	}
	switch p.Workspace {
	case "":
		p.Workspace = WorkspaceNone
	case WorkspaceNone, WorkspaceRO, WorkspaceRW:
	default:
		return bad("workspace", "%q must be \"none\", \"ro\" or \"rw\"", p.Workspace)
	}
	switch p.Scope {
	case "":
		p.Scope = ScopeSession
	case ScopeSession, ScopeAgent, ScopeShared:
	default:
		return bad("scope", "%q must be \"session\", \"agent\" or \"shared\"", p.Scope)
	}
	if p.PoolSize < 0 || p.PoolSize > MaxPoolSize {
		return bad("pool_size", "%d is out of range (0 to %d)", p.PoolSize, MaxPoolSize)
	}
	if p.PoolSize > 0 && p.Scope != ScopeSession {
		return bad("pool_size", "only per-session sandboxes are pooled (scope is %q)", p.Scope)
	}
	if p.Path == "" {
		p.Path = DefaultPath
	}
	if strings.ContainsAny(p.Path, "\x00\n") {
		return bad("path", "contains NUL or newline")
	}
	switch p.Exec {
	case "":
		p.Exec = ExecAgent
	case ExecAgent, ExecDocker:
	default:
		return bad("exec", "%q must be \"agent\" (the exec agent, default) or \"docker\" (a docker exec per command)", p.Exec)
	}
	if p.Exec == ExecAgent && len(p.IdleCommand) > 0 {
		return bad("idle_command", "only with \"exec\": \"docker\": with the exec agent, clawguard-agent is the container's process")
	}
	if p.Exec == ExecDocker && len(p.IdleCommand) == 0 {
		p.IdleCommand = DefaultIdleCommand
	}
	for _, a := range p.IdleCommand {
		if strings.IndexByte(a, 0) >= 0 {
			return bad("idle_command", "contains NUL")
		}
	}
	for k, v := range p.Env {
		if err := checkEnvName(k); err != "" {
			return bad("env", "%q: %s", k, err)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return bad("env", "%q: value contains NUL", k)
		}
	}
	for k, v := range p.Secrets {
		if err := checkEnvName(k); err != "" {
			return bad("secrets", "%q: %s", k, err)
		}
		if _, dup := p.Env[k]; dup {
			return bad("secrets", "%q is also set in env", k)
		}
		if v == "" || strings.ContainsAny(v, "\x00/") {
			return bad("secrets", "%q: vault entry name %q is not valid", k, v)
		}
	}
	if p.WorkspaceDir != "" {
		if p.Workspace == WorkspaceNone {
			return bad("workspace_dir", "set, but workspace is \"none\"; set workspace to \"ro\" or \"rw\"")
		}
		if _, err := checkBindSource(p.WorkspaceDir, root, protected); err != nil {
			return bad("workspace_dir", "%v", err)
		}
	}
	seen := map[string]bool{}
	for i, mt := range p.Mounts {
		field := fmt.Sprintf("mounts[%d]", i)
		if _, err := checkBindSource(mt.Source, root, protected); err != nil {
			return bad(field+".source", "%v", err)
		}
		t := mt.Target
		if !path.IsAbs(t) || path.Clean(t) != t {
			return bad(field+".target", "%q must be an absolute, clean path", t)
		}
		if slices.Contains(reservedTargets, t) || within(t, "/proc") || within(t, "/sys") || within(t, "/dev") || within(t, agentDir) {
			return bad(field+".target", "%q is reserved", t)
		}
		if seen[t] {
			return bad(field+".target", "%q is mounted twice", t)
		}
		seen[t] = true
	}
	return p, nil
}

// orDefault sets an unset (zero) *v to def and reports whether *v then
// lies in [lo, hi].
func orDefault[T ~int64 | ~float64](v *T, def, lo, hi T) bool {
	if *v == 0 {
		*v = def
	}
	return *v >= lo && *v <= hi
}

// checkEnvName refuses names that would change what runs rather than what
// it sees: PATH decides which binary argv[0] is, LD_* what it loads.
func checkEnvName(k string) string {
	switch {
	case !envNameRE.MatchString(k):
		return "not a valid environment variable name"
	case k == "PATH" || k == "HOME":
		return "is set by the sidecar (profile field path; HOME is /tmp)"
	case strings.HasPrefix(k, "LD_"):
		return "LD_* variables are refused"
	}
	return ""
}

// spec is a profile resolved for one agent: everything that shapes a
// container, and the hash of it that labels the container.
type spec struct {
	name  string // profile key
	agent string // "" for the shared scope
	p     Profile
	ws    string // host workspace dir (unresolved), "" for workspace none
	hash  string

	recent []string // argv[0] of recent commands, newest first; guarded by Manager.mu
}

// maxRecent is how many recent programs a pool container is warmed with.
const maxRecent = 8

func newSpec(name, agent string, p Profile, root string) *spec {
	s := &spec{name: name, agent: agent, p: p}
	if p.Scope == ScopeShared {
		s.agent = ""
	}
	if p.Workspace != WorkspaceNone {
		switch {
		case p.WorkspaceDir != "":
			s.ws = filepath.Clean(p.WorkspaceDir)
		case p.Scope == ScopeShared:
			s.ws = filepath.Join(root, "_shared."+strings.ReplaceAll(name, "*", "default"))
		default:
			s.ws = filepath.Join(root, agent)
		}
	}
	// Only what is fixed at container creation goes into the hash; exec-time
	// settings (timeout, env, secrets, output limit) apply without a restart.
	mounts := append([]Mount(nil), p.Mounts...)
	sort.Slice(mounts, func(i, j int) bool { return mounts[i].Target < mounts[j].Target })
	b, _ := json.Marshal(struct {
		V                          int
		Image, User, Network, Path string
		CPUs                       float64
		Mem, Swap, Pids, Tmp       int64
		Workspace, WS              string
		Mounts                     []Mount
		Idle                       []string
		Scope                      Scope
		Exec                       string
	}{1, p.Image, p.User, p.Network, p.Path, p.CPUs, p.MemoryMB, p.SwapMB, p.PidsLimit, p.TmpMB,
		p.Workspace, s.ws, mounts, p.IdleCommand, p.Scope, p.Exec})
	sum := sha256.Sum256(b)
	s.hash = hex.EncodeToString(sum[:8])
	return s
}
