package approvals

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// rule is a compiled allow entry.
type rule struct {
	name  string // "agents.main.allow[0]"
	order int    // position in evaluation order; lower wins
	entry Entry
	glob  *regexp.Regexp // nil for an exact path
	args  *regexp.Regexp // nil: any arguments (within the interpreter rules)
}

// ruleIndex finds the entries whose path matches a program without
// scanning them all: exact paths in a map, globs bucketed by their literal
// directory prefix, so a lookup costs one map probe per path segment plus
// the globs that share a directory with the program.
type ruleIndex struct {
	exact map[string][]*rule
	globs map[string][]*rule
}

func (ix *ruleIndex) add(r *rule, prefix string) {
	if r.glob == nil {
		if ix.exact == nil {
			ix.exact = map[string][]*rule{}
		}
		ix.exact[r.entry.Path] = append(ix.exact[r.entry.Path], r)
		return
	}
	if ix.globs == nil {
		ix.globs = map[string][]*rule{}
	}
	ix.globs[prefix] = append(ix.globs[prefix], r)
}

// find returns the lowest-ordered rule that matches the path and whose
// check passes, and otherwise the reason the first path match failed.
func (ix *ruleIndex) find(p string, check func(*rule) string) (*rule, string) {
	var best *rule
	var why string
	try := func(r *rule) {
		if best != nil && r.order > best.order {
			return
		}
		if w := check(r); w == "" {
			best = r
		} else if why == "" {
			why = w
		}
	}
	for _, r := range ix.exact[p] {
		try(r)
	}
	if len(ix.globs) == 0 {
		return best, why
	}
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		prefix := p[:i]
		if i == 0 {
			prefix = "/"
		}
		for _, r := range ix.globs[prefix] {
			if r.glob.MatchString(p) {
				try(r)
			}
		}
	}
	return best, why
}

// compileGlob checks an entry's path and, if it is a glob, compiles it and
// returns its literal directory prefix.
func compileGlob(field, p string) (*regexp.Regexp, string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, "", fieldErr(field, "%q is not an absolute path", p)
	}
	if c := path.Clean(p); c != p {
		return nil, "", fieldErr(field, "%q is not a clean path; write %q", p, c)
	}
	if i := strings.IndexAny(p, `?[]{}\`); i >= 0 {
		return nil, "", fieldErr(field, "%q: %q is not supported in paths (globs know only * and **)", p, p[i:i+1])
	}
	if !strings.Contains(p, "*") {
		return nil, "", nil
	}
	var re strings.Builder
	re.WriteString("^")
	prefix, literal := "", true
	for _, seg := range strings.Split(p[1:], "/") {
		switch {
		case seg == "**":
			re.WriteString("(?:/[^/]+)*")
		case strings.Contains(seg, "**"):
			return nil, "", fieldErr(field, "%q: ** must be a whole path segment", p)
		default:
			re.WriteString("/")
			parts := strings.Split(seg, "*")
			for i, part := range parts {
				if i > 0 {
					re.WriteString("[^/]*")
				}
				re.WriteString(regexp.QuoteMeta(part))
			}
		}
		if literal && strings.Contains(seg, "*") {
			literal = false
		}
		if literal {
			prefix += "/" + seg
		}
	}
	re.WriteString("$")
	if prefix == "" {
		prefix = "/"
	}
	g, err := regexp.Compile(re.String())
	if err != nil {
		return nil, "", fieldErr(field, "%q: %v", p, err)
	}
	return g, prefix, nil
}

// compileArgs compiles an args pattern anchored at both ends. The pattern
// is compiled alone first so that one with unbalanced groups ("a)|(b")
// cannot break out of the anchoring group.
func compileArgs(field, pattern string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(pattern); err != nil {
		return nil, fieldErr(field, "bad regex: %v", err)
	}
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	if err != nil {
		return nil, fieldErr(field, "bad regex: %v", err)
	}
	return re, nil
}

func (r *rule) String() string {
	if r.entry.Args == "" {
		return fmt.Sprintf("%s (%s)", r.name, r.entry.Path)
	}
	return fmt.Sprintf("%s (%s, args %s)", r.name, r.entry.Path, r.entry.Args)
}
