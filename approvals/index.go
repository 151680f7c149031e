package approvals

import (
	"fmt"
	"path"
	"regexp"
	"slices"
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
// prefix (everything before the first "*"). A glob can only match a path
// that starts with its prefix, so a lookup probes the path's prefixes of
// the lengths that occur among the buckets, and matches only the globs
// found there.
type ruleIndex struct {
	exact   map[string][]*rule
	globs   map[string][]*rule
	lengths []int // distinct prefix lengths in globs, ascending
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
	if _, ok := ix.globs[prefix]; !ok {
		i, _ := slices.BinarySearch(ix.lengths, len(prefix))
		if i == len(ix.lengths) || ix.lengths[i] != len(prefix) {
			ix.lengths = slices.Insert(ix.lengths, i, len(prefix))
		}
	}
	ix.globs[prefix] = append(ix.globs[prefix], r)
}

// find returns the lowest-ordered rule that matches the path and that ok
// accepts, and otherwise the first path match ok refused (for the reason).
func (ix *ruleIndex) find(p string, ok func(*rule) bool) (best, missed *rule) {
	try := func(r *rule) {
		if best != nil && r.order > best.order {
			return
		}
		if ok(r) {
			best = r
		} else if missed == nil {
			missed = r
		}
	}
	for _, r := range ix.exact[p] {
		try(r)
	}
	for _, n := range ix.lengths {
		if n > len(p) {
			break
		}
		for _, r := range ix.globs[p[:n]] {
			if r.glob.MatchString(p) {
				try(r)
			}
		}
	}
	return best, missed
}

// compileGlob checks an entry's path and, if it is a glob, compiles it and
// returns its literal prefix.
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
	// The literal prefix; before a "**" segment without its slash, since
	// "/a/**" also matches "/a".
	prefix := p[:strings.IndexByte(p, '*')]
	if strings.HasSuffix(prefix, "/") && strings.HasPrefix(p[len(prefix):], "**") {
		prefix = strings.TrimSuffix(prefix, "/")
	}
	var re strings.Builder
	re.WriteString("^")
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
	}
	re.WriteString("$")
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
