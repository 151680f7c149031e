// Package statedir locates clawguard's state directory and writes files in it
// the way the state contract requires (docs/design.md, "State"): directory
// 0700, files 0600, every write atomic (temp file, fsync, rename, fsync of
// the directory), and a lock file for writers.
//
// It is a leaf: the standard library only. The names of the files in the
// directory are in package wire.
package statedir
