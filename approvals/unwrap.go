package approvals

import (
	"fmt"
	"path"
	"strings"
)

// Wrappers run another command with a changed environment, priority,
// session or time limit. clawguard unwraps them and decides on the command
// they run: `env FOO=1 rm -rf /` is judged as rm. The option tables follow
// GNU coreutils and util-linux (getopt_long in "+" mode: options end at the
// first operand, long options may be abbreviated to a unique prefix, short
// options may be clustered). An option that is unknown, ambiguous, or that
// makes the run something else (env -S splits a string into a new command
// line, env -a changes argv[0], command -p uses a built-in PATH, ionice -p
// acts on another process, --help) stops unwrapping: the wrapper is then
// judged as itself and needs an entry with an args pattern.
//
// Only wrappers that resolve into a system directory (wrapperDirs) are
// unwrapped; a program merely named env elsewhere is judged as itself.
var wrappers = map[string]*wrapperSpec{
	"env": envSpec, "genv": envSpec,
	"nice": niceSpec, "gnice": niceSpec,
	"nohup": nohupSpec, "gnohup": nohupSpec,
	"timeout": timeoutSpec, "gtimeout": timeoutSpec,
	"stdbuf": stdbufSpec, "gstdbuf": stdbufSpec,
	"setsid":  setsidSpec,
	"ionice":  ioniceSpec,
	"command": commandSpec,
	"exec":    execSpec,
}

// wrapperDirs are the directories a wrapper must resolve into to be
// unwrapped; wrapperPrefixes cover package stores whose binaries the
// system links to.
var (
	wrapperDirs     = set("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/opt/homebrew/bin")
	wrapperPrefixes = []string{"/nix/store/", "/opt/homebrew/Cellar/", "/usr/local/Cellar/"}
)

func systemPath(p string) bool {
	if wrapperDirs[path.Dir(p)] {
		return true
	}
	for _, pre := range wrapperPrefixes {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

type argKind int

const (
	noArg argKind = iota
	requiredArg
	optionalArg // long form only, as --name=value
)

type option struct {
	short  byte
	long   string
	kind   argKind
	refuse string // non-empty: unwrapping stops with this reason
	apply  func(u *unwrapped, value string)
}

type wrapperSpec struct {
	options []option
	// legacy recognises an obsolete option form getopt does not parse
	// (nice -5).
	legacy func(arg string) bool
	// operands consumes operands before the command (env's NAME=value,
	// timeout's DURATION) and returns the rest.
	operands func(u *unwrapped, args []string) ([]string, error)
}

// unwrapped is what a wrapper does to the command it runs.
type unwrapped struct {
	set      []string          // variables assigned
	values   map[string]string // their values (PATH matters for lookup)
	unset    []string
	clearEnv bool
	chdir    string
}

func (u *unwrapped) assign(name, value string) {
	u.set = append(u.set, name)
	if u.values == nil {
		u.values = map[string]string{}
	}
	u.values[name] = value
}

var (
	envSpec = &wrapperSpec{
		options: []option{
			{short: 'i', long: "ignore-environment", apply: func(u *unwrapped, _ string) { u.clearEnv = true }},
			{short: '0', long: "null", refuse: "env -0 runs no command"},
			{short: 'u', long: "unset", kind: requiredArg, apply: func(u *unwrapped, v string) { u.unset = append(u.unset, v) }},
			{short: 'C', long: "chdir", kind: requiredArg, apply: func(u *unwrapped, v string) { u.chdir = v }},
			{short: 'S', long: "split-string", kind: requiredArg, refuse: "env -S builds a new command line from a string"},
			{short: 'a', long: "argv0", kind: requiredArg, refuse: "env -a changes the program's argv[0]"},
			{short: 'v', long: "debug"},
			{long: "block-signal", kind: optionalArg},
			{long: "default-signal", kind: optionalArg},
			{long: "ignore-signal", kind: optionalArg},
			{long: "list-signal-handling"},
			{long: "help", refuse: "env --help runs no command"},
			{long: "version", refuse: "env --version runs no command"},
		},
		operands: func(u *unwrapped, args []string) ([]string, error) {
			if len(args) > 0 && args[0] == "-" { // obsolete spelling of -i
				u.clearEnv = true
				args = args[1:]
			}
			for len(args) > 0 && strings.Contains(args[0], "=") {
				name, value, _ := strings.Cut(args[0], "=")
				if !envName.MatchString(name) {
					return nil, fmt.Errorf("env assigns the odd variable name %q", name)
				}
				u.assign(name, value)
				args = args[1:]
			}
			return args, nil
		},
	}
	niceSpec = &wrapperSpec{
		options: []option{
			{short: 'n', long: "adjustment", kind: requiredArg},
			{long: "help", refuse: "nice --help runs no command"},
			{long: "version", refuse: "nice --version runs no command"},
		},
		// nice -5, nice --5, nice -+5: an adjustment, not an option.
		legacy: func(a string) bool {
			if len(a) < 2 || a[0] != '-' {
				return false
			}
			i := 1
			if a[1] == '-' || a[1] == '+' {
				i = 2
			}
			return i < len(a) && a[i] >= '0' && a[i] <= '9'
		},
	}
	nohupSpec = &wrapperSpec{
		options: []option{
			{long: "help", refuse: "nohup --help runs no command"},
			{long: "version", refuse: "nohup --version runs no command"},
		},
	}
	timeoutSpec = &wrapperSpec{
		options: []option{
			{short: 'f', long: "foreground"},
			{short: 'k', long: "kill-after", kind: requiredArg},
			{short: 'p', long: "preserve-status"},
			{short: 's', long: "signal", kind: requiredArg},
			{short: 'v', long: "verbose"},
			{long: "help", refuse: "timeout --help runs no command"},
			{long: "version", refuse: "timeout --version runs no command"},
		},
		operands: func(_ *unwrapped, args []string) ([]string, error) {
			if len(args) == 0 {
				return nil, fmt.Errorf("timeout without a duration")
			}
			return args[1:], nil
		},
	}
	stdbufSpec = &wrapperSpec{
		options: []option{
			{short: 'i', long: "input", kind: requiredArg},
			{short: 'o', long: "output", kind: requiredArg},
			{short: 'e', long: "error", kind: requiredArg},
			{long: "help", refuse: "stdbuf --help runs no command"},
			{long: "version", refuse: "stdbuf --version runs no command"},
		},
	}
	setsidSpec = &wrapperSpec{
		options: []option{
			{short: 'c', long: "ctty"},
			{short: 'f', long: "fork"},
			{short: 'w', long: "wait"},
			{short: 'h', long: "help", refuse: "setsid --help runs no command"},
			{short: 'V', long: "version", refuse: "setsid --version runs no command"},
		},
	}
	ioniceSpec = &wrapperSpec{
		options: []option{
			{short: 'c', long: "class", kind: requiredArg},
			{short: 'n', long: "classdata", kind: requiredArg},
			{short: 't', long: "ignore"},
			{short: 'p', long: "pid", kind: requiredArg, refuse: "ionice -p acts on running processes"},
			{short: 'P', long: "pgid", kind: requiredArg, refuse: "ionice -P acts on running processes"},
			{short: 'u', long: "uid", kind: requiredArg, refuse: "ionice -u acts on running processes"},
			{short: 'h', long: "help", refuse: "ionice --help runs no command"},
			{short: 'V', long: "version", refuse: "ionice --version runs no command"},
		},
	}
	commandSpec = &wrapperSpec{
		options: []option{
			{short: 'p', refuse: "command -p searches a built-in PATH"},
			{short: 'v', refuse: "command -v runs no command"},
			{short: 'V', refuse: "command -V runs no command"},
		},
	}
	execSpec = &wrapperSpec{
		options: []option{
			{short: 'a', kind: requiredArg, refuse: "exec -a changes the program's argv[0]"},
			{short: 'c', refuse: "exec -c clears the environment in shell-specific ways"},
			{short: 'l', refuse: "exec -l changes the program's argv[0]"},
		},
	}
)

// unwrap parses a wrapper's arguments and returns the command it runs.
// An error means the wrapper could not be unwrapped safely.
func (s *wrapperSpec) unwrap(name string, args []string) (*unwrapped, []string, error) {
	u := &unwrapped{}
	i := 0
	for i < len(args) {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if s.legacy != nil && s.legacy(a) {
			i++
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			break // first operand ends the options ("+" mode)
		}
		if strings.HasPrefix(a, "--") {
			n, err := s.long(name, a, args[i+1:], u)
			if err != nil {
				return nil, nil, err
			}
			i += 1 + n
			continue
		}
		n, err := s.shorts(name, a, args[i+1:], u)
		if err != nil {
			return nil, nil, err
		}
		i += 1 + n
	}
	rest := args[i:]
	if s.operands != nil {
		var err error
		if rest, err = s.operands(u, rest); err != nil {
			return nil, nil, err
		}
	}
	return u, rest, nil
}

// long handles one --name[=value] argument, accepting a unique prefix of a
// long name as getopt_long does, and returns how many following arguments
// it consumed.
func (s *wrapperSpec) long(name, arg string, next []string, u *unwrapped) (int, error) {
	key, value, hasValue := strings.Cut(arg[2:], "=")
	var match *option
	for i := range s.options {
		o := &s.options[i]
		if o.long == "" || !strings.HasPrefix(o.long, key) {
			continue
		}
		if o.long == key {
			match = o
			break
		}
		if match != nil {
			return 0, fmt.Errorf("%s: option --%s is ambiguous", name, key)
		}
		match = o
	}
	if match == nil || key == "" {
		return 0, fmt.Errorf("%s: unknown option %s", name, arg)
	}
	used := 0
	switch match.kind {
	case noArg:
		if hasValue {
			return 0, fmt.Errorf("%s: option --%s takes no value", name, match.long)
		}
	case requiredArg:
		if !hasValue {
			if len(next) == 0 {
				return 0, fmt.Errorf("%s: option --%s needs a value", name, match.long)
			}
			value, used = next[0], 1
		}
	}
	return used, s.apply(name, match, value, u)
}

// shorts handles one cluster of short options (-iu NAME, -n5) and returns
// how many following arguments it consumed.
func (s *wrapperSpec) shorts(name, arg string, next []string, u *unwrapped) (int, error) {
	for j := 1; j < len(arg); j++ {
		var match *option
		for i := range s.options {
			if s.options[i].short == arg[j] {
				match = &s.options[i]
				break
			}
		}
		if match == nil {
			return 0, fmt.Errorf("%s: unknown option -%c", name, arg[j])
		}
		if match.kind != requiredArg {
			if err := s.apply(name, match, "", u); err != nil {
				return 0, err
			}
			continue
		}
		if j+1 < len(arg) {
			return 0, s.apply(name, match, arg[j+1:], u)
		}
		if len(next) == 0 {
			return 0, fmt.Errorf("%s: option -%c needs a value", name, arg[j])
		}
		return 1, s.apply(name, match, next[0], u)
	}
	return 0, nil
}

func (s *wrapperSpec) apply(name string, o *option, value string, u *unwrapped) error {
	if o.refuse != "" {
		return fmt.Errorf("%s: %s", name, o.refuse)
	}
	if o.apply != nil {
		o.apply(u, value)
	}
	return nil
}
