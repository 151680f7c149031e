// Package sandboxtest builds the sandbox test image and gives tests a Docker
// client and a container instance of their own that is cleaned up — and
// checked for leaks — when the test ends.
//
// It is for tests: it imports sandbox and nothing above it.
package sandboxtest
