package openclawtest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestControlAPI: the control API lists and approves pairing requests and
// nodes, refuses bad bodies, and with a token refuses requests without it.
func TestControlAPI(t *testing.T) {
	s := Start(t, Options{})
	c := dialRaw(t, s)
	c.send(nodeConnect(newTestKey(t), c.nonce, nil))
	_, d, _ := c.refused()

	api := httptest.NewServer(s.Handler("ctl-token"))
	defer api.Close()
	do := func(method, path, body, token string) (int, string) {
		req, _ := http.NewRequest(method, api.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(res.Body)
		return res.StatusCode, b.String()
	}
	if code, body := do("GET", "/pairing", "", ""); code != 401 || !strings.Contains(body, `"code":"unauthorized"`) {
		t.Errorf("no token: %d %s", code, body)
	}
	if code, _ := do("GET", "/pairing", "", "wrong"); code != 401 {
		t.Errorf("wrong token: %d", code)
	}
	code, body := do("GET", "/pairing", "", "ctl-token")
	var pending struct{ Pending []PairingRequest }
	if code != 200 || json.Unmarshal([]byte(body), &pending) != nil || len(pending.Pending) != 1 || pending.Pending[0].RequestID != d.RequestID {
		t.Fatalf("pairing: %d %s", code, body)
	}
	if code, body := do("POST", "/pairing/approve", `{"request_id":"nope"}`, "ctl-token"); code != 404 {
		t.Errorf("approve of nothing: %d %s", code, body)
	}
	if code, body := do("POST", "/pairing/approve", `{"request_id":"`+d.RequestID+`","extra":1}`, "ctl-token"); code != 400 {
		t.Errorf("unknown field: %d %s", code, body)
	}
	if code, body := do("POST", "/pairing/approve", `{"request_id":"`+d.RequestID+`"}`, "ctl-token"); code != 200 || body != "{\"ok\":true}\n" {
		t.Errorf("approve: %d %s", code, body)
	}
	if code, body := do("GET", "/devices", "", "ctl-token"); code != 200 || !strings.Contains(body, d.DeviceID) || strings.Contains(body, "token") {
		t.Errorf("devices: %d %s", code, body)
	}
	if code, body := do("POST", "/invoke", `{"node_id":"`+d.DeviceID+`","command":"system.run"}`, "ctl-token"); code != 200 || !strings.Contains(body, "NOT_CONNECTED") {
		t.Errorf("invoke of a node not connected: %d %s", code, body)
	}
	if code, _ := do("POST", "/invoke", `{"command":"system.run"}`, "ctl-token"); code != 400 {
		t.Errorf("invoke without node_id: %d", code)
	}
	if code, _ := do("DELETE", "/nodes", "", "ctl-token"); code != 405 {
		t.Errorf("DELETE /nodes: %d", code)
	}
}
