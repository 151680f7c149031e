package sidecar

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"syscall"

	"github.com/clawguard/clawguard/httpsig"
	"github.com/clawguard/clawguard/wire"
)

// PeerCred is the process on the other end of the unix socket, from the
// kernel (SO_PEERCRED), not from anything it sent.
type PeerCred struct {
	UID uint32
	GID uint32
	PID int32
}

// Identity is who a request is from, as the gate authenticated it.
type Identity struct {
	// Name is X-Clawguard-Identity: "token:<name>", "device:<id>", "local", …
	Name string `json:"name"`
	// Method is X-Clawguard-Method (how the gate authenticated it).
	Method string `json:"method,omitempty"`
	// Device is X-Clawguard-Device for paired devices.
	Device string `json:"device,omitempty"`
	// Peer is the process that connected to the socket (the gate).
	Peer PeerCred `json:"peer"`
	// Signed says the identity headers carried a valid RFC 9421 signature.
	Signed bool `json:"signed"`
}

// Verifier turns a request from an allowed peer into an Identity, or
// refuses it. The peer's UID has already been checked against the allowed
// UIDs when Verify runs.
type Verifier interface {
	Verify(r *http.Request, peer PeerCred) (Identity, error)
}

// ErrNoIdentity: the request carries no (valid) identity headers.
var ErrNoIdentity = errors.New("no identity")

var (
	identityRE = regexp.MustCompile(`^[\x21-\x7e]{1,256}$`)
	methodRE   = regexp.MustCompile(`^[A-Za-z0-9_.-]{0,32}$`)
)

// TrustedHeaders trusts the identity headers of a request from an allowed
// peer: the socket is 0600 and the peer's UID is checked, so only the gate
// (or the sidecar's own user) can have set them.
type TrustedHeaders struct{}

// Verify reads and checks the identity headers.
func (TrustedHeaders) Verify(r *http.Request, peer PeerCred) (Identity, error) {
	return identityFromHeaders(r, peer)
}

func identityFromHeaders(r *http.Request, peer PeerCred) (Identity, error) {
	vals := r.Header.Values(wire.HeaderIdentity)
	if len(vals) != 1 || !identityRE.MatchString(vals[0]) {
		return Identity{}, fmt.Errorf("%w: %s must be present once, 1 to 256 printable characters", ErrNoIdentity, wire.HeaderIdentity)
	}
	id := Identity{Name: vals[0], Method: r.Header.Get(wire.HeaderMethod), Device: r.Header.Get(wire.HeaderDevice), Peer: peer}
	if !methodRE.MatchString(id.Method) {
		return Identity{}, fmt.Errorf("%w: malformed %s", ErrNoIdentity, wire.HeaderMethod)
	}
	if id.Device != "" && !identityRE.MatchString(id.Device) {
		return Identity{}, fmt.Errorf("%w: malformed %s", ErrNoIdentity, wire.HeaderDevice)
	}
	return id, nil
}

// SignedIdentity requires the gate's RFC 9421 identity signature over the
// identity headers (httpsig.SignIdentity) in addition to an allowed peer, so
// another process of an allowed user cannot speak for the gate.
type SignedIdentity struct {
	// V is an identity-mode verifier (httpsig.Config{Identity: true}).
	V *httpsig.Verifier
}

// Verify checks the signature, then reads the signed headers.
func (s SignedIdentity) Verify(r *http.Request, peer PeerCred) (Identity, error) {
	if _, err := s.V.Verify(r); err != nil {
		return Identity{}, fmt.Errorf("%w: identity signature: %v", ErrNoIdentity, err)
	}
	id, err := identityFromHeaders(r, peer)
	id.Signed = err == nil
	return id, err
}

type peerKey struct{}
type identityKey struct{}

// peerContext is the http.Server's ConnContext: it reads the peer's
// credentials once per connection. A connection whose credentials cannot be
// read carries none, and every request on it is refused.
func peerContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, PeerCred{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid})
}

func peerFrom(ctx context.Context) (PeerCred, bool) {
	p, ok := ctx.Value(peerKey{}).(PeerCred)
	return p, ok
}

// IdentityFrom returns the verified identity of a request; handlers mounted
// with Server.Handle can rely on it being there.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

var (
	_ Verifier = TrustedHeaders{}
	_ Verifier = SignedIdentity{}
)
