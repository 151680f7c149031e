package nodehost

import (
	"context"
	"io"
	"log/slog"

	"github.com/clawguard/clawguard/openclaw"
	"github.com/clawguard/clawguard/sidecar"
)

// Sidecar is the part of *sidecar.Server a Handler uses.
type Sidecar interface {
	Exec(ctx context.Context, who sidecar.Identity, req sidecar.ExecRequest, stdout, stderr io.Writer, onPending func(approvalID string)) (sidecar.ExecResponse, error)
	DefaultTarget(agent string) string
	Which(ctx context.Context, agent, target, name string) (string, error)
}

// DefaultAgent is the agent of invokes that name none, as OpenClaw calls
// its default agent.
const DefaultAgent = "main"

// IdentityMethod is the identity method of commands that came from an
// OpenClaw gateway, in the sidecar's logs and the audit trail.
const IdentityMethod = "openclaw"

// Handler serves the invokes of one OpenClaw gateway with a sidecar.
type Handler struct {
	// Sidecar decides and runs the commands. Required.
	Sidecar Sidecar

	// Gateway names the gateway in the identity commands run for
	// ("openclaw:<Gateway>", e.g. the gateway's host:port). Required.
	Gateway string

	// OnInvoke, if set, is called after every invoke with its command and
	// result: "ok", "denied", "invalid" or "error" (metrics). Default nil.
	OnInvoke func(command, result string)

	// Logger receives a line per invoke. Default: discarded.
	Logger *slog.Logger
}

// Invoke serves one invoke: the commands of openclaw.DefaultCommands; the
// connection has refused any other before it gets here.
func (h *Handler) Invoke(ctx context.Context, inv openclaw.Invoke) openclaw.Result {
	var res openclaw.Result
	switch inv.Command {
	case openclaw.CommandSystemRunPrepare:
		res = h.prepare(inv)
	case openclaw.CommandSystemRun:
		res = h.run(ctx, inv)
	case openclaw.CommandSystemWhich:
		res = h.which(ctx, inv)
	default:
		res = openclaw.Fail(openclaw.CodeInvalidRequest, inv.Command+": not served by this node")
	}
	if h.OnInvoke != nil {
		h.OnInvoke(inv.Command, resultLabel(res))
	}
	return res
}

// resultLabel is the metric label of a result.
func resultLabel(r openclaw.Result) string {
	switch {
	case r.OK:
		return "ok"
	case openclaw.IsDenied(r.Error):
		return "denied"
	case r.Error != nil && r.Error.Code == openclaw.CodeInvalidRequest:
		return "invalid"
	}
	return "error"
}

func (h *Handler) identity() sidecar.Identity {
	return sidecar.Identity{Name: IdentityMethod + ":" + h.Gateway, Method: IdentityMethod}
}

func (h *Handler) log() *slog.Logger {
	if h.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Logger
}

// Interface guards
var (
	_ openclaw.Handler = (*Handler)(nil)
	_ Sidecar          = (*sidecar.Server)(nil)
)
