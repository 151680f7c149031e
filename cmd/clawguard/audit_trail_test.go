package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawguard/clawguard/trail"
)

func TestAuditVerifyTrailCLI(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	r := runCLI(nil, nil, "audit", "verify-trail", "--state-dir", state)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "OK: 0 records") {
		t.Fatalf("empty trail: %q", r.stdout)
	}
	tr, err := trail.Open(trail.Dir(state), trail.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"user:ann", "device:ab", "local"} {
		if _, err := tr.Append(trail.KindApproval, who, map[string]string{"decision": "deny"}); err != nil {
			t.Fatal(err)
		}
	}
	r = runCLI(nil, nil, "audit", "verify-trail", "--state-dir", state)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "OK: 3 records in 1 file(s)") || !strings.Contains(r.stdout, "last seq 3") {
		t.Fatalf("%q", r.stdout)
	}

	// Change one identity on line 2.
	path := filepath.Join(trail.Dir(state), "trail-000001.jsonl")
	b, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(b, []byte("device:ab"), []byte("device:zz"), 1), 0o600)
	r = runCLI(nil, nil, "audit", "verify-trail", "--state-dir", state)
	wantCode(t, r, 1)
	if !strings.Contains(r.stdout, "trail-000001.jsonl line 2 (seq 2)") || !strings.Contains(r.stdout, "edited") {
		t.Fatalf("%q", r.stdout)
	}
	r = runCLI(nil, nil, "audit", "verify-trail", "--dir", trail.Dir(state), "--json")
	wantCode(t, r, 1)
	var rep trail.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Break == nil || rep.Break.Line != 2 || rep.Break.Seq != 2 || rep.Records != 1 {
		t.Fatalf("%+v", rep)
	}
}

func TestAuditCommandShape(t *testing.T) {
	wantCode(t, runCLI(nil, nil, "audit", "--help"), 0)
	wantCode(t, runCLI(nil, nil, "audit", "--no-such-flag"), 2, "no-such-flag")
	wantCode(t, runCLI(nil, nil, "audit", "verify-trail", "extra"), 2, "unexpected argument")
}
