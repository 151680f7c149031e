package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/clawguard/clawguard/wire"
)

// refusal is a non-200 answer of a clawguard JSON API (the gate's admin API,
// the sidecar's): its code and message, or for an answer that is not
// clawguard's JSON error, "http_error" and the body's text.
type refusal struct {
	status    int
	code, msg string
}

func (e *refusal) Error() string { return fmt.Sprintf("%s (%d %s)", e.msg, e.status, e.code) }

// unreachableError is a request that got no answer; callers say where to look.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// maxAnswerBytes bounds what the CLI reads of an answer.
const maxAnswerBytes = 64 << 20

// callJSON sends method url with body as JSON (none when nil), prepare
// adding headers (or a signature) last, and decodes a 200 answer into out.
// Other answers are a *refusal, no answer an *unreachableError.
func callJSON(ctx context.Context, client *http.Client, method, url string, body, out any, prepare func(*http.Request) error) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := prepare(req); err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return &unreachableError{err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, url, err)
	}
	if resp.StatusCode != http.StatusOK {
		r := &refusal{status: resp.StatusCode}
		var eb wire.ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Code != "" {
			r.code, r.msg = eb.Code, eb.Error
		} else {
			r.code, r.msg = "http_error", strings.TrimSpace(string(data))
		}
		return r
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: unexpected answer (not a clawguard API?): %w", method, url, err)
	}
	return nil
}
