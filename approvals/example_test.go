package approvals_test

import (
	"context"
	"fmt"
	"os"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/trail"
)

// Example shows how the sidecar wires the package: one Store on the node's
// approval file, one Queue whose decisions go to the audit trail, and a
// Request per exec. The answer here comes from code; in the sidecar it
// comes from POST /v1/approvals/{id}.
func Example() {
	state, _ := os.MkdirTemp("", "clawguard-example")
	defer os.RemoveAll(state)
	path := approvals.DefaultPath(state)
	os.WriteFile(path, []byte(`{"version":1,"defaults":{"mode":"ask","ask_timeout":"1m"},
		"agents":{"main":{"allow":[{"path":"/usr/bin/true"}]}}}`), 0o600)

	store, err := approvals.OpenStore(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	tr, _ := trail.Open(trail.Dir(state), trail.Options{})
	q := approvals.NewQueue(store, approvals.QueueOptions{
		OnDecided: func(a approvals.Approval) {
			tr.Append(trail.KindApproval, a.DecidedBy, a)
		},
	})
	defer q.Close()

	// A sandbox request resolves inside the image's root filesystem
	// (RootResolver{Root: dir}); this example uses the host's.
	req := approvals.Request{Identity: "device:1a2b", Agent: "main", Argv: []string{"sh", "-c", "echo hi"},
		Cwd: "/", Path: "/usr/bin:/bin", Resolver: approvals.HostResolver()}

	events, stop := q.Subscribe(8)
	defer stop()
	go func() {
		ev := <-events // what a UI would show
		q.Answer(ev.Approval.ID, approvals.Answer{Choice: approvals.AllowOnce, By: "user:ann"})
	}()
	d, err := q.Ask(context.Background(), req)
	fmt.Println(d.Verdict, d.Reason, err)

	rep, _ := trail.Verify(trail.Dir(state))
	fmt.Println("trail records:", rep.Records, "ok:", rep.OK)
	// Output:
	// allow allowed once by user:ann <nil>
	// trail records: 1 ok: true
}
