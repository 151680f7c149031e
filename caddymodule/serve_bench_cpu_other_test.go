//go:build !linux

package caddymodule

import "time"

// threadCPU is not measured outside Linux: cpu-ns/op reads 0.
func threadCPU() time.Duration { return 0 }
