package audit

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/caddymodule"
	"github.com/clawguard/clawguard/caddymodule/tailnet"
	"github.com/clawguard/clawguard/sandbox"
	"github.com/clawguard/clawguard/sidecar"
	"github.com/clawguard/clawguard/tsnet"
)

// TestViewsMatchRealFormats: the audit decodes the gate's, the tailnet
// app's, the sidecar's, the profiles' and the approvals file's JSON with its
// own tolerant types (it must read a file the real parser would refuse).
// Every key those types read must exist, at the same place, in the real
// type, so that a renamed option cannot make a check silently read nothing.
// Keys the audit looks for only to flag them (Docker settings the profile
// format has no field for, because they would undo isolation) must stay
// absent from the real type.
func TestViewsMatchRealFormats(t *testing.T) {
	for _, tc := range []struct {
		name      string
		view      any
		real      any
		flagsOnly []string // keys the real type must NOT have
	}{
		{"gate handler", gateConfig{}, caddymodule.Gate{}, nil},
		{"tailnet app", struct {
			StateDir string                `json:"state_dir"`
			Nodes    map[string]tailnetCfg `json:"nodes"`
		}{}, tailnet.App{}, nil},
		{"tailnet node", tailnetCfg{}, tsnet.NodeConfig{}, nil},
		{"sidecar.json", sidecarFile{}, sidecar.Config{}, nil},
		{"sandbox profile", profileView{}, sandbox.Profile{}, escapeKeys},
		{"approvals.json", approvalsConfig{}, approvals.Config{}, nil},
	} {
		view, real := jsonKeys(reflect.TypeOf(tc.view), ""), jsonKeys(reflect.TypeOf(tc.real), "")
		if len(view) == 0 {
			t.Errorf("%s: the audit's view has no JSON keys", tc.name)
		}
		for _, k := range tc.flagsOnly {
			if slices.Contains(real, k) {
				t.Errorf("%s: the audit flags %q as a setting the format does not have, but %T has it now", tc.name, k, tc.real)
			}
		}
		for _, k := range view {
			if !slices.Contains(real, k) {
				t.Errorf("%s: the audit reads %q, which %T does not have (real keys: %s)", tc.name, k, tc.real, strings.Join(real, " "))
			}
		}
	}
}

// jsonKeys lists the JSON key paths of t ("a", "a.b", "a.*.c" for a map's
// values), through pointers, slices, maps and embedded structs.
func jsonKeys(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	if t.Kind() == reflect.Map {
		return jsonKeys(t.Elem(), prefix+"*.")
	}
	if t.Kind() != reflect.Struct || t.PkgPath() == "time" || t.PkgPath() == "encoding/json" {
		return nil
	}
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case tag == "-":
			continue
		case f.Anonymous && tag == "":
			keys = append(keys, jsonKeys(f.Type, prefix)...)
			continue
		case !f.IsExported():
			continue
		case tag == "":
			tag = f.Name
		}
		keys = append(keys, prefix+tag)
		keys = append(keys, jsonKeys(f.Type, prefix+tag+".")...)
	}
	return keys
}
