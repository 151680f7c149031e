package sidecar

import "context"

// runKey carries the identity and the policy's decision from the server to
// the Runner of an allowed request, so a runner can execute what the policy
// judged (Decision.Exec) and record who asked for it.
type runKey struct{}

type runInfo struct {
	who Identity
	d   Decision
}

func withRun(ctx context.Context, who Identity, d Decision) context.Context {
	return context.WithValue(ctx, runKey{}, runInfo{who, d})
}

// runFrom returns what withRun attached.
func runFrom(ctx context.Context) (Identity, Decision, bool) {
	ri, ok := ctx.Value(runKey{}).(runInfo)
	return ri.who, ri.d, ok
}
