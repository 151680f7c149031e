package openclaw

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseFrameRefusals(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{`not json`, "not a JSON object"},
		{`[]`, "not a JSON object"},
		{`{}`, `"type" missing`},
		{`{"type":7}`, `"type" is not a string`},
		{`{"type":null}`, `"type" is not a string`},
		{`{"type":"req","method":"m"}`, `"id" missing`},
		{`{"type":"req","id":"","method":"m"}`, `"id" is empty`},
		{`{"type":"req","id":"1"}`, `"method" missing`},
		{`{"type":"res","id":"1"}`, `"ok" missing`},
		{`{"type":"res","id":"1","ok":"yes"}`, `"ok" is not a boolean`},
		{`{"type":"res","id":"1","ok":null}`, `"ok" is not a boolean`},
		{`{"type":"res","id":"1","ok":false,"error":"boom"}`, `"error" is not an object`},
		{`{"type":"res","id":"1","ok":false,"error":{"message":"m"}}`, `"error.code" missing`},
		{`{"type":"res","id":"1","ok":false,"error":{"code":"C","message":"m","retryAfterMs":-1}}`, `"error.retryAfterMs" is not a non-negative integer`},
		{`{"type":"event"}`, `"event" missing`},
		{`{"type":"event","event":1}`, `"event" is not a string`},
		{`{"type":"event","event":"tick","seq":-1}`, `"seq" is not a non-negative integer`},
		{`{"type":"event","event":"tick","seq":1.5}`, `"seq" is not a non-negative integer`},
		{`{"type":"event","event":"tick","seq":"1"}`, `"seq" is not a non-negative integer`},
		{`{"type":"cancel"}`, `"id" missing`},
	} {
		_, err := ParseFrame([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseFrame(%s) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestParseFrameAccepts(t *testing.T) {
	seq := int64(9)
	for _, tc := range []struct {
		in   string
		want Frame
	}{
		{`{"type":"req","id":"1","method":"node.event","params":{"a":1}}`,
			Frame{Type: TypeRequest, ID: "1", Method: "node.event", Params: json.RawMessage(`{"a":1}`)}},
		{`{"type":"res","id":"1","ok":true,"payload":null}`, Frame{Type: TypeResponse, ID: "1", OK: true}},
		{`{"type":"res","id":"1","ok":false}`, Frame{Type: TypeResponse, ID: "1"}},
		{`{"type":"event","event":"tick","payload":{"ts":1},"seq":9,"stateVersion":{"presence":1,"health":2}}`,
			Frame{Type: TypeEvent, Event: "tick", Payload: json.RawMessage(`{"ts":1}`), Seq: &seq}},
		{`{"type":"cancel","id":"7"}`, Frame{Type: TypeCancel, ID: "7"}},
		{`{"type":"from-the-future","x":1}`, Frame{Type: "from-the-future"}},
	} {
		got, err := ParseFrame([]byte(tc.in))
		if err != nil {
			t.Errorf("ParseFrame(%s): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseFrame(%s) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// FuzzFrame: no input panics the frame parser or the invoke parser behind
// it, and a frame it accepts (of a known type) writes and parses back to
// the same frame.
func FuzzFrame(f *testing.F) {
	files, _ := filepath.Glob("testdata/frames/*.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"type":"event","event":"node.invoke.request","payload":{"id":"1","nodeId":"n","command":"system.run","paramsJSON":"{\"command\":[\"ls\"]}","timeoutMs":5}}`,
		`{"type":"res","id":"1","ok":false,"error":{"code":"NOT_PAIRED","message":"pairing required","details":{"code":"PAIRING_REQUIRED","requestId":"r"},"retryAfterMs":3}}`,
		`{"type":"event","event":"tick","seq":18446744073709551616}`,
		`{"type":"req","id":"\u0000","method":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := ParseFrame(data)
		if err != nil {
			return
		}
		if fr.Event == EventInvokeRequest {
			if inv, err := parseInvoke(fr.Payload); err == nil && (inv.ID == "" || inv.Params != nil && !json.Valid(inv.Params)) {
				t.Fatalf("parseInvoke accepted %s as %+v", fr.Payload, inv)
			}
		}
		switch fr.Type {
		case TypeRequest, TypeResponse, TypeEvent, TypeCancel:
		default:
			return
		}
		out, err := fr.Encode()
		if err != nil {
			t.Fatalf("accepted frame does not write: %v", err)
		}
		back, err := ParseFrame(out)
		if err != nil {
			t.Fatalf("written frame %s does not parse: %v", out, err)
		}
		if !equalFrames(fr, back) {
			t.Fatalf("round trip changed the frame:\n%+v\n%+v", fr, back)
		}
	})
}

// equalFrames compares frames, their raw JSON by value.
func equalFrames(a, b Frame) bool {
	raw := func(x json.RawMessage) string {
		var v any
		if x == nil || json.Unmarshal(x, &v) != nil {
			return string(x)
		}
		return fmt.Sprintf("%#v", v)
	}
	if raw(a.Params) != raw(b.Params) || raw(a.Payload) != raw(b.Payload) {
		return false
	}
	if (a.Error == nil) != (b.Error == nil) || a.Error != nil && (a.Error.Code != b.Error.Code ||
		a.Error.Message != b.Error.Message || raw(a.Error.Details) != raw(b.Error.Details)) {
		return false
	}
	a.Params, a.Payload, a.Error, b.Params, b.Payload, b.Error = nil, nil, nil, nil, nil, nil
	return reflect.DeepEqual(a, b)
}

// TestRecordedFrames: the example frames of OpenClaw's protocol docs parse
// and decode into the node's types; the connect request with unknown
// fields refused, as OpenClaw's closed schema would.
func TestRecordedFrames(t *testing.T) {
	read := func(name string) Frame {
		b, err := os.ReadFile(filepath.Join("testdata/frames", name))
		if err != nil {
			t.Fatal(err)
		}
		f, err := ParseFrame(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return f
	}
	strict := func(raw json.RawMessage, v any) {
		t.Helper()
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Fatal(err)
		}
	}

	var ch Challenge
	f := read("connect-challenge.json")
	strict(f.Payload, &ch)
	if f.Event != EventChallenge || ch.TS != 1737264000000 {
		t.Errorf("challenge: %+v %+v", f, ch)
	}

	var p ConnectParams
	f = read("connect-node.json")
	strict(f.Params, &p)
	if f.Method != MethodConnect || p.Role != RoleNode || p.Client.Mode != ClientMode || p.Device == nil ||
		p.Device.SignedAt != 1737264000000 || !p.Permissions["camera.capture"] || p.UserAgent == "" {
		t.Errorf("connect: %+v", p)
	}

	f = read("hello-ok.json")
	h, err := parseHello(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if h.Policy.MaxPayload != 26214400 || h.Policy.TickIntervalMs != 15000 || h.Protocol != 4 {
		t.Errorf("hello-ok: %+v", h)
	}

	b, err := os.ReadFile("testdata/frames/node-event-presence-alive.params.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev NodeEventParams
	strict(b, &ev)
	if ev.Event != "node.presence.alive" || ev.PayloadJSON == nil || !json.Valid([]byte(*ev.PayloadJSON)) {
		t.Errorf("node.event: %+v", ev)
	}
}
