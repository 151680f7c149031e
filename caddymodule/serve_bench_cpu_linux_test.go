package caddymodule

import (
	"syscall"
	"time"
)

// threadCPU is the CPU time the calling OS thread has used (getrusage
// RUSAGE_THREAD). BenchmarkServeHTTP locks its goroutine to a thread and
// reports this per request as cpu-ns/op: time the request itself took,
// which other processes on a shared machine disturb far less than the wall
// clock.
func threadCPU() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD, Linux only
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
