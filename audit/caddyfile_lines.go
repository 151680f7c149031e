package audit

import (
	"maps"
	"slices"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// cfLine is one line of a Caddyfile as Caddy's lexer sees it: a directive
// or option with its arguments, and the names of the blocks it sits in.
// The adapted JSON says what Caddy does; these lines say where in the file
// it was written, which findings and rewrites need.
type cfLine struct {
	tokens []caddyfile.Token
	// parents are the texts of the lines that opened the enclosing blocks,
	// outermost first (empty for the global options block).
	parents [][]string
}

func (l cfLine) name() string { return l.tokens[0].Text }
func (l cfLine) line() int    { return l.tokens[0].Line }

// args returns the line's arguments (the tokens after the name).
func (l cfLine) args() []caddyfile.Token { return l.tokens[1:] }

// in reports whether the line sits (at any depth) in a block opened by a
// line named name.
func (l cfLine) in(name string) bool { return l.block(name) != nil }

// block returns the text of the innermost enclosing block line named name,
// or nil.
func (l cfLine) block(name string) []string {
	for i := len(l.parents) - 1; i >= 0; i-- {
		if p := l.parents[i]; len(p) > 0 && p[0] == name {
			return p
		}
	}
	return nil
}

// parent returns the innermost enclosing block's name.
func (l cfLine) parent() string {
	if len(l.parents) == 0 || len(l.parents[len(l.parents)-1]) == 0 {
		return ""
	}
	return l.parents[len(l.parents)-1][0]
}

// splitLines groups tokens into lines and tracks block nesting the way the
// Caddyfile parser does: a token starts a new line when it begins below
// the previous token's last line; an unquoted "{" ending a line opens a
// block named after that line; a line that is only "}" closes one.
func splitLines(tokens []caddyfile.Token) []cfLine {
	var lines []cfLine
	var stack [][]string
	for i := 0; i < len(tokens); {
		j := i + 1
		for j < len(tokens) && tokens[j].Line <= tokens[j-1].Line+tokens[j-1].NumLineBreaks() {
			j++
		}
		toks := tokens[i:j]
		i = j
		if len(toks) == 1 && isBrace(toks[0], "}") {
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		body := toks
		opens := isBrace(toks[len(toks)-1], "{")
		if opens {
			body = toks[:len(toks)-1]
		}
		if len(body) > 0 {
			lines = append(lines, cfLine{tokens: body, parents: slices.Clone(stack)})
		}
		if opens {
			texts := make([]string, len(body))
			for k, t := range body {
				texts[k] = t.Text
			}
			stack = append(stack, texts)
		}
	}
	return lines
}

func isBrace(t caddyfile.Token, b string) bool { return t.Text == b && !t.Quoted() }

// sortedKeys returns a map's keys in order, for stable output.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
