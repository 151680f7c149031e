package wire

// Headers the gate sets on what it forwards after authenticating a request,
// and strips from what clients send (every header starting HeaderPrefix).
const (
	HeaderPrefix   = "X-Clawguard-"
	HeaderIdentity = "X-Clawguard-Identity" // token:<name>, device:<id>, tailnet:<login>, …
	HeaderMethod   = "X-Clawguard-Method"   // the auth method that admitted the request
	HeaderDevice   = "X-Clawguard-Device"   // a paired device's id
	// HeaderRole marks a request from an administrator: the gate sets
	// "X-Clawguard-Role: admin" on what its admin API forwards to the
	// sidecar's approvals API, and `clawguard approvals` sets it on the
	// sidecar's host. Only such requests may list or answer asks.
	HeaderRole = "X-Clawguard-Role"
	RoleAdmin  = "admin" // HeaderRole's value for administrators
)

// The sidecar's HTTP API.
const (
	PathExec       = "/v1/exec"
	PathExecStream = "/v1/exec/stream"
	PathSandboxes  = "/v1/sandboxes"
	PathApprovals  = "/v1/approvals" // a prefix: /v1/approvals/{id}/…
)

// The gate's admin API, on the admin listener (under /.clawguard/).
const PathAdminApprovals = "/.clawguard/api/approvals"

// File names in the state directory.
const (
	FileSidecarSocket = "sidecar.sock"
	FileSidecarConfig = "sidecar.json"
	FileApprovals     = "approvals.json"
	FileDevices       = "devices.json"
	FileVault         = "vault.json"
	FileCaddyfile     = "Caddyfile"
	DirTrail          = "trail"
	DirBackups        = "backups"
)
