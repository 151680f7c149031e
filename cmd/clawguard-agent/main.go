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
