package multihost

import (
	"context"
	"strings"
)

// checkSecrets looks for every secret of the run where none may be, in
// every running container: its argv (docker inspect), its log, and the
// regular files of its state directory — the vaults hold the secrets
// encrypted and the configs name them by placeholder.
func (w *world) checkSecrets(ctx context.Context) {
	w.t.Helper()
	for _, c := range w.containers {
		if state, _ := docker(ctx, nil, nil, "inspect", "--format", "{{.State.Running}}", c); state != "true" {
			continue
		}
		argv, err := docker(ctx, nil, nil, "inspect", "--format", "{{json .Path}} {{json .Args}}", c)
		if err != nil {
			w.t.Fatal(err)
		}
		out, err := logs(ctx, c, 0)
		if err != nil {
			w.t.Fatalf("docker logs %s: %v", c, err)
		}
		files, err := docker(ctx, nil, nil, "exec", c, "find", stateDir, "-type", "f", "-exec", "cat", "{}", "+")
		if err != nil {
			w.t.Fatal(err)
		}
		for _, where := range []struct{ what, text string }{{"argv", argv}, {"log", out}, {"state files (" + stateDir + ")", files}} {
			for i, s := range w.secrets {
				if strings.Contains(where.text, s) {
					w.t.Errorf("%s: secret #%d of the run is in its %s", c, i, where.what)
				}
			}
		}
		w.t.Logf("%s: no secret in argv, log (%d bytes) or %s (%d bytes)", c, len(out), stateDir, len(files))
	}
}
