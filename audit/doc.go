// Package audit is clawguard's security audit: checks of an installation
// (state directory permissions, secrets in configs, listeners, the gate's,
// tailnet's, sidecar's, profiles' and approvals' settings, plugin and Caddy
// versions), the fixes it can apply (`clawguard audit --fix`), and Monitor,
// the periodic run behind clawguard_audit_findings.
//
// It reads Caddyfiles with Caddy's own adapter, so it sits beside caddymodule,
// above everything Caddy-free, and it decodes the other formats with its own
// tolerant views (checked against the real types by a test). It must not
// import caddymodule or the sidecar: both are things it inspects from the
// outside, as files and sockets. The audit trail is package trail.
package audit
