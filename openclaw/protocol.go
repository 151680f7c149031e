package openclaw

import (
	"encoding/json"
	"log/slog"
)

// Protocol versions. OpenClaw's gateway speaks ProtocolVersion and admits
// node-role clients down to MinNodeProtocol (v4 changed chat frames, not
// node frames); the node offers both.
const (
	ProtocolVersion = 4
	MinNodeProtocol = 3
)

// The node's identity in the connect request: OpenClaw's client id and
// mode of a headless node host, its role, and its default commands.
const (
	ClientID   = "node-host"
	ClientMode = "node"
	RoleNode   = "node"
)

// Methods and events of the protocol that the node uses.
const (
	MethodConnect      = "connect"
	MethodInvokeResult = "node.invoke.result"
	MethodNodeEvent    = "node.event"

	EventChallenge     = "connect.challenge"
	EventTick          = "tick"
	EventShutdown      = "shutdown"
	EventInvokeRequest = "node.invoke.request"
	EventInvokeCancel  = "node.invoke.cancel"
)

// Error codes of OpenClaw's error shape (error.code) that the node and the
// double use.
const (
	CodeInvalidRequest = "INVALID_REQUEST"
	CodeUnavailable    = "UNAVAILABLE"
	CodeNotPaired      = "NOT_PAIRED"
	CodeTimeout        = "TIMEOUT"
	CodeNotConnected   = "NOT_CONNECTED"
)

// Challenge is the payload of the gateway's connect.challenge event.
type Challenge struct {
	Nonce string `json:"nonce"`
	TS    int64  `json:"ts"`
}

// ConnectParams are the params of the connect request, field for field as
// OpenClaw's closed schema has them (a gateway refuses unknown fields).
type ConnectParams struct {
	MinProtocol int             `json:"minProtocol"`
	MaxProtocol int             `json:"maxProtocol"`
	Client      ClientInfo      `json:"client"`
	Caps        []string        `json:"caps,omitempty"`
	Commands    []string        `json:"commands,omitempty"`
	Permissions map[string]bool `json:"permissions,omitempty"`
	PathEnv     string          `json:"pathEnv,omitempty"`
	Role        string          `json:"role,omitempty"`
	Scopes      []string        `json:"scopes"`
	Device      *DeviceProof    `json:"device,omitempty"`
	Auth        *ConnectAuth    `json:"auth,omitempty"`
	Locale      string          `json:"locale,omitempty"`
	UserAgent   string          `json:"userAgent,omitempty"`
}

// ClientInfo describes the connecting client.
type ClientInfo struct {
	ID              string `json:"id"`
	DisplayName     string `json:"displayName,omitempty"`
	Version         string `json:"version"`
	Platform        string `json:"platform"`
	DeviceFamily    string `json:"deviceFamily,omitempty"`
	ModelIdentifier string `json:"modelIdentifier,omitempty"`
	Mode            string `json:"mode"`
	InstanceID      string `json:"instanceId,omitempty"`
}

// DeviceProof is the signed device identity of the connect request.
type DeviceProof struct {
	ID        string `json:"id"`
	PublicKey string `json:"publicKey"`
	Signature string `json:"signature"`
	SignedAt  int64  `json:"signedAt"`
	Nonce     string `json:"nonce"`
}

// ConnectAuth carries the credentials of the connect request. It never
// appears in a log: LogValue redacts it.
type ConnectAuth struct {
	Token          string `json:"token,omitempty"`
	BootstrapToken string `json:"bootstrapToken,omitempty"`
	DeviceToken    string `json:"deviceToken,omitempty"`
	Password       string `json:"password,omitempty"`
}

// LogValue keeps credentials out of logs.
func (ConnectAuth) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// HelloOK is the payload of the successful connect response.
type HelloOK struct {
	Type     string          `json:"type"`
	Protocol int             `json:"protocol"`
	Server   HelloServer     `json:"server"`
	Features HelloFeatures   `json:"features"`
	Snapshot json.RawMessage `json:"snapshot"`
	Auth     HelloAuth       `json:"auth"`
	Policy   Policy          `json:"policy"`
}

// HelloServer identifies the gateway and this connection.
type HelloServer struct {
	Version string `json:"version"`
	ConnID  string `json:"connId"`
}

// HelloFeatures lists what the gateway serves.
type HelloFeatures struct {
	Methods      []string `json:"methods"`
	Events       []string `json:"events"`
	Capabilities []string `json:"capabilities,omitempty"`
}

// HelloAuth is the negotiated role and scopes, and the device token issued
// to a paired device (a secret: LogValue redacts it).
type HelloAuth struct {
	DeviceToken string   `json:"deviceToken,omitempty"`
	Role        string   `json:"role"`
	Scopes      []string `json:"scopes"`
	IssuedAtMs  int64    `json:"issuedAtMs,omitempty"`
}

// LogValue keeps the device token out of logs.
func (a HelloAuth) LogValue() slog.Value {
	return slog.GroupValue(slog.String("role", a.Role), slog.Bool("device_token", a.DeviceToken != ""))
}

// Policy is the gateway's limits for this connection.
type Policy struct {
	MaxPayload       int   `json:"maxPayload"`
	MaxBufferedBytes int   `json:"maxBufferedBytes"`
	TickIntervalMs   int64 `json:"tickIntervalMs"`
}

// ConnectErrorDetails is what OpenClaw puts in a refused connect's
// error.details: a detail code (AUTH_TOKEN_MISMATCH, PAIRING_REQUIRED, …)
// and, by case, a reason, a pairing request id and recovery hints.
type ConnectErrorDetails struct {
	Code                    string   `json:"code"`
	Reason                  string   `json:"reason,omitempty"`
	AuthReason              string   `json:"authReason,omitempty"`
	RequestID               string   `json:"requestId,omitempty"`
	RemediationHint         string   `json:"remediationHint,omitempty"`
	RecommendedNextStep     string   `json:"recommendedNextStep,omitempty"`
	CanRetryWithDeviceToken *bool    `json:"canRetryWithDeviceToken,omitempty"`
	DeviceID                string   `json:"deviceId,omitempty"`
	RequestedRole           string   `json:"requestedRole,omitempty"`
	RequestedScopes         []string `json:"requestedScopes,omitempty"`
}

// Detail codes of ConnectErrorDetails.Code.
const (
	DetailProtocolMismatch          = "PROTOCOL_MISMATCH"
	DetailPairingRequired           = "PAIRING_REQUIRED"
	DetailDeviceIdentityRequired    = "DEVICE_IDENTITY_REQUIRED"
	DetailAuthRequired              = "AUTH_REQUIRED"
	DetailAuthUnauthorized          = "AUTH_UNAUTHORIZED"
	DetailAuthTokenMissing          = "AUTH_TOKEN_MISSING"
	DetailAuthTokenMismatch         = "AUTH_TOKEN_MISMATCH"
	DetailAuthTokenNotConfigured    = "AUTH_TOKEN_NOT_CONFIGURED"
	DetailAuthPasswordMissing       = "AUTH_PASSWORD_MISSING"
	DetailAuthPasswordMismatch      = "AUTH_PASSWORD_MISMATCH"
	DetailAuthPasswordNotConfigured = "AUTH_PASSWORD_NOT_CONFIGURED"
	DetailAuthBootstrapInvalid      = "AUTH_BOOTSTRAP_TOKEN_INVALID"
	DetailAuthDeviceTokenMismatch   = "AUTH_DEVICE_TOKEN_MISMATCH"
	DetailAuthScopeMismatch         = "AUTH_SCOPE_MISMATCH"
	DetailAuthRateLimited           = "AUTH_RATE_LIMITED"
	DetailClientVersionMismatch     = "CLIENT_VERSION_MISMATCH"
	DetailDeviceIDMismatch          = "DEVICE_AUTH_DEVICE_ID_MISMATCH"
	DetailDeviceSignatureExpired    = "DEVICE_AUTH_SIGNATURE_EXPIRED"
	DetailDeviceNonceRequired       = "DEVICE_AUTH_NONCE_REQUIRED"
	DetailDeviceNonceMismatch       = "DEVICE_AUTH_NONCE_MISMATCH"
	DetailDeviceSignatureInvalid    = "DEVICE_AUTH_SIGNATURE_INVALID"
	DetailDevicePublicKeyInvalid    = "DEVICE_AUTH_PUBLIC_KEY_INVALID"
)

// InvokeRequest is the payload of a node.invoke.request event. The gateway
// sends the command's params as a JSON string (paramsJSON); Params is the
// object form some senders use instead.
type InvokeRequest struct {
	ID             string          `json:"id"`
	NodeID         string          `json:"nodeId"`
	Command        string          `json:"command"`
	ParamsJSON     *string         `json:"paramsJSON,omitempty"`
	Params         json.RawMessage `json:"params,omitempty"`
	TimeoutMs      *int64          `json:"timeoutMs,omitempty"`
	IdempotencyKey string          `json:"idempotencyKey,omitempty"`
}

// InvokeCancel is the payload of a node.invoke.cancel event.
type InvokeCancel struct {
	InvokeID string `json:"invokeId"`
	NodeID   string `json:"nodeId"`
}

// InvokeResultParams are the params of the node.invoke.result request.
type InvokeResultParams struct {
	ID          string  `json:"id"`
	NodeID      string  `json:"nodeId"`
	OK          bool    `json:"ok"`
	Payload     any     `json:"payload,omitempty"`
	PayloadJSON *string `json:"payloadJSON,omitempty"`
	Error       *Error  `json:"error,omitempty"`
}

// NodeEventParams are the params of the node.event request.
type NodeEventParams struct {
	Event       string  `json:"event"`
	PayloadJSON *string `json:"payloadJSON,omitempty"`
}

// Interface guards
var (
	_ slog.LogValuer = ConnectAuth{}
	_ slog.LogValuer = HelloAuth{}
)
