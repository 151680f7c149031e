package approvals

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/clawguard/clawguard/statedir"
)

// DefaultConfig is what a node without an approval file gets: every
// command waits for a person, nobody answering means deny, nothing is
// pre-approved, no agent is elevated.
func DefaultConfig() *Config { return &Config{Version: Version} }

// Load reads and validates the approval file at path. A missing file is
// DefaultConfig; a file that group or others can write is refused, since
// anyone who can edit it decides what agents may run.
func Load(path string) (*Config, error) {
	cfg, _, err := load(path)
	return cfg, err
}

func load(path string) (*Config, []byte, error) {
	data, err := statedir.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultConfig(), nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("approvals config: %w", err)
	}
	if err := checkPerm(path); err != nil {
		return nil, nil, err
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("approvals config %s: %w", path, err)
	}
	return cfg, data, nil
}

func checkPerm(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("approvals config: %w", err)
	}
	if m := fi.Mode().Perm(); m&0o022 != 0 {
		return fmt.Errorf("approvals config %s: writable by group or others (mode %04o); run chmod 600 %s", path, m, path)
	}
	return nil
}

// Save validates cfg and writes it to path atomically with mode 0600.
func Save(path string, cfg *Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("approvals config %s: %w", path, err)
	}
	data, err := cfg.Marshal()
	if err != nil {
		return err
	}
	return statedir.WriteFile(path, data)
}

// Store is the approval file of a running sidecar: it hands out the
// current Policy, notices when the file changes (people edit it, other
// processes add entries) and adds allow-always entries.
type Store struct {
	path string

	mu     sync.Mutex
	policy *Policy
	err    error       // the file's current problem; evaluations deny while set
	stat   fs.FileInfo // of the file last read; nil if it did not exist
	data   []byte      // its content
	read   time.Time   // when it was read
}

// OpenStore loads the approval file at path. An invalid file is an error
// here, so a sidecar does not start on a policy it cannot read.
func OpenStore(path string) (*Store, error) {
	s := &Store{path: path}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Path is the approval file's location.
func (s *Store) Path() string { return s.path }

// Policy returns the current policy, re-reading the file if it changed
// since the last call. If the file became invalid it returns the error:
// a broken edit fails closed instead of leaving an older, maybe wider
// policy in force.
func (s *Store) Policy() (*Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed() {
		s.err = s.reloadLocked()
	}
	if s.err != nil {
		return nil, s.err
	}
	return s.policy, nil
}

// Evaluate decides on req with the current policy; while the file is
// invalid every request is denied with the file's error as the reason.
func (s *Store) Evaluate(req Request) Decision {
	p, err := s.Policy()
	if err != nil {
		return Decision{Verdict: Deny, Command: Quote(req.Argv), Reason: err.Error()}
	}
	return p.Evaluate(req)
}

func (s *Store) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = s.reloadLocked()
	return s.err
}

// changed reports whether the file may differ from what was read. Besides
// identity, size and mtime it re-reads a file modified within a second of
// the last read, whose mtime may not have moved on coarse clocks.
func (s *Store) changed() bool {
	fi, err := os.Stat(s.path)
	if err != nil || s.stat == nil {
		return (err == nil) != (s.stat != nil) || (err != nil && !errors.Is(err, fs.ErrNotExist))
	}
	if !os.SameFile(fi, s.stat) || fi.Size() != s.stat.Size() || !fi.ModTime().Equal(s.stat.ModTime()) {
		return true
	}
	if s.read.Sub(fi.ModTime()) < time.Second {
		data, err := os.ReadFile(s.path)
		if err != nil || !bytes.Equal(data, s.data) {
			return true
		}
		s.read = time.Now() // unchanged: re-check only until the mtime is a second old
	}
	return false
}

func (s *Store) reloadLocked() error {
	fi, statErr := os.Stat(s.path)
	read := time.Now()
	cfg, data, err := load(s.path)
	if err != nil {
		return err
	}
	p, err := compile(cfg)
	if err != nil {
		return fmt.Errorf("approvals config %s: %w", s.path, err)
	}
	s.policy, s.data, s.read, s.stat = p, data, read, nil
	if statErr == nil {
		s.stat = fi
	}
	return nil
}

// AddEntry appends e to agent's allow list in the file and returns the
// rule's name. It holds the file's lock and re-reads the file first, so an
// edit made meanwhile (by a person or another process) is kept; an entry
// already present is not added twice. An invalid file is left untouched.
func (s *Store) AddEntry(agent string, e Entry) (string, error) {
	if !agentName.MatchString(agent) {
		return "", fmt.Errorf("add approval entry: agent name %q is not valid", agent)
	}
	unlock, err := statedir.Lock(s.path)
	if err != nil {
		return "", fmt.Errorf("add approval entry: %w", err)
	}
	defer unlock()
	cfg, _, err := load(s.path)
	if err != nil {
		return "", fmt.Errorf("add approval entry: %w", err)
	}
	if cfg.Agents == nil {
		cfg.Agents = map[string]*Agent{}
	}
	a := cfg.Agents[agent]
	if a == nil {
		a = &Agent{}
		cfg.Agents[agent] = a
	}
	for i, old := range a.Allow {
		if old.Path == e.Path && old.Args == e.Args && slices.Equal(old.Env, e.Env) {
			return RuleName(agent, i), nil
		}
	}
	a.Allow = append(a.Allow, e)
	if err := Save(s.path, cfg); err != nil {
		return "", fmt.Errorf("add approval entry: %w", err)
	}
	if err := s.reload(); err != nil {
		return "", fmt.Errorf("add approval entry: %w", err)
	}
	return RuleName(agent, len(a.Allow)-1), nil
}
