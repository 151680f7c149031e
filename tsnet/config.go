package tsnet

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/clawguard/clawguard/internal/secretref"
	"github.com/clawguard/clawguard/statedir"
)

// NodeConfig is the configuration of one tailnet node, as written in the
// `tailnet` app (JSON apps.tailnet.nodes.<name>) or its Caddyfile global
// option block. The sidecar takes the same struct.
type NodeConfig struct {
	// AuthKey logs the node in on its first start; afterwards the node key
	// in StateDir is used and AuthKey is ignored. It must be a placeholder —
	// {env.NAME}, {file./path} or {vault.NAME} — never a literal key, so the
	// key never sits in the config, the admin API or the Caddyfile.
	// Default: none (the node logs a login URL to visit instead).
	AuthKey string `json:"auth_key,omitempty"`

	// ControlURL is the coordination server, e.g. a Headscale URL.
	// Default: Tailscale's (https://controlplane.tailscale.com).
	ControlURL string `json:"control_url,omitempty"`

	// Hostname is the node's name in the tailnet (its MagicDNS name).
	// Default: the node's name in this config.
	Hostname string `json:"hostname,omitempty"`

	// StateDir holds the node's key and state, created with mode 0700.
	// Default: <app state_dir>/tailnet/<node name>.
	StateDir string `json:"state_dir,omitempty"`

	// Ephemeral registers the node as ephemeral: the control server removes
	// it soon after it goes offline. Default: false.
	Ephemeral bool `json:"ephemeral,omitempty"`

	// Tags are the ACL tags the node advertises ("tag:name"); the auth key
	// or the tailnet policy's tagOwners must permit them. Default: none.
	Tags []string `json:"tags,omitempty"`
}

// Settings are a node's resolved settings: placeholders replaced, defaults
// filled in. Two listeners share a node only when their Settings are equal.
type Settings struct {
	AuthKey    string
	ControlURL string
	Hostname   string
	Dir        string
	Ephemeral  bool
	Tags       []string

	// err is why the auth key could not be resolved; such a node stays in
	// StateFailed instead of failing the whole Caddy config.
	err error
}

func (s Settings) equal(o Settings) bool {
	return s.AuthKey == o.AuthKey && s.ControlURL == o.ControlURL && s.Hostname == o.Hostname &&
		s.Dir == o.Dir && s.Ephemeral == o.Ephemeral && slices.Equal(s.Tags, o.Tags) &&
		errText(s.err) == errText(o.err)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// nodeNameRE bounds node names: they appear in listen addresses, paths and
// metric labels.
var nodeNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidNodeName reports why name cannot name a node, or nil.
func ValidNodeName(name string) error {
	if !nodeNameRE.MatchString(name) {
		// Not echoed unless it looks like a name: a key given where the
		// node name belongs must not reach the logs.
		return fmt.Errorf("invalid node name %s: use 1-63 lowercase letters, digits and inner hyphens", secretref.Quote(name))
	}
	return nil
}

// hostnameRE is a DNS label; Tailscale makes the MagicDNS name from it.
var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// tagRE is Tailscale's tag syntax: "tag:" and a name starting with a letter.
var tagRE = regexp.MustCompile(`^tag:[A-Za-z][A-Za-z0-9-]{0,79}$`)

// Validate checks the node's configuration without resolving secrets.
// Errors name the option; none contains the auth key.
func (c NodeConfig) Validate(name string) error {
	if err := ValidNodeName(name); err != nil {
		return err
	}
	if c.AuthKey != "" && !isSecretRef(c.AuthKey) {
		return fmt.Errorf("node %s: auth_key must be one placeholder ({env.NAME}, {file./path} or {vault.NAME}), not a literal key: a literal key would be readable in the config and the admin API", name)
	}
	if c.ControlURL != "" {
		u, err := url.Parse(c.ControlURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return fmt.Errorf("node %s: control_url %q: want an http(s) URL with a host and no credentials", name, c.ControlURL)
		}
	}
	if c.Hostname != "" && !hostnameRE.MatchString(c.Hostname) {
		return fmt.Errorf("node %s: hostname %q: want a DNS label (letters, digits, inner hyphens, at most 63)", name, c.Hostname)
	}
	if c.StateDir != "" && !filepath.IsAbs(c.StateDir) {
		return fmt.Errorf("node %s: state_dir %q: want an absolute path", name, c.StateDir)
	}
	for _, t := range c.Tags {
		if !tagRE.MatchString(t) {
			return fmt.Errorf("node %s: tag %q: want tag:<name>", name, t)
		}
	}
	return nil
}

// Resolve validates c and returns the node's Settings. baseDir is the
// clawguard state directory ("" = statedir.Resolve("")); {vault.NAME} is
// read from the vault in baseDir. When only the auth key cannot be resolved
// (unset variable, missing vault entry), the error is a *SecretError and the
// Settings are still returned, carrying it: the Caddy app then runs the node
// as failed rather than failing the whole config.
func (c NodeConfig) Resolve(name, baseDir string) (Settings, error) {
	if err := c.Validate(name); err != nil {
		return Settings{}, err
	}
	if baseDir == "" {
		baseDir = statedir.Resolve("")
	}
	s := Settings{
		ControlURL: c.ControlURL,
		Hostname:   c.Hostname,
		Dir:        c.StateDir,
		Ephemeral:  c.Ephemeral,
		Tags:       slices.Clone(c.Tags),
	}
	if s.Hostname == "" {
		s.Hostname = name
	}
	if s.Dir == "" {
		s.Dir = filepath.Join(baseDir, "tailnet", name)
	}
	slices.Sort(s.Tags)
	s.Tags = slices.Compact(s.Tags)
	if c.AuthKey != "" {
		key, err := resolveSecret(c.AuthKey, baseDir)
		if err != nil {
			s.err = &SecretError{Node: name, Err: err}
			return s, s.err
		}
		s.AuthKey = key
	}
	return s, nil
}

// SecretError reports a node whose auth key placeholder did not resolve.
type SecretError struct {
	Node string
	Err  error
}

func (e *SecretError) Error() string { return "node " + e.Node + ": auth_key: " + e.Err.Error() }
func (e *SecretError) Unwrap() error { return e.Err }

// resolveSecret replaces the one placeholder in raw (see secretref), the
// vault being the one in stateDir. Errors name the placeholder, never its value.
func resolveSecret(raw, stateDir string) (string, error) {
	v, err := secretref.Resolve(raw, secretref.OpenVault(stateDir))
	if err != nil {
		return "", err
	}
	// {file.*} keeps a trailing newline; keys never hold whitespace.
	v = strings.TrimSpace(v)
	if v == "" {
		return "", errors.New(raw + ": empty")
	}
	return v, nil
}

// isSecretRef reports whether v is exactly one secret placeholder.
func isSecretRef(v string) bool {
	_, _, ok := secretref.Single(v)
	return ok
}
