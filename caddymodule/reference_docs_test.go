package caddymodule

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/clawguard/clawguard/internal/testcaddy"
)

// The Caddyfile reference pages (docs/reference/*.md) are kept true here:
//
//   - every ```caddyfile block under a page's "## Examples" is a whole
//     Caddyfile that the real adapter accepts, with its secrets written as
//     placeholders;
//   - the names in a page's syntax block (the code block right under
//     "## Syntax") are exactly the subdirectives its parser accepts. The
//     accepted names are read from the parsers' source (the string labels of
//     every `switch` on a dispenser's Val()), and each documented and each
//     accepted name is also tried in a minimal Caddyfile, which must not be
//     refused as unknown. A parser with such a switch that no page claims
//     fails the test too, so a new subdirective or a new block cannot go
//     undocumented.

const refDir = "../docs/reference"

// refBlock is one block of a syntax block: the parser that reads it and a
// minimal Caddyfile with one %s line inside the block, to try names in.
type refBlock struct {
	parser   string // "<package>.[<Recv>.]<Func>", as parserSwitchLabels names it
	template string
}

// refPages maps each page to its syntax block's blocks, by path: the names
// of the nested blocks from the outermost, joined by "/" (the global
// options' anonymous outer "{" does not count). Names at the top level are
// the directive or option itself and are not looked up.
var refPages = map[string]map[string]refBlock{
	"clawguard.md": {
		"clawguard": {"caddymodule.Gate.UnmarshalCaddyfile",
			"http://:18789 {\n\tclawguard {\n\t\t%s\n\t}\n\trespond ok\n}\n"},
		"clawguard/trusted_proxy": {"caddymodule.Gate.parseTrustedProxy",
			"http://:18789 {\n\tclawguard {\n\t\ttrusted_proxy 10.0.0.0/8 {\n\t\t\tuser_header X-User\n\t\t\t%s\n\t\t}\n\t}\n\trespond ok\n}\n"},
		"clawguard/hmac": {"caddymodule.Gate.parseHMAC",
			"http://:18789 {\n\tclawguard {\n\t\thmac ci {env.REFDOC_HMAC} {\n\t\t\t%s\n\t\t}\n\t}\n\trespond ok\n}\n"},
		"clawguard/rate_limit": {"caddymodule.Gate.parseRateLimit",
			"http://:18789 {\n\tclawguard {\n\t\trate_limit {\n\t\t\t%s\n\t\t}\n\t}\n\trespond ok\n}\n"},
		"clawguard/pairing": {"caddymodule.Gate.parsePairing",
			"http://:18789 {\n\tclawguard {\n\t\tpairing {\n\t\t\t%s\n\t\t}\n\t}\n\trespond ok\n}\n"},
		"clawguard/pairing/approvals": {"caddymodule.parseApprovals",
			"http://:18789 {\n\tclawguard {\n\t\tpairing {\n\t\t\tapprovals {\n\t\t\t\t%s\n\t\t\t}\n\t\t}\n\t}\n\trespond ok\n}\n"},
		"clawguard/tailnet_identity": {"caddymodule.Gate.parseTailnetIdentity",
			"http://:18789 {\n\tclawguard {\n\t\ttailnet_identity {\n\t\t\tallow_users alice\n\t\t\t%s\n\t\t}\n\t}\n\trespond ok\n}\n"},
	},
	"clawguard-global.md": {
		"clawguard": {"caddymodule.parseGlobalOption",
			"{\n\tclawguard {\n\t\t%s\n\t}\n}\n"},
	},
	"tailnet-global.md": {
		"tailnet": {"tailnet.parseGlobalOption",
			"{\n\ttailnet {\n\t\t%s\n\t}\n}\n"},
		"tailnet/node": {"tailnet.parseNode",
			"{\n\ttailnet {\n\t\tnode gate {\n\t\t\t%s\n\t\t}\n\t}\n}\n"},
		"tailnet/peer": {"tailnet.parsePeer",
			"{\n\ttailnet {\n\t\tpeer node1 node1:18791 {\n\t\t\t%s\n\t\t}\n\t}\n}\n"},
	},
	"clawguard_signed.md": {
		"transport": {"caddymodule.SignedTransport.UnmarshalCaddyfile",
			"http://:18789 {\n\tclawguard {\n\t\ttoken {env.REFDOC_TOKEN}\n\t}\n\treverse_proxy 127.0.0.1:1 {\n\t\ttransport clawguard_signed {\n\t\t\tidentity_key gate1 {env.REFDOC_KEY}\n\t\t\t%s\n\t\t}\n\t}\n}\n"},
	},
	"clawguard_tailnet.md": {
		// clawguard_tailnet hands its block to clawguard_signed's parser.
		"transport": {"caddymodule.SignedTransport.UnmarshalCaddyfile",
			"http://:18789 {\n\tclawguard {\n\t\ttoken {env.REFDOC_TOKEN}\n\t}\n\treverse_proxy 127.0.0.1:1 {\n\t\ttransport clawguard_tailnet gate {\n\t\t\tidentity_key gate1 {env.REFDOC_KEY}\n\t\t\t%s\n\t\t}\n\t}\n}\n"},
	},
}

// parserDirs are the directories (relative to this package) whose parsers
// the pages document.
var parserDirs = []string{".", "tailnet"}

func TestReferenceDocs(t *testing.T) {
	pages := readRefPages(t)
	accepted := parserSwitchLabels(t)
	for _, fn := range slices.Sorted(maps.Keys(accepted)) {
		t.Logf("%s accepts %v", fn, accepted[fn])
	}

	t.Run("index", func(t *testing.T) {
		index, ok := pages["index.md"]
		if !ok {
			t.Fatal("docs/reference/index.md is missing")
		}
		for name := range refPages {
			if _, ok := pages[name]; !ok {
				t.Errorf("docs/reference/%s is missing", name)
			}
			if !strings.Contains(index.text, "]("+name+")") {
				t.Errorf("index.md does not link %s", name)
			}
		}
		for name := range pages {
			if _, ok := refPages[name]; !ok && name != "index.md" {
				t.Errorf("docs/reference/%s: a page this test does not know; add it to refPages", name)
			}
		}
	})

	t.Run("every parser is documented", func(t *testing.T) {
		claimed := map[string]bool{}
		for _, blocks := range refPages {
			for _, b := range blocks {
				claimed[b.parser] = true
			}
		}
		for fn, labels := range accepted {
			if !claimed[fn] {
				t.Errorf("%s accepts subdirectives %v, but no docs/reference page's syntax block documents it (add the block to a page and to refPages)", fn, labels)
			}
		}
		for fn := range claimed {
			if _, ok := accepted[fn]; !ok {
				t.Errorf("refPages names parser %s, which has no switch over subdirective names in %v", fn, parserDirs)
			}
		}
	})

	for _, name := range slices.Sorted(maps.Keys(refPages)) {
		page, ok := pages[name]
		if !ok {
			continue // reported by "index"
		}
		blocks := refPages[name]
		t.Run(name, func(t *testing.T) {
			t.Run("shape", func(t *testing.T) { checkShape(t, page) })
			t.Run("syntax", func(t *testing.T) { checkSyntax(t, page, blocks, accepted) })
			t.Run("examples", func(t *testing.T) { checkExamples(t, page) })
		})
	}
}

type refPage struct {
	name, text string
	sections   map[string]string // "## X" heading → its text, up to the next "## "
}

func readRefPages(t *testing.T) map[string]*refPage {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(refDir, "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no pages in %s: %v", refDir, err)
	}
	pages := map[string]*refPage{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p := &refPage{name: filepath.Base(f), text: string(b), sections: map[string]string{}}
		var cur string
		var body strings.Builder
		inFence := false
		flush := func() {
			if cur != "" {
				p.sections[cur] = body.String()
			}
			body.Reset()
		}
		for line := range strings.Lines(p.text) {
			if strings.HasPrefix(line, "```") {
				inFence = !inFence
			}
			if !inFence && strings.HasPrefix(line, "## ") {
				flush()
				cur = strings.TrimSpace(strings.TrimPrefix(line, "## "))
				continue
			}
			body.WriteString(line)
		}
		flush()
		pages[p.name] = p
	}
	return pages
}

// fence is one fenced code block.
type fence struct {
	lang, body string
	line       int // of the opening fence, within the section
}

func fences(section string) []fence {
	var out []fence
	var cur *fence
	var body strings.Builder
	n := 0
	for line := range strings.Lines(section) {
		n++
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = &fence{lang: strings.TrimPrefix(trimmed, "```"), line: n}
			body.Reset()
		case cur != nil && trimmed == "```":
			cur.body = body.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line)
		}
	}
	return out
}

// syntaxBlock returns the page's syntax block: the code blocks of
// "## Syntax" before its first "### " subsection.
func syntaxBlock(p *refPage) string {
	s := p.sections["Syntax"]
	if i := strings.Index(s, "\n### "); i >= 0 {
		s = s[:i]
	}
	var b strings.Builder
	for _, f := range fences(s) {
		b.WriteString(f.body)
	}
	return b.String()
}

var subdirectiveName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// syntaxNames reads the names a syntax block documents, by block path (see
// refPages). Placeholder lines (<…>), "..." and comments are not names.
func syntaxNames(block string) (map[string][]string, error) {
	names := map[string][]string{}
	var stack []string
	path := func() string {
		var parts []string
		for _, s := range stack {
			if s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, "/")
	}
	sc := bufio.NewScanner(strings.NewReader(block))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "<") || strings.HasPrefix(line, "..."):
			continue
		case line == "}":
			if len(stack) == 0 {
				return nil, fmt.Errorf("unbalanced }")
			}
			stack = stack[:len(stack)-1]
			continue
		case line == "{":
			stack = append(stack, "")
			continue
		}
		name := strings.Fields(line)[0]
		if !subdirectiveName.MatchString(name) {
			return nil, fmt.Errorf("line %q does not start with a subdirective name", line)
		}
		if p := path(); p != "" {
			names[p] = append(names[p], name)
		}
		if strings.HasSuffix(line, "{") {
			stack = append(stack, name)
		}
	}
	if len(stack) != 0 {
		return nil, fmt.Errorf("unclosed block %v", stack)
	}
	return names, nil
}

// parserSwitchLabels reads the parsers' source and returns, by function,
// the string labels of every switch over a subdirective name: a switch
// whose tag is a call of a Val method (d.Val()) or a variable assigned from
// one (opt := d.Val()).
func parserSwitchLabels(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	for _, dir := range parserDirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				if labels := valSwitchLabels(fn.Body); len(labels) > 0 {
					key := f.Name.Name + "." + funcName(fn)
					out[key] = append(out[key], labels...)
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("found no subdirective switches in %v: the scan is broken", parserDirs)
	}
	return out
}

func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	typ := fn.Recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}

func isValCall(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) != 0 {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Val"
}

func valSwitchLabels(body *ast.BlockStmt) []string {
	fromVal := map[string]bool{} // variables assigned from d.Val()
	ast.Inspect(body, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok && len(as.Lhs) == len(as.Rhs) {
			for i, rhs := range as.Rhs {
				if id, ok := as.Lhs[i].(*ast.Ident); ok && isValCall(rhs) {
					fromVal[id.Name] = true
				}
			}
		}
		return true
	})
	var labels []string
	ast.Inspect(body, func(n ast.Node) bool {
		sw, ok := n.(*ast.SwitchStmt)
		if !ok || sw.Tag == nil {
			return true
		}
		id, isIdent := sw.Tag.(*ast.Ident)
		if !isValCall(sw.Tag) && !(isIdent && fromVal[id.Name]) {
			return true
		}
		for _, stmt := range sw.Body.List {
			for _, e := range stmt.(*ast.CaseClause).List {
				if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil {
						labels = append(labels, s)
					}
				}
			}
		}
		return true
	})
	return labels
}

func checkShape(t *testing.T, p *refPage) {
	if !strings.HasPrefix(p.text, "# ") {
		t.Error("does not start with a # title")
	}
	syntax := strings.Index(p.text, "\n## Syntax\n")
	examples := strings.Index(p.text, "\n## Examples\n")
	if syntax < 0 || examples < 0 || examples < syntax {
		t.Fatal("want a ## Syntax section, then a ## Examples section")
	}
	if len(fences(p.sections["Syntax"])) == 0 {
		t.Error("## Syntax has no code block")
	}
}

func checkSyntax(t *testing.T, p *refPage, blocks map[string]refBlock, accepted map[string][]string) {
	documented, err := syntaxNames(syntaxBlock(p))
	if err != nil {
		t.Fatalf("syntax block: %v", err)
	}
	for path := range documented {
		if _, ok := blocks[path]; !ok {
			t.Errorf("syntax block has a block %q that refPages does not map to a parser", path)
		}
	}
	afterSyntax := p.text[strings.Index(p.text, "\n## Syntax\n"):]
	for _, path := range slices.Sorted(maps.Keys(blocks)) {
		b := blocks[path]
		doc, acc := documented[path], accepted[b.parser]
		for _, name := range acc {
			if !slices.Contains(doc, name) {
				t.Errorf("%s: %s accepts %q, which the syntax block does not show", path, b.parser, name)
			}
		}
		for _, name := range doc {
			if !slices.Contains(acc, name) {
				t.Errorf("%s: the syntax block shows %q, which %s does not accept (it accepts %v)", path, name, b.parser, acc)
			}
			if !strings.Contains(afterSyntax, "### "+name+"\n") && !strings.Contains(afterSyntax, "**"+name+"**") {
				t.Errorf("%s: %q has no ### %s heading or **%s** entry describing it", path, name, name, name)
			}
		}

		// Try the names for real. The error the adapter gives a name it
		// does not know is learnt from a made-up one; a real name, with
		// one dummy argument (some parsers read the argument before the
		// name), may fail on that argument but must not get that error.
		const bogus = "zzbogus"
		_, err := testcaddy.Adapt(fmt.Sprintf(b.template, bogus+" 1"))
		if err == nil || !strings.Contains(err.Error(), bogus) ||
			!(strings.Contains(err.Error(), "unknown") || strings.Contains(err.Error(), "unrecognized")) {
			t.Errorf("%s: a made-up subdirective gets error %v, not an unknown-option error; fix the template", path, err)
			continue
		}
		unknown := err.Error()
		for _, name := range slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(doc), acc...)))) {
			_, err := testcaddy.Adapt(fmt.Sprintf(b.template, name+" 1"))
			if err != nil && err.Error() == strings.ReplaceAll(unknown, bogus, name) {
				t.Errorf("%s: the adapter refuses %q as unknown: %v", path, name, err)
			}
		}
	}
}

// secretArgs are the options whose arguments, from the given one on, are
// secrets: examples must write them as placeholders.
var secretArgs = map[string]int{"token": 1, "hmac": 2, "identity_key": 2, "auth_key": 1}

func checkExamples(t *testing.T, p *refPage) {
	examples := p.sections["Examples"]
	if !strings.Contains(examples, "whole Caddyfile") {
		t.Error("## Examples does not say that its examples are whole Caddyfiles")
	}
	n := 0
	for _, f := range fences(examples) {
		if f.lang != "caddyfile" {
			continue
		}
		n++
		if _, err := testcaddy.Adapt(f.body); err != nil {
			t.Errorf("example %d (line %d of ## Examples) does not adapt: %v\n%s", n, f.line, err, f.body)
		}
		for line := range strings.Lines(f.body) {
			fields := strings.Fields(line)
			if len(fields) == 0 {
				continue
			}
			from, ok := secretArgs[fields[0]]
			if !ok {
				continue
			}
			for _, arg := range fields[min(from, len(fields)):] {
				if arg != "{" && !strings.HasPrefix(arg, "{") {
					t.Errorf("example %d: %s has a literal secret %q; write it as {env.NAME} or {vault.NAME}", n, fields[0], arg)
				}
			}
		}
	}
	if n == 0 {
		t.Error("## Examples has no ```caddyfile block")
	}
}
