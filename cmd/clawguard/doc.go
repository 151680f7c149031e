// Command clawguard is the sidecar daemon and the admin CLI of clawguard.
//
// Each subcommand lives in its own file and registers itself in init with
// register; main only dispatches. Subcommands parse their own flags, so
// `clawguard <command> --help` documents each one.
//
// It is a program at the top of the layers (docs/design.md): it may import
// any package of the module.
package main
