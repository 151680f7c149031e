// Package testcaddy loads and stops in-process Caddy configs for tests,
// waiting until the previous config's listeners are really closed (Caddy's
// Load and Stop return earlier), and supplies the global options every test
// config shares.
//
// It must not import clawguard's Caddy modules: tests register what they
// load.
package testcaddy
