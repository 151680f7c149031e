package openclaw

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// The commands a headless node host serves, as OpenClaw names them. The
// gateway's exec tool calls system.run.prepare before every system.run on
// a node, so a node that runs commands must serve both.
const (
	CommandSystemRun        = "system.run"
	CommandSystemRunPrepare = "system.run.prepare"
	CommandSystemWhich      = "system.which"
)

// DefaultCommands are the commands a Node advertises when Node.Commands is
// empty.
var DefaultCommands = []string{CommandSystemRunPrepare, CommandSystemRun, CommandSystemWhich}

// SystemRunParams are system.run's params. Command is the argv, run as
// given (no shell is added); RawCommand is the text the agent asked for,
// for display.
type SystemRunParams struct {
	Command              []string          `json:"command"`
	RawCommand           string            `json:"rawCommand,omitempty"`
	Cwd                  string            `json:"cwd,omitempty"`
	Env                  map[string]string `json:"env,omitempty"`
	TimeoutMs            *int64            `json:"timeoutMs,omitempty"`
	NeedsScreenRecording bool              `json:"needsScreenRecording,omitempty"`
	AgentID              string            `json:"agentId,omitempty"`
	SessionKey           string            `json:"sessionKey,omitempty"`
	RunID                string            `json:"runId,omitempty"`
	Approved             bool              `json:"approved,omitempty"`
	ApprovalDecision     string            `json:"approvalDecision,omitempty"`
	SuppressNotifyOnExit bool              `json:"suppressNotifyOnExit,omitempty"`
	SystemRunPlan        *SystemRunPlan    `json:"systemRunPlan,omitempty"`
}

// SystemRunResult is system.run's payload. ExitCode is nil when the
// process did not exit by itself (killed, or never started: then Error).
type SystemRunResult struct {
	ExitCode  *int   `json:"exitCode,omitempty"`
	TimedOut  bool   `json:"timedOut"`
	Success   bool   `json:"success"`
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	Error     string `json:"error,omitempty"`
	Truncated bool   `json:"truncated"`
}

// SystemRunPrepareParams are system.run.prepare's params: what the agent
// wants to run, before any approval.
type SystemRunPrepareParams struct {
	Command    []string `json:"command"`
	RawCommand string   `json:"rawCommand,omitempty"`
	Cwd        string   `json:"cwd,omitempty"`
	AgentID    string   `json:"agentId,omitempty"`
	SessionKey string   `json:"sessionKey,omitempty"`
}

// SystemRunPlan is the canonical command a node prepares and the gateway
// pins: after approval the gateway refuses a system.run whose argv, cwd,
// agent or session differ from it. CommandText and RawCommand carry the
// same text (newer gateways read commandText, older rawCommand).
type SystemRunPlan struct {
	Argv        []string `json:"argv"`
	Cwd         *string  `json:"cwd"`
	CommandText string   `json:"commandText"`
	RawCommand  *string  `json:"rawCommand"`
	AgentID     *string  `json:"agentId"`
	SessionKey  *string  `json:"sessionKey"`
}

// SystemRunPrepareResult is system.run.prepare's payload.
type SystemRunPrepareResult struct {
	CmdText string        `json:"cmdText"`
	Plan    SystemRunPlan `json:"plan"`
}

// SystemWhichParams are system.which's params: executable names to find.
type SystemWhichParams struct {
	Bins []string `json:"bins"`
}

// SystemWhichResult is system.which's payload: the path of each name found
// (names not found are absent).
type SystemWhichResult struct {
	Bins map[string]string `json:"bins"`
}

// ParseSystemRun decodes and checks system.run's params.
func ParseSystemRun(raw json.RawMessage) (SystemRunParams, error) {
	var p SystemRunParams
	if err := decodeParams(raw, &p, CommandSystemRun); err != nil {
		return p, err
	}
	return p, checkArgv(p.Command, CommandSystemRun)
}

// ParseSystemRunPrepare decodes and checks system.run.prepare's params.
func ParseSystemRunPrepare(raw json.RawMessage) (SystemRunPrepareParams, error) {
	var p SystemRunPrepareParams
	if err := decodeParams(raw, &p, CommandSystemRunPrepare); err != nil {
		return p, err
	}
	return p, checkArgv(p.Command, CommandSystemRunPrepare)
}

// ParseSystemWhich decodes and checks system.which's params.
func ParseSystemWhich(raw json.RawMessage) (SystemWhichParams, error) {
	var p SystemWhichParams
	if err := decodeParams(raw, &p, CommandSystemWhich); err != nil {
		return p, err
	}
	if p.Bins == nil {
		return p, fmt.Errorf("%s: bins required", CommandSystemWhich)
	}
	return p, nil
}

func decodeParams(raw json.RawMessage, v any, command string) error {
	if len(raw) == 0 {
		return fmt.Errorf("%s: paramsJSON required", command)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: params: %w", command, err)
	}
	return nil
}

func checkArgv(argv []string, command string) error {
	if len(argv) == 0 {
		return fmt.Errorf("%s: command required", command)
	}
	if argv[0] == "" {
		return fmt.Errorf("%s: command[0] is empty", command)
	}
	for i, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("%s: command[%d] contains a NUL byte", command, i)
		}
	}
	return nil
}

// ErrInvalidParams is the Result for params a Parse function refused.
func ErrInvalidParams(err error) Result {
	return Fail(CodeInvalidRequest, err.Error())
}

// NewPlan is the plan of a prepared command: argv and cwd as the node will
// run them (after its own resolution), and the text shown for approval.
func NewPlan(p SystemRunPrepareParams, argv []string, cwd string) SystemRunPrepareResult {
	text := strings.TrimSpace(p.RawCommand)
	if text == "" {
		text = strings.Join(argv, " ")
	}
	return SystemRunPrepareResult{CmdText: text, Plan: SystemRunPlan{
		Argv:        argv,
		Cwd:         optional(cwd),
		CommandText: text,
		RawCommand:  &text,
		AgentID:     optional(strings.TrimSpace(p.AgentID)),
		SessionKey:  optional(strings.TrimSpace(p.SessionKey)),
	}}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Reasons of a refused system.run, as OpenClaw's exec.denied names them.
const (
	DenyApprovalRequired = "approval-required"
	DenyAllowlistMiss    = "allowlist-miss"
	DenySecurityDeny     = "security=deny"
	DenyDenylistHit      = "denylist-hit"
	DenyPlanMiss         = "execution-plan-miss"
)

// DeniedPrefix starts the message of every refused system.run.
const DeniedPrefix = "SYSTEM_RUN_DENIED: "

// Denied is the Result of a system.run the node refuses: ok false, code
// UNAVAILABLE, message "SYSTEM_RUN_DENIED: <message>", after an exec.denied
// event with reason, as OpenClaw's node host answers.
func Denied(p SystemRunParams, reason, message string) Result {
	r := Fail(CodeUnavailable, DeniedPrefix+message)
	r.Events = []Event{{Name: "exec.denied", Payload: execEvent(p, ExecEventPayload{Reason: reason})}}
	return r
}

// IsDenied reports whether a failed Result's error is a refused system.run.
func IsDenied(e *Error) bool {
	return e != nil && e.Code == CodeUnavailable && strings.HasPrefix(e.Message, DeniedPrefix)
}

// Finished is the Result of a system.run that ran: its payload, after an
// exec.finished event carrying the exit and the output's tail.
func Finished(p SystemRunParams, res SystemRunResult) Result {
	out := strings.TrimSpace(strings.Join(nonEmpty(res.Stdout, res.Stderr, res.Error), "\n"))
	if len(out) > execEventTail {
		out = "... (truncated) " + out[len(out)-execEventTail:]
	}
	ev := ExecEventPayload{ExitCode: res.ExitCode, TimedOut: &res.TimedOut, Success: &res.Success, Output: out}
	r := Succeed(res)
	r.Events = []Event{{Name: "exec.finished", Payload: execEvent(p, ev)}}
	return r
}

// execEventTail is how much output OpenClaw's node host puts in
// exec.finished (OUTPUT_EVENT_TAIL).
const execEventTail = 20_000

// ExecEventPayload is the payload of exec.finished and exec.denied.
type ExecEventPayload struct {
	SessionKey           string `json:"sessionKey"`
	RunID                string `json:"runId"`
	Host                 string `json:"host"`
	Command              string `json:"command,omitempty"`
	ExitCode             *int   `json:"exitCode,omitempty"`
	TimedOut             *bool  `json:"timedOut,omitempty"`
	Success              *bool  `json:"success,omitempty"`
	Output               string `json:"output,omitempty"`
	Reason               string `json:"reason,omitempty"`
	SuppressNotifyOnExit bool   `json:"suppressNotifyOnExit,omitempty"`
}

// execEvent fills what every exec event carries: the session ("node" when
// the gateway gave none), the run id (a fresh one when it gave none) and
// the command's text.
func execEvent(p SystemRunParams, ev ExecEventPayload) ExecEventPayload {
	ev.SessionKey = strings.TrimSpace(p.SessionKey)
	if ev.SessionKey == "" {
		ev.SessionKey = "node"
	}
	ev.RunID = strings.TrimSpace(p.RunID)
	if ev.RunID == "" {
		ev.RunID = newID()
	}
	ev.Host = "node"
	ev.Command = strings.TrimSpace(p.RawCommand)
	if ev.Command == "" {
		ev.Command = strings.Join(p.Command, " ")
	}
	ev.SuppressNotifyOnExit = p.SuppressNotifyOnExit
	return ev
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// newID is a random 128-bit hex id.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b[:])
}
