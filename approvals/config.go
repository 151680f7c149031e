package approvals

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/clawguard/clawguard/wire"
)

// DefaultPath returns <stateDir>/approvals.json.
func DefaultPath(stateDir string) string { return filepath.Join(stateDir, wire.FileApprovals) }

// Version is the only file format version this package reads and writes.
const Version = 1

// Mode says how commands without a matching allow entry are treated.
type Mode string

const (
	// ModeAllowlist runs only commands an allow entry matches; the rest are denied.
	ModeAllowlist Mode = "allowlist"
	// ModeAsk lets a person decide on commands no entry matches.
	ModeAsk Mode = "ask"
	// ModeFull runs every command (the security audit warns about it).
	ModeFull Mode = "full"
)

// Fallback is what an unanswered ask turns into after ask_timeout. It can
// never be "full": a timeout must not approve what nobody looked at.
type Fallback string

const (
	// FallbackDeny denies the request.
	FallbackDeny Fallback = "deny"
	// FallbackAllowlist evaluates the request again as in allowlist mode, so
	// it runs only if an entry added meanwhile (say, an allow-always for an
	// identical request) matches it.
	FallbackAllowlist Fallback = "allowlist"
)

// Defaults for settings a file leaves out.
const (
	DefaultMode        = ModeAsk
	DefaultAskTimeout  = 2 * time.Minute
	DefaultAskFallback = FallbackDeny
	// MaxAskTimeout bounds ask_timeout: an exec does not hang for days.
	MaxAskTimeout = 24 * time.Hour
)

// AnyAgent is the agents key whose settings and allow entries apply to
// every agent.
const AnyAgent = "*"

// Config is the approval file of one node. The zero value (what a missing
// file means) asks a person about every command and denies on timeout.
type Config struct {
	// Version of the file format; must be 1.
	Version int `json:"version"`
	// Defaults apply to agents that do not set their own.
	Defaults Defaults `json:"defaults"`
	// Agents maps an agent name, or "*" for all agents, to its settings.
	Agents map[string]*Agent `json:"agents,omitempty"`
}

// Defaults are the node-wide settings.
type Defaults struct {
	// Mode for agents that set none (neither themselves nor "*"). Default: ask.
	Mode Mode `json:"mode,omitempty"`
	// AskTimeout is how long an exec waits for a person. Default: 2m.
	AskTimeout Duration `json:"ask_timeout,omitempty"`
	// AskFallback applies when nobody answers in time: deny or allowlist.
	// Default: deny.
	AskFallback Fallback `json:"ask_fallback,omitempty"`
}

// Agent holds one agent's settings ("*": every agent's).
type Agent struct {
	// Mode overrides "*" and defaults.mode for this agent.
	Mode Mode `json:"mode,omitempty"`
	// Elevated lets the agent run commands on the gateway host itself
	// (target "host"), outside any sandbox. Default: false. It can only be
	// enabled per named agent, never through "*".
	Elevated *bool `json:"elevated,omitempty"`
	// Node lets the agent's commands run on this node's own host (target
	// "node"), outside any sandbox but not elevated; the sidecar must also
	// have node_exec on. Default: false. "*" may enable it for every
	// agent; an agent's own setting overrides that of "*".
	Node *bool `json:"node,omitempty"`
	// Allow lists the commands that run without asking. The entries of "*"
	// apply to every agent after the agent's own.
	Allow []Entry `json:"allow,omitempty"`
}

// Entry allows one program, optionally only with certain arguments.
type Entry struct {
	// Path is the program's absolute path with symlinks resolved, or a glob
	// on one: "*" matches within a path segment, a "**" segment any number
	// of segments.
	Path string `json:"path"`
	// Args is an RE2 regular expression that must match the whole argument
	// string (see JoinArgs); it is anchored at both ends whether or not it
	// says so. Empty: any arguments, except inline code for shells and
	// interpreters, which always needs a pattern.
	Args string `json:"args,omitempty"`
	// Env names environment variables, beyond the always-safe ones
	// (SafeEnv), that a request matched by this entry may set; a trailing
	// "*" matches a prefix. Default: none.
	Env []string `json:"env,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("2m").
type Duration time.Duration

// MarshalJSON writes the shortest string time.ParseDuration reads back.
func (d Duration) MarshalJSON() ([]byte, error) {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return json.Marshal(s)
}

// Marshal renders c as the indented JSON written to the file.
func (c *Config) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode approvals config: %w", err)
	}
	return append(b, '\n'), nil
}

// agentNames returns the agent names in the order rules are numbered.
func (c *Config) agentNames() []string {
	names := make([]string, 0, len(c.Agents))
	for n := range c.Agents {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// RuleName names entry i of agent's allow list the way decisions report it.
func RuleName(agent string, i int) string {
	return fmt.Sprintf("agents.%s.allow[%d]", agent, i)
}
