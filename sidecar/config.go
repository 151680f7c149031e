package sidecar

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/clawguard/clawguard/sandbox"
)

// maxConfigBytes bounds the config file read.
const maxConfigBytes = 4 << 20

// Config is the sidecar's config file (JSON, <state_dir>/sidecar.json or
// --config). A missing file means every default: nothing may run until an
// allowlist or the approvals engine allows it.
type Config struct {
	// Version of the format; must be 1. Default 1.
	Version int `json:"version"`
	// AllowedUIDs are the peer UIDs (SO_PEERCRED) that may talk to the
	// socket; identity headers are trusted only from them. Default: the
	// sidecar's own UID.
	AllowedUIDs []uint32 `json:"allowed_uids,omitempty"`
	// WorkspaceRoot is the host directory every workspace and mount source
	// lies in. Default <state_dir>/workspaces.
	WorkspaceRoot string `json:"workspace_root,omitempty"`
	// Instance labels this sidecar's containers (clawguard.instance) so two
	// sidecars on one Docker host never touch each other's. Default: derived
	// from the state directory's path.
	Instance string `json:"instance,omitempty"`
	// PruneInterval is how often idle and old sandboxes are removed.
	// Default "30s".
	PruneInterval sandbox.Duration `json:"prune_interval,omitempty"`
	// MaxSandboxes caps the sandbox containers running at once, warm pools
	// included; commands needing another one get HTTP 503. Default 32.
	MaxSandboxes int `json:"max_sandboxes,omitempty"`
	// IdentityKeys maps key IDs to vault entries holding the HMAC keys the
	// gate signs identity headers with (RFC 9421). When set, every request
	// must carry a valid identity signature. Default: none (the socket's
	// peer credentials are the proof).
	IdentityKeys map[string]string `json:"identity_keys,omitempty"`
	// ExecAllow is the interim allowlist: exact argv[0] paths per agent.
	// While it is set it is the policy, and the approvals file
	// (<state_dir>/approvals.json) is not used. Default: empty, the
	// approvals policy decides.
	ExecAllow []AllowRule `json:"exec_allow,omitempty"`
	// GatewayHost says this sidecar runs on the gateway host: the only
	// place elevated commands (target "host", outside any sandbox) may run,
	// and then only for agents whose approvals config says elevated: true.
	// Each run is written to the audit trail. Default false: host commands
	// are refused.
	GatewayHost bool `json:"gateway_host,omitempty"`
	// Host configures elevated commands (see HostConfig). Default: its
	// defaults.
	Host HostConfig `json:"host,omitzero"`
	// NodeExec, when present (even as {}), turns on target "node":
	// commands on this sidecar's own host, outside any sandbox but not
	// elevated, for agents whose approvals config says node: true, each
	// judged by that file and written to the audit trail. Its fields are
	// HostConfig's, with the same defaults. It is independent of
	// gateway_host: a sidecar may have both, and then "host" (elevated,
	// settings under "host") and "node" (settings here) are two targets.
	// Default: absent, node commands are refused.
	NodeExec *HostConfig `json:"node_exec,omitempty"`
	// Sandboxes are the sandbox profiles by agent name, "*" for any other
	// agent (see sandbox.Profile). Default: none; sandbox commands of an
	// agent without a profile are refused.
	Sandboxes map[string]sandbox.Profile `json:"sandboxes,omitempty"`
}

// AllowRule allows one program for one agent (or "*") on one target.
type AllowRule struct {
	// Agent is an agent name or "*". Required.
	Agent string `json:"agent"`
	// Path is the exact absolute argv[0] allowed. Required.
	Path string `json:"path"`
	// Target is "sandbox" or "host". Default "sandbox".
	Target string `json:"target,omitempty"`
}

// LoadConfig reads the config file at path (a missing file gives the
// defaults) and validates it for the given state directory. Errors name the
// file and the entry at fault.
func LoadConfig(file, stateDir string) (*Config, error) {
	cfg, _, err := loadConfig(file, stateDir)
	return cfg, err
}

// loadConfig is LoadConfig that also returns the file's content as read
// (nil for a missing file), which the running sidecar compares the file
// with later (configWatch).
func loadConfig(file, stateDir string) (*Config, []byte, error) {
	data, err := readConfigFile(file)
	raw := data
	if errors.Is(err, fs.ErrNotExist) {
		data = []byte("{}")
	} else if err != nil {
		return nil, nil, err
	}
	cfg, err := ParseConfig(data, stateDir)
	if err != nil {
		return nil, nil, fmt.Errorf("config %s: %w", file, err)
	}
	return cfg, raw, nil
}

// readConfigFile refuses a config others can write: it decides what
// sandboxes may mount.
func readConfigFile(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("config %s: not a regular file", file)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("config %s: writable by group or others (mode %04o); run chmod 600 %s", file, fi.Mode().Perm(), file)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", file, err)
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("config %s: larger than %d bytes", file, maxConfigBytes)
	}
	return data, nil
}

// ParseConfig decodes and validates a config, filling in defaults.
// Unknown fields are errors (a misspelt security setting must not be
// silently ignored).
func ParseConfig(data []byte, stateDir string) (*Config, error) {
	var raw struct {
		Config
		Sandboxes map[string]json.RawMessage `json:"sandboxes,omitempty"`
	}
	if err := strictDecode(data, &raw); err != nil {
		return nil, jsonErr(data, err)
	}
	cfg := raw.Config
	switch cfg.Version {
	case 0:
		cfg.Version = 1
	case 1:
	default:
		return nil, fmt.Errorf("version: %d is not supported (only 1)", cfg.Version)
	}
	if !filepath.IsAbs(stateDir) {
		abs, err := filepath.Abs(stateDir)
		if err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
		stateDir = abs
	}
	if len(cfg.AllowedUIDs) == 0 {
		cfg.AllowedUIDs = []uint32{uint32(os.Getuid())}
	}
	if cfg.WorkspaceRoot == "" {
		cfg.WorkspaceRoot = filepath.Join(stateDir, "workspaces")
	}
	if err := sandbox.CheckWorkspaceRoot(cfg.WorkspaceRoot, []string{stateDir}); err != nil {
		return nil, err
	}
	if cfg.Instance == "" {
		sum := sha256.Sum256([]byte(filepath.Clean(stateDir)))
		cfg.Instance = "cg" + hex.EncodeToString(sum[:6])
	}
	if !instanceOK(cfg.Instance) {
		return nil, fmt.Errorf("instance: %q must be 1 to 32 letters, digits, '-' or '_'", cfg.Instance)
	}
	switch iv := time.Duration(cfg.PruneInterval); {
	case iv == 0:
		cfg.PruneInterval = sandbox.Duration(30 * time.Second)
	case iv < time.Second:
		return nil, fmt.Errorf("prune_interval: %s is shorter than 1s", iv)
	}
	switch {
	case cfg.MaxSandboxes == 0:
		cfg.MaxSandboxes = sandbox.DefaultMaxSandboxes
	case cfg.MaxSandboxes < 1 || cfg.MaxSandboxes > 10000:
		return nil, fmt.Errorf("max_sandboxes: %d is out of range (1 to 10000)", cfg.MaxSandboxes)
	}
	for id, entry := range cfg.IdentityKeys {
		if id == "" || entry == "" {
			return nil, fmt.Errorf("identity_keys: key id and vault entry must both be set (got %q: %q)", id, entry)
		}
	}
	for i, r := range cfg.ExecAllow {
		if r.Agent != "*" && !sandbox.ValidName(r.Agent) {
			return nil, fmt.Errorf("exec_allow[%d].agent: %q must be \"*\" or an agent name", i, r.Agent)
		}
		if !path.IsAbs(r.Path) || path.Clean(r.Path) != r.Path {
			return nil, fmt.Errorf("exec_allow[%d].path: %q must be an absolute, clean path (argv[0] must match it exactly)", i, r.Path)
		}
		switch r.Target {
		case "":
			cfg.ExecAllow[i].Target = TargetSandbox
		case TargetSandbox, TargetHost:
		default:
			return nil, fmt.Errorf("exec_allow[%d].target: %q must be \"sandbox\" or \"host\"", i, r.Target)
		}
	}
	if err := cfg.Host.check("host"); err != nil {
		return nil, err
	}
	if cfg.GatewayHost && len(cfg.ExecAllow) > 0 {
		return nil, errors.New("gateway_host: elevated commands are judged by the approvals policy, which exec_allow replaces; remove exec_allow")
	}
	if cfg.NodeExec != nil {
		if err := cfg.NodeExec.check("node_exec"); err != nil {
			return nil, err
		}
		if len(cfg.ExecAllow) > 0 {
			return nil, errors.New("node_exec: node commands are judged by the approvals policy, which exec_allow replaces; remove exec_allow")
		}
	}
	cfg.Sandboxes = map[string]sandbox.Profile{}
	names := make([]string, 0, len(raw.Sandboxes))
	for name := range raw.Sandboxes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		var p sandbox.Profile
		if err := strictDecode(raw.Sandboxes[name], &p); err != nil {
			return nil, fmt.Errorf("sandbox profile %q: %w", name, err)
		}
		cp, err := sandbox.CheckProfile(name, p, cfg.WorkspaceRoot, []string{stateDir})
		if err != nil {
			return nil, err
		}
		cfg.Sandboxes[name] = cp
	}
	return &cfg, nil
}

func instanceOK(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '-' && c != '_') {
			return false
		}
	}
	return true
}

// strictDecode decodes exactly one JSON value, refusing unknown fields and
// trailing data.
func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// jsonErr adds the line and column to a JSON syntax or type error.
func jsonErr(data []byte, err error) error {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 {
		return err
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}
