package nodehost

import (
	"context"

	"github.com/clawguard/clawguard/openclaw"
)

// which answers system.which for the default agent, where its commands run:
// a name is listed only where the sidecar would find it (this host's PATH
// of node_exec, or the agent's sandbox image), absent otherwise.
func (h *Handler) which(ctx context.Context, inv openclaw.Invoke) openclaw.Result {
	p, err := openclaw.ParseSystemWhich(inv.Params)
	if err != nil {
		return openclaw.ErrInvalidParams(err)
	}
	c := h.place("", "", "")
	found := map[string]string{}
	for _, name := range p.Bins {
		if _, dup := found[name]; dup || name == "" {
			continue
		}
		if resolved, err := h.Sidecar.Which(ctx, c.agent, c.target, name); err == nil {
			found[name] = resolved
		} else {
			h.log().Debug("system.which: not found", "name", name, "target", c.target, "err", err)
		}
	}
	return openclaw.Succeed(openclaw.SystemWhichResult{Bins: found})
}
