// Package procnet reads the kernel's TCP socket tables and processes' open
// sockets from /proc (Linux), for the tools that must know who listens
// where: `clawguard up` naming the holder of an address, and the test
// helpers waiting for Caddy's old listeners to close.
//
// It is a leaf: the standard library only.
package procnet
