package audit

import (
	"bytes"
	"context"
	"debug/buildinfo"
	_ "embed"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

//go:embed data/minimum_versions.json
var minimumVersionsJSON []byte

// versionData is data/minimum_versions.json.
type versionData struct {
	Version int            `json:"version"`
	AsOf    string         `json:"as_of"`
	About   string         `json:"about"`
	Go      []versionEntry `json:"go"`
	Caddy   []versionEntry `json:"caddy"`
}

// versionEntry is a release that carries security fixes.
type versionEntry struct {
	// Fixed are the first fixed version of each release line ("1.26.6",
	// "1.25.12").
	Fixed      []string `json:"fixed"`
	Date       string   `json:"date"`
	DateNote   string   `json:"date_note,omitempty"`
	Severity   Severity `json:"severity"`
	Summary    string   `json:"summary"`
	References []string `json:"references"`
}

// parseVersionData decodes and validates the minimum-versions data.
func parseVersionData(b []byte) (*versionData, error) {
	var d versionData
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("minimum versions: %w", err)
	}
	if d.Version != 1 {
		return nil, fmt.Errorf("minimum versions: version %d is not supported", d.Version)
	}
	if _, err := time.Parse(time.DateOnly, d.AsOf); err != nil {
		return nil, fmt.Errorf("minimum versions: as_of %q: want YYYY-MM-DD", d.AsOf)
	}
	for comp, entries := range map[string][]versionEntry{"go": d.Go, "caddy": d.Caddy} {
		for i, e := range entries {
			where := fmt.Sprintf("minimum versions: %s[%d]", comp, i)
			if len(e.Fixed) == 0 {
				return nil, fmt.Errorf("%s: no fixed versions", where)
			}
			for _, v := range e.Fixed {
				if _, ok := parseVersion(v); !ok || strings.Count(v, ".") != 2 {
					return nil, fmt.Errorf("%s: fixed version %q: want MAJOR.MINOR.PATCH", where, v)
				}
			}
			if _, err := time.Parse(time.DateOnly, e.Date); err != nil {
				return nil, fmt.Errorf("%s: date %q: want YYYY-MM-DD", where, e.Date)
			}
			if e.Severity.rank() < 0 {
				return nil, fmt.Errorf("%s: severity %q: want critical, warn or info", where, e.Severity)
			}
			if e.Summary == "" || len(e.References) == 0 {
				return nil, fmt.Errorf("%s: needs a summary and at least one reference", where)
			}
		}
	}
	return &d, nil
}

// semver is a release version; pre is set for pre-releases and
// pseudo-versions, which sort before the release they lead to.
type semver struct {
	n   [3]int
	pre bool
}

// parseVersion reads "1.26.8", "go1.26.8", "v2.11.9", "go1.26rc1" or
// "v2.11.10-0.20260101-abcdef".
func parseVersion(s string) (semver, bool) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "go"), "v")
	var v semver
	if i := strings.IndexAny(s, "-+ "); i >= 0 {
		v.pre = s[i] == '-'
		s = s[:i]
	}
	for _, tag := range []string{"rc", "beta", "alpha"} {
		if i := strings.Index(s, tag); i >= 0 {
			v.pre = true
			s = s[:i]
		}
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, false
		}
		v.n[i] = n
	}
	return v, true
}

func (v semver) line() [2]int { return [2]int{v.n[0], v.n[1]} }

func (v semver) compare(w semver) int {
	for i := range v.n {
		if c := v.n[i] - w.n[i]; c != 0 {
			return c
		}
	}
	switch {
	case v.pre && !w.pre:
		return -1
	case !v.pre && w.pre:
		return 1
	}
	return 0
}

func (v semver) String() string { return fmt.Sprintf("%d.%d.%d", v.n[0], v.n[1], v.n[2]) }

// missing returns the first fixed version v needs from e, or false when v
// has e's fixes: it is at or past the fix on its own line, or on a newer
// line than every fix listed.
func (e versionEntry) missing(v semver) (semver, bool) {
	var newest semver
	for _, s := range e.Fixed {
		f, _ := parseVersion(s)
		if f.line() == v.line() {
			return f, v.compare(f) < 0
		}
		if f.compare(newest) > 0 {
			newest = f
		}
	}
	return newest, v.compare(newest) < 0
}

// versionFinding judges version cur of component against entries.
func versionFinding(component, cur string, entries []versionEntry, asOf, remedy string) (*Finding, error) {
	v, ok := parseVersion(cur)
	if !ok {
		return nil, skip(fmt.Sprintf("cannot tell the %s version from %q", component, cur))
	}
	type fix struct {
		v    semver
		text string
	}
	var fixes []fix
	sev := SeverityInfo
	for _, e := range entries {
		want, miss := e.missing(v)
		if !miss {
			continue
		}
		if e.Severity.rank() < sev.rank() {
			sev = e.Severity
		}
		fixes = append(fixes, fix{want, fmt.Sprintf("%s (%s: %s)", want, e.Date, e.Summary)})
	}
	if len(fixes) == 0 {
		return nil, nil
	}
	slices.SortFunc(fixes, func(a, b fix) int { return a.v.compare(b.v) })
	texts := make([]string, len(fixes))
	for i, f := range fixes {
		texts[i] = f.text
	}
	return &Finding{Severity: sev,
		Finding: fmt.Sprintf("%s %s lacks security fixes released in %s [data as of %s]", component, cur, strings.Join(texts, "; "), asOf),
		Remedy:  fmt.Sprintf(remedy, fixes[len(fixes)-1].v)}, nil
}

// binaryInfo is what the runtime checks read about the audited binary.
type binaryInfo struct {
	what         string // "this program" or the external binary's path
	goVersion    string
	caddyVersion string
}

// binary reads the build information of the audited binary: the external
// caddy binary if one is given, else this program.
func (a *auditor) binary() (binaryInfo, error) {
	if p := a.opts.CaddyBinary; p != "" {
		bi, err := buildinfo.ReadFile(p)
		if err != nil {
			return binaryInfo{}, fmt.Errorf("reading the build information of %s: %w", p, err)
		}
		return binaryInfo{what: p, goVersion: bi.GoVersion, caddyVersion: depVersion(bi, caddy.ImportPath)}, nil
	}
	info := binaryInfo{what: "this program", goVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		info.caddyVersion = depVersion(bi, caddy.ImportPath)
	}
	return info, nil
}

// depVersion returns the version of module path in bi, following replaces.
func depVersion(bi *debug.BuildInfo, path string) string {
	if bi.Main.Path == path {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			if d.Replace != nil && d.Replace.Version != "" {
				return d.Replace.Version
			}
			return d.Version
		}
	}
	return ""
}

func (a *auditor) versionData() (*versionData, error) {
	data := a.opts.MinimumVersions
	if data == nil {
		data = minimumVersionsJSON
	}
	return parseVersionData(data)
}

func checkGoVersion(_ context.Context, a *auditor) ([]Finding, error) {
	d, err := a.versionData()
	if err != nil {
		return nil, err
	}
	bi, err := a.binary()
	if err != nil {
		return nil, err
	}
	f, err := versionFinding("Go (in "+bi.what+")", bi.goVersion, d.Go, d.AsOf, "rebuild with Go %s or later (clawguard: go build; Caddy: xcaddy build)")
	if f == nil || err != nil {
		return nil, err
	}
	return []Finding{*f}, nil
}

func checkCaddyVersion(_ context.Context, a *auditor) ([]Finding, error) {
	d, err := a.versionData()
	if err != nil {
		return nil, err
	}
	bi, err := a.binary()
	if err != nil {
		return nil, err
	}
	if bi.caddyVersion == "" || bi.caddyVersion == "(devel)" {
		return nil, skip("no Caddy version in the build information of " + bi.what)
	}
	f, err := versionFinding("Caddy (in "+bi.what+")", bi.caddyVersion, d.Caddy, d.AsOf, "upgrade to Caddy %s or later (go get github.com/caddyserver/caddy/v2@latest, or xcaddy build)")
	if f == nil || err != nil {
		return nil, err
	}
	return []Finding{*f}, nil
}
