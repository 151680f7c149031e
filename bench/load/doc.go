// Command load runs the whole stack (the built `clawguard up`: sidecar and
// Caddy as processes) and drives it through the gate on loopback for a fixed
// time: half the connections are HTTP keep-alive clients with the shared
// token (every tenth request goes through to the sidecar), half are
// WebSockets of paired devices exchanging echo messages. It reports
// throughput, errors, and the resident memory of Caddy and the sidecar
// before and after.
//
//	go run ./bench/load [-duration 30s] [-conns 100]
//
// It is a program at the top of the layers; it drives the built binaries.
package main
