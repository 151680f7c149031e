package nodehost

import (
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/clawguard/clawguard/openclaw"
	"github.com/clawguard/clawguard/sidecar"
)

// recorder is a Sidecar that runs nothing and records what it was asked;
// the real exec path is tested against real sidecars in cmd/clawguard.
type recorder struct {
	target string
	reqs   []sidecar.ExecRequest
}

func (r *recorder) Exec(_ context.Context, _ sidecar.Identity, req sidecar.ExecRequest, _, _ io.Writer, _ func(string)) (sidecar.ExecResponse, error) {
	r.reqs = append(r.reqs, req)
	return sidecar.ExecResponse{}, nil
}
func (r *recorder) DefaultTarget(string) string { return r.target }
func (r *recorder) Which(context.Context, string, string, string) (string, error) {
	return "", io.EOF
}

func invoke(t *testing.T, h *Handler, command string, params any) openclaw.Result {
	t.Helper()
	raw, _ := json.Marshal(params)
	return h.Invoke(context.Background(), openclaw.Invoke{ID: "i1", Command: command, Params: raw})
}

// TestPlanIsWhatRuns: prepare answers with the cwd the target really gets,
// and a system.run that strays from its plan is refused before the sidecar
// sees it.
func TestPlanIsWhatRuns(t *testing.T) {
	sc := &recorder{target: sidecar.TargetSandbox}
	h := &Handler{Sidecar: sc, Gateway: "gw"}
	res := invoke(t, h, openclaw.CommandSystemRunPrepare, openclaw.SystemRunPrepareParams{Command: []string{"ls"}, Cwd: "/home/me"})
	plan, ok := res.Payload.(openclaw.SystemRunPrepareResult)
	if !res.OK || !ok || plan.Plan.Cwd == nil || *plan.Plan.Cwd != "/workspace" {
		t.Fatalf("prepare in a sandbox: %+v", res)
	}
	for name, p := range map[string]openclaw.SystemRunParams{
		"other argv": {Command: []string{"rm", "-rf", "/workspace"}, SystemRunPlan: &plan.Plan},
		"other cwd":  {Command: []string{"ls"}, Cwd: "/workspace/sub", SystemRunPlan: &plan.Plan},
	} {
		if r := invoke(t, h, openclaw.CommandSystemRun, p); r.OK || !openclaw.IsDenied(r.Error) {
			t.Errorf("%s: %+v, want SYSTEM_RUN_DENIED", name, r)
		}
	}
	if len(sc.reqs) != 0 {
		t.Fatalf("a run off its plan reached the sidecar: %+v", sc.reqs)
	}
	if r := invoke(t, h, openclaw.CommandSystemRun, openclaw.SystemRunParams{Command: []string{"ls"}, Cwd: "/home/me", SystemRunPlan: &plan.Plan}); !r.OK {
		t.Fatalf("the planned run: %+v", r)
	}
	if len(sc.reqs) != 1 || sc.reqs[0].Cwd != "/workspace" || sc.reqs[0].Agent != DefaultAgent || sc.reqs[0].Target != sidecar.TargetSandbox {
		t.Fatalf("what the sidecar got: %+v", sc.reqs)
	}
}

// TestSessionName keeps OpenClaw's session keys the sidecar accepts and
// maps the others to a stable digest.
func TestSessionName(t *testing.T) {
	if got := sessionName("agent:main:main"); got != "agent:main:main" {
		t.Errorf("valid key: %q", got)
	}
	a, b := sessionName("agent:main:telegram/dm 42"), sessionName("agent:main:telegram/dm 43")
	if a == b || a != sessionName("agent:main:telegram/dm 42") || len(a) > 128 {
		t.Errorf("digests: %q %q", a, b)
	}
}
