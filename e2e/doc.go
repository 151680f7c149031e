// Package e2e tests clawguard as users run it: built binaries, started as
// processes, driven over the network.
//
// It drives the built programs from the outside; its tests use the module's
// client packages (pairclient, wire) and test helpers only.
package e2e
