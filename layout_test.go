package clawguard

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/clawguard/clawguard"

// layers places every package of the module: a package may import only
// packages of a lower layer (never its own, never a higher one), so every
// arrow points down. A new package must be placed here; docs/design.md
// explains the layers.
var layers = map[string]int{
	// 0: leaves, the standard library and outside modules only.
	"wire": 0, "statedir": 0, "httpsig/sfv": 0, "internal/procnet": 0,
	"internal/testport": 0, "internal/execagent": 0,
	// 1: the domain packages, Caddy-free.
	"vault": 1, "httpsig": 1, "authn": 1, "trail": 1, "approvals": 1,
	"sandbox": 1, "pairing": 1, "internal/testcaddy": 1, "internal/stack": 1,
	// 2: what builds on one of them.
	"internal/secretref": 2, "pairclient": 2, "sandbox/sandboxtest": 2, "openclaw": 2,
	// 3: the tailnet (node, listener, dialer, identity, policy, health).
	"tsnet": 3, "openclaw/openclawtest": 3,
	// 4: the sidecar, and tsnet's test tailnet.
	"sidecar": 4, "tsnet/tsnettest": 4,
	// 5: what serves an OpenClaw gateway with the sidecar.
	"nodehost": 5,
	// 5-6: Caddy glue and the security audit (which reads Caddyfiles).
	"caddymodule/tailnet": 5, "audit": 5,
	"caddymodule": 6,
	// 7: what registers the modules for xcaddy.
	"": 7,
	// 8: programs, benchmarks, end-to-end tests and deployment checks.
	"cmd/clawguard": 8, "cmd/caddy": 8, "cmd/clawguard-agent": 8, "internal/cmd/openclaw-double": 8,
	"bench/gate": 8, "bench/load": 8, "bench/sandbox": 8, "e2e": 8, "deploy": 8,
	"e2e/multihost": 8, "internal/cmd/tailnet-lab": 8,
}

// caddyFree are the packages that must not link Caddy at all, directly or
// through their dependencies: everything below caddymodule that runs on its
// own (the sidecar, the CLI's clients).
var caddyFree = []string{"sidecar", "approvals", "sandbox", "vault", "authn", "pairing", "tsnet", "trail",
	"wire", "statedir", "httpsig", "pairclient", "internal/secretref", "internal/execagent", "openclaw", "nodehost"}

type listedPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func goList(t *testing.T, args ...string) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Imports,Deps"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

// TestImportsPointDown: no package imports one of its own layer or above.
func TestImportsPointDown(t *testing.T) {
	for _, p := range goList(t, "./...") {
		name, _ := rel(p.ImportPath)
		layer, ok := layers[name]
		if !ok {
			t.Errorf("package %q has no layer: place it in layout_test.go and docs/design.md", name)
			continue
		}
		for _, imp := range p.Imports {
			dep, mine := rel(imp)
			if !mine {
				continue
			}
			if l, ok := layers[dep]; ok && l >= layer {
				t.Errorf("%q (layer %d) imports %q (layer %d): imports must point down", name, layer, dep, l)
			}
		}
	}
}

// TestCaddyFreePackages: the sidecar and the packages under caddymodule
// link no Caddy package.
func TestCaddyFreePackages(t *testing.T) {
	args := make([]string, len(caddyFree))
	for i, p := range caddyFree {
		args[i] = "./" + p
	}
	for _, p := range goList(t, args...) {
		for _, d := range p.Deps {
			if strings.HasPrefix(d, "github.com/caddyserver/") {
				t.Errorf("%s depends on %s", p.ImportPath, d)
				break
			}
		}
	}
}
