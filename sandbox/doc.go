// Package sandbox runs agents' commands in Docker containers through the
// Docker Engine API: per-agent profiles (image, limits, network, workspace),
// scopes (per-session, per-agent, shared), a warm pool, idle and max-age
// pruning, adoption of its own containers after a restart, and the exec
// agent (clawguard-agent) each container runs. The security settings are
// fixed: read-only root, tmpfs /tmp, cap-drop ALL, no-new-privileges,
// non-root user, init, pids and memory limits, network none unless the
// profile names one.
//
// It must not import Caddy, the sidecar or approvals: it runs what it is told,
// and the sidecar decides what that is.
package sandbox
