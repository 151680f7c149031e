package approvals

import (
	"path"
	"strings"
)

// class says how much an allow entry without an args pattern may allow of a
// program.
type class int

const (
	// classPlain: an entry without args pattern allows any arguments.
	classPlain class = iota
	// classInterpreter runs code: an entry without args pattern allows it
	// only in script-file form (see scriptForm), never with inline code
	// (-c, -e, --eval, -m, ...), options, or a program from stdin.
	classInterpreter
	// classCodeRunner takes the code or the command it runs from its
	// arguments (awk, sed, xargs, find -exec, sudo, ...), or is a wrapper
	// that could not be unwrapped: it needs an entry with an args pattern.
	classCodeRunner
)

// interpreters are shells and language runtimes that run a script file
// given as their first argument. Names are compared in lower case after
// stripping a version suffix (python3.12 → python, lua5.4 → lua).
var interpreters = set(
	// shells
	"sh", "bash", "rbash", "zsh", "dash", "ksh", "mksh", "pdksh", "oksh", "ash", "yash",
	"posh", "fish", "csh", "tcsh", "elvish", "nu", "xonsh", "pwsh", "pwsh-preview",
	// languages
	"python", "pypy", "perl", "ruby", "php", "lua", "luajit", "tclsh", "wish", "node",
	"nodejs", "osascript", "julia", "rscript", "guile", "racket", "gjs", "qjs", "expect",
	"groovy", "jshell", "swift",
	// programs that run code from a file in the working directory and
	// take inline code as options
	"make", "gmake", "git",
)

// codeRunners always need an args pattern: their code or the command they
// run is an ordinary argument (awk's program, sed's script, xargs' and
// sudo's command), or they run other programs in ways clawguard does not
// unwrap. powershell (Windows PowerShell) treats a bare argument as a
// command, unlike pwsh; deno and bun take subcommands such as eval.
var codeRunners = set(
	"awk", "gawk", "mawk", "nawk", "sed", "gsed", "deno", "bun", "powershell",
	"xargs", "find", "gfind", "parallel", "watch", "script", "flock",
	"sudo", "doas", "su", "pkexec", "runuser", "chroot", "nsenter", "unshare", "setpriv",
	"strace", "ltrace", "gdb", "lldb", "time", "chrt", "taskset", "ssh",
	"vi", "vim", "nvim", "ex", "view", "emacs",
)

// multicall binaries pick the program they act as from argv[0] (or their
// first argument): busybox invoked through a symlink named sh is a shell.
var multicall = set("busybox", "toybox")

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// family lower-cases a program's base name and strips a version suffix.
func family(name string) string {
	f := strings.ToLower(path.Base(name))
	return strings.TrimRight(f, "0123456789.-_")
}

// classify returns the stricter class of the program as invoked (argv[0])
// and as resolved, so neither a symlink's name nor its target can make a
// shell look like something harmless.
func classify(invoked, resolved string) class {
	c := classPlain
	for _, n := range []string{family(invoked), family(resolved)} {
		switch {
		case codeRunners[n], multicall[n], wrappers[n] != nil:
			return classCodeRunner
		case interpreters[n]:
			c = classInterpreter
		}
	}
	return c
}

// scriptForm reports whether an interpreter's arguments start with a
// script file rather than an option, inline code or nothing (which means a
// program on stdin). Device and /proc paths count as stdin (/dev/stdin,
// /dev/fd/0, /proc/self/fd/0).
func scriptForm(args []string, cwd string) bool {
	if len(args) == 0 || args[0] == "" || strings.ContainsRune("-+", rune(args[0][0])) {
		return false
	}
	p := args[0]
	if !path.IsAbs(p) {
		p = path.Join(cwd, p)
	}
	p = path.Clean(p)
	return !strings.HasPrefix(p, "/dev/") && !strings.HasPrefix(p, "/proc/")
}
