// Package testport hands out loopback TCP ports reserved across every test
// process on the machine, so parallel test packages never get the same port.
//
// It is a leaf: the standard library only.
package testport
