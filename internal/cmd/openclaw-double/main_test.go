package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRun: the program serves the double and its control API on the
// addresses it prints, takes secrets from the environment only, and
// refuses an open control API without a token.
func TestRun(t *testing.T) {
	env := map[string]string{"OPENCLAW_GATEWAY_TOKEN": "s3cret"}
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-control", "127.0.0.1:0", "-tls"},
			func(k string) string { return env[k] }, w, io.Discard)
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var ready map[string]string
	if err := json.Unmarshal([]byte(line), &ready); err != nil || !strings.HasPrefix(ready["gateway"], "wss://127.0.0.1:") || len(ready["fingerprint"]) != 64 {
		t.Fatalf("ready line %q: %v", line, err)
	}
	res, err := http.Get(ready["control"] + "/nodes")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "{\"nodes\":[]}\n" {
		t.Errorf("GET /nodes: %d %s", res.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}

	for _, args := range [][]string{
		{"-control", "0.0.0.0:0"},
		{"-listen", "127.0.0.1:0", "s3cret"},
		{"-tick", "soon"},
	} {
		if err := run(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard); err == nil {
			t.Errorf("run %q: no error", args)
		}
	}
}
