// Command clawguard-agent is the exec agent of clawguard's sandboxes: the
// long-running process of every sandbox container, started by the sidecar,
// which runs the sidecar's commands inside the container and streams their
// output back over the container's stdin and stdout (package
// internal/execagent). Diagnostics go to stderr.
//
// It must run in any image, FROM scratch ones included, so it is a static
// program; build it with
//
//	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w -buildid=' ./cmd/clawguard-agent
//
// and install it next to the clawguard binary (or name it with
// CLAWGUARD_AGENT). The sidecar refuses a dynamically linked one.
//
// It imports only internal/execagent, so it stays small and static.
package main
