package approvals

import (
	"fmt"
	"path"
	"slices"
	"sort"
)

// maxWrapperDepth bounds nested wrappers (env nice timeout … cmd).
const maxWrapperDepth = 8

// command is a request's program as the policy judges it: argv[0]
// resolved, wrappers unwrapped.
type command struct {
	exec     string   // resolved argv[0] of the request: what the caller should execute
	invoked  string   // argv[0] of the judged program as written
	path     string   // the judged program, resolved
	args     []string // its arguments; for a multicall binary the applet name first
	wrappers []string // resolved wrappers that were unwrapped, outermost first
	cwd      string   // the directory it runs in
	envSet   []string // variables set by the request and by wrappers
	class    class
	note     string // why a wrapper was judged as itself
}

// resolveCommand resolves req's argv[0] with r and unwraps wrappers. On
// error the partial command says how far it got.
func resolveCommand(req *Request, r Resolver) (*command, error) {
	argv, cwd, pathList := req.Argv, req.Cwd, req.lookupPath()
	c := &command{}
	for name := range req.Env {
		c.envSet = append(c.envSet, name)
	}
	sort.Strings(c.envSet)
	for depth := 0; ; depth++ {
		p, err := r.Resolve(argv[0], cwd, pathList)
		if err != nil {
			c.invoked, c.path = argv[0], ""
			return c, err
		}
		if depth == 0 {
			c.exec = p
		}
		c.invoked, c.path, c.args, c.cwd = argv[0], p, argv[1:], cwd
		base := path.Base(p)
		spec := wrappers[base]
		if spec == nil || !systemPath(p) {
			if multicall[family(base)] && !multicall[family(argv[0])] {
				// Invoked through a link named after the applet: judge it
				// like `busybox <applet> args…`.
				c.args = append([]string{path.Base(argv[0])}, argv[1:]...)
			}
			c.class = classify(argv[0], p)
			return c, nil
		}
		c.class = classCodeRunner
		if depth == maxWrapperDepth {
			c.note = fmt.Sprintf("more than %d nested wrappers", maxWrapperDepth)
			return c, nil
		}
		u, inner, err := spec.unwrap(base, argv[1:])
		if err != nil {
			c.note = err.Error()
			return c, nil
		}
		if len(inner) == 0 {
			c.note = base + " runs no command here"
			return c, nil
		}
		c.envSet = append(c.envSet, u.set...)
		if v, ok := u.values["PATH"]; ok {
			pathList = v
		} else if u.clearEnv || slices.Contains(u.unset, "PATH") {
			pathList = "" // a later lookup fails: we cannot tell what runs
		}
		if u.chdir != "" {
			if path.IsAbs(u.chdir) {
				cwd = path.Clean(u.chdir)
			} else {
				cwd = path.Join(cwd, u.chdir)
			}
		}
		c.wrappers = append(c.wrappers, p)
		argv = inner
	}
}
