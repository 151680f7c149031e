package openclaw

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Handler runs the gateway's invokes. The ctx of Invoke ends at the
// invoke's timeout (cause ErrInvokeTimeout), on the gateway's
// node.invoke.cancel (cause ErrInvokeCanceled) and when Node.Run returns;
// context.Cause tells them apart. Invoke is called from its own goroutine,
// once per execution: a duplicate of an invoke (same idempotency key) gets
// the stored Result without a second call.
type Handler interface {
	Invoke(ctx context.Context, inv Invoke) Result
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, inv Invoke) Result

// Invoke calls f.
func (f HandlerFunc) Invoke(ctx context.Context, inv Invoke) Result { return f(ctx, inv) }

// Invoke is one node.invoke.request from the gateway.
type Invoke struct {
	// ID is the gateway's request id, NodeID this node's id.
	ID, NodeID string
	// Command is one of Node.Commands (others are refused before the
	// Handler sees them).
	Command string
	// Params is the command's params as JSON, nil when the gateway sent
	// none.
	Params json.RawMessage
	// Timeout is the gateway's timeoutMs; 0 when it set none (the ctx then
	// ends after DefaultInvokeTimeout).
	Timeout time.Duration
	// IdempotencyKey is the gateway's key, empty when it sent none.
	IdempotencyKey string
}

// Result is what an invoke answers. With OK, Payload is sent as the
// result's payloadJSON; without, Error says why. Events are node.event
// requests sent before the result, once per execution (never again for a
// duplicate): OpenClaw's exec.finished and exec.denied.
type Result struct {
	OK      bool
	Payload any
	Error   *Error
	Events  []Event
}

// Error is an invoke's error as OpenClaw's node.invoke.result carries it.
type Error struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Event is a node.event: its name and payload (sent as payloadJSON).
type Event struct {
	Name    string
	Payload any
}

// Fail is a failed Result with code and message.
func Fail(code, message string) Result {
	return Result{Error: &Error{Code: code, Message: message}}
}

// Succeed is a successful Result with payload.
func Succeed(payload any) Result {
	return Result{OK: true, Payload: payload}
}

// Causes of an invoke's ctx ending (context.Cause).
var (
	ErrInvokeTimeout  = errors.New("openclaw: invoke timed out")
	ErrInvokeCanceled = errors.New("openclaw: invoke canceled by the gateway")
)

// DefaultInvokeTimeout bounds an invoke whose request has no timeoutMs.
const DefaultInvokeTimeout = 5 * time.Minute

// Interface guards
var (
	_ Handler = HandlerFunc(nil)
	_ error   = (*Error)(nil)
)
