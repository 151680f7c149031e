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
package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/clawguard/clawguard/internal/execagent"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == execagent.WarmArg {
		// A warm-up run, started by the agent as a command (see Warm).
		execagent.Warm(os.Args[2:], os.Environ())
		return
	}
	// Non-blocking stdio goes through Go's poller: no thread sits in a
	// read or write, so a command filling the pids limit cannot starve
	// the agent of threads it would need to create.
	for _, fd := range []int{0, 1} {
		if err := syscall.SetNonblock(fd, true); err != nil {
			fmt.Fprintln(os.Stderr, "clawguard-agent:", err)
			os.Exit(1)
		}
	}
	in, out := os.NewFile(0, "stdin"), os.NewFile(1, "stdout")
	if err := execagent.Serve(in, out); err != nil {
		fmt.Fprintln(os.Stderr, "clawguard-agent:", err)
		os.Exit(1)
	}
}
