package openclaw

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseSystemRun(t *testing.T) {
	p, err := ParseSystemRun(json.RawMessage(`{"command":["/bin/ls","-l"],"rawCommand":"ls -l","cwd":"/tmp","env":{"A":"1"},"timeoutMs":5000,"approved":true,"approvalDecision":"allow-once","runId":"r1","sessionKey":"s","agentId":"main","systemRunPlan":{"argv":["/bin/ls","-l"],"cwd":null,"commandText":"ls -l","agentId":null,"sessionKey":null},"futureField":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Command) != 2 || *p.TimeoutMs != 5000 || !p.Approved || p.SystemRunPlan == nil || p.SystemRunPlan.Cwd != nil || p.Env["A"] != "1" {
		t.Errorf("parsed %+v", p)
	}
	for in, want := range map[string]string{
		``:                                    "paramsJSON required",
		`{}`:                                  "command required",
		`{"command":[]}`:                      "command required",
		`{"command":[""]}`:                    "command[0] is empty",
		`{"command":"ls"}`:                    "params:",
		`{"command":["ls","a\u0000b"]}`:       "command[1] contains a NUL byte",
		`{"command":["ls"],"approved":"yes"}`: "params:",
		`{"command":["ls"],"env":{"A":1}}`:    "params:",
		`[1]`:                                 "params:",
	} {
		_, err := ParseSystemRun(json.RawMessage(in))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "system.run: ") {
			t.Errorf("ParseSystemRun(%s) = %v, want an error containing %q", in, err, want)
		}
	}
}

func TestParseSystemWhich(t *testing.T) {
	if p, err := ParseSystemWhich(json.RawMessage(`{"bins":["git","sh"]}`)); err != nil || len(p.Bins) != 2 {
		t.Errorf("%+v %v", p, err)
	}
	if _, err := ParseSystemWhich(json.RawMessage(`{}`)); err == nil || !strings.Contains(err.Error(), "bins required") {
		t.Errorf("no bins: %v", err)
	}
	if _, err := ParseSystemWhich(json.RawMessage(`{"bins":"git"}`)); err == nil {
		t.Error("a string for bins accepted")
	}
}

// TestPlanShape: the prepared plan carries what both older (rawCommand,
// cmdText) and newer (commandText) gateways read, with null for what is
// absent.
func TestPlanShape(t *testing.T) {
	res := NewPlan(SystemRunPrepareParams{Command: []string{"/bin/sh", "-lc", "ls"}, RawCommand: " ls ", AgentID: "main"},
		[]string{"/bin/sh", "-lc", "ls"}, "")
	b, _ := json.Marshal(res)
	want := `{"cmdText":"ls","plan":{"argv":["/bin/sh","-lc","ls"],"cwd":null,"commandText":"ls","rawCommand":"ls","agentId":"main","sessionKey":null}}`
	if string(b) != want {
		t.Errorf("plan:\n got %s\nwant %s", b, want)
	}
}

func TestDeniedAndFinished(t *testing.T) {
	p := SystemRunParams{Command: []string{"rm", "-rf", "/"}, SessionKey: "agent:main", RunID: "run-1"}
	r := Denied(p, DenyAllowlistMiss, "allowlist miss")
	if r.OK || r.Error.Code != CodeUnavailable || r.Error.Message != "SYSTEM_RUN_DENIED: allowlist miss" || !IsDenied(r.Error) {
		t.Errorf("denied: %+v", r.Error)
	}
	ev := r.Events[0].Payload.(ExecEventPayload)
	if r.Events[0].Name != "exec.denied" || ev.Reason != DenyAllowlistMiss || ev.Host != "node" || ev.RunID != "run-1" || ev.Command != "rm -rf /" {
		t.Errorf("exec.denied: %+v", ev)
	}
	code := 0
	r = Finished(SystemRunParams{Command: []string{"yes"}}, SystemRunResult{ExitCode: &code, Success: true, Stdout: strings.Repeat("y\n", 20000)})
	ev = r.Events[0].Payload.(ExecEventPayload)
	if !r.OK || ev.SessionKey != "node" || len(ev.RunID) != 32 || *ev.ExitCode != 0 || !*ev.Success ||
		!strings.HasPrefix(ev.Output, "... (truncated) ") || len(ev.Output) != execEventTail+len("... (truncated) ") {
		t.Errorf("exec.finished: %+v (output %d bytes)", ev, len(ev.Output))
	}
	if IsDenied(&Error{Code: CodeUnavailable, Message: "command not supported"}) {
		t.Error("IsDenied of another error")
	}
}
