package execagent

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// Hello opens a connection, both ways. The agent answers the sidecar's
// Hello with its own Version and PID and the sidecar's Nonce, so a reply
// left over from an earlier connection is never taken for this one's.
type Hello struct {
	Version int    `json:"version"`
	Nonce   string `json:"nonce"`
	PID     int    `json:"pid,omitempty"`
}

// Start asks the agent to run a command on a new stream.
type Start struct {
	// Path is the program to execute; when it has no '/', it is looked up
	// in the PATH of Env, like execvp.
	Path string `json:"path"`
	// Argv is the argument vector, argv[0] included.
	Argv []string `json:"argv"`
	// Env is the complete environment, "K=V" each.
	Env []string `json:"env"`
	// Dir is the working directory.
	Dir string `json:"dir"`
}

// Exit ends a stream: how the command ended.
type Exit struct {
	// Code is the exit status, 128+signal for a command killed by a signal,
	// 127 when the program was not found and 126 when it could not be
	// started for another reason.
	Code int `json:"code"`
	// Signal is the signal that killed the command, 0 if it exited.
	Signal int `json:"signal,omitempty"`
	// Error says why the command could not be started.
	Error string `json:"error,omitempty"`
}

// MaxErrorLen bounds Exit.Error as the sidecar accepts it.
const MaxErrorLen = 4096

// ParseHello decodes a Hello payload.
func ParseHello(p []byte) (Hello, error) {
	var h Hello
	if err := json.Unmarshal(p, &h); err != nil {
		return Hello{}, fmt.Errorf("%w: hello: %v", ErrFrame, err)
	}
	return h, nil
}

// ParseExit decodes and checks an Exit payload.
func ParseExit(p []byte) (Exit, error) {
	var e Exit
	if err := json.Unmarshal(p, &e); err != nil {
		return Exit{}, fmt.Errorf("%w: exit: %v", ErrFrame, err)
	}
	if e.Code < 0 || e.Code > 255 || e.Signal < 0 || e.Signal > 64 || len(e.Error) > MaxErrorLen {
		return Exit{}, fmt.Errorf("%w: exit: code %d, signal %d or error of %d bytes out of range", ErrFrame, e.Code, e.Signal, len(e.Error))
	}
	return e, nil
}

// ParseCredit decodes a Credit payload.
func ParseCredit(p []byte) (uint32, error) {
	if len(p) != 4 {
		return 0, fmt.Errorf("%w: credit of %d bytes, want 4", ErrFrame, len(p))
	}
	return binary.BigEndian.Uint32(p), nil
}

// CreditPayload encodes a Credit payload.
func CreditPayload(n uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, n)
}

// AppendJSON appends a frame whose payload is v as JSON, of at most max
// bytes (MaxPayload from the agent, MaxStartPayload to it).
func AppendJSON(b []byte, typ byte, stream uint32, v any, max int) ([]byte, error) {
	p, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	if len(p) > max {
		return b, fmt.Errorf("execagent: a %d-byte message exceeds the %d-byte frame payload", len(p), max)
	}
	return Append(b, typ, stream, p), nil
}
