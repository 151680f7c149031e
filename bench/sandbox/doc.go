// Command sandbox benchmarks sandbox exec latency against the Docker CLI
// on the same Docker Engine, in the same run:
//
//   - docker run: `docker run --rm <image> true`
//   - docker exec: `docker exec <container> true` into a running sandbox
//   - API warm exec: `true` in a running sandbox through the sidecar's HTTP
//     API on its unix socket, exec agent (the default)
//   - warm exec: the same through sandbox.Manager directly
//   - warm exec, "exec": "docker": the Manager's docker exec path (three
//     Engine API calls per command)
//   - pooled first exec: a new session's first command with a warm pool
//   - cold first exec: a new session's first command, container created and
//     started for it (create + attach + start + agent handshake + exec)
//
// The cases take turns in every round, in a random order per round, so other
// load on the machine falls on all of them alike. Then 200 sequential execs in one session through the
// API (p50, p99), and the resident memory of an idle sandbox (docker-init
// and the agent, from the host's /proc; and its memory cgroup's usage). It
// prints the ratios the issue sets targets for: API warm p50 <= 0.02 x
// docker run and <= 0.1 x docker exec; pooled first exec <= 1.5 x warm;
// sequential p99 <= 3 x p50; idle RSS <= 10 MiB.
//
//	go run ./bench/sandbox [-n 30] [-seq 200] [-json]
//
// It builds the busybox test image and the agent (CGO_ENABLED=0) if needed
// and removes every container it created.
//
// It is a program at the top of the layers.
package main
