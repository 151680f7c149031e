package tsnet

import (
	"errors"
	"fmt"
	"strings"
)

// Policy is the gate's `tailnet_identity { allow_users … allow_tags … }`:
// which tailnet peers are let in, and under which identity.
type Policy struct {
	// AllowUsers are the logins (e.g. alice@example.com, compared without
	// regard to case) let in from untagged nodes; "*" lets in every user
	// node the tailnet policy lets reach us. Default: none.
	AllowUsers []string `json:"allow_users,omitempty"`

	// AllowTags are the tags ("tag:ci") let in from tagged nodes; "*" lets
	// in every tagged node. Default: none.
	AllowTags []string `json:"allow_tags,omitempty"`
}

// Validate reports the first malformed entry.
func (p Policy) Validate() error {
	for _, u := range p.AllowUsers {
		if u == "" || strings.ContainsAny(u, " \t\r\n") {
			return fmt.Errorf("allow_users: %q is not a login name", u)
		}
		if strings.HasPrefix(u, "tag:") {
			return fmt.Errorf("allow_users: %q is a tag; list it under allow_tags", u)
		}
	}
	for _, t := range p.AllowTags {
		if t != "*" && !tagRE.MatchString(t) {
			return fmt.Errorf("allow_tags: %q: want tag:<name> or *", t)
		}
	}
	if len(p.AllowUsers) == 0 && len(p.AllowTags) == 0 {
		return errors.New("allows nobody: list allow_users and/or allow_tags")
	}
	return nil
}

// Allow decides peer. name is the principal the gate reports upstream as
// X-Clawguard-Identity "tailnet:<name>": the login of a user node, or
// "tag:<tag>" for a tagged node (the first allowed tag; the first tag when
// none is allowed). A tagged node is judged by its tags only, never by the
// login of whoever tagged it.
func (p Policy) Allow(peer Peer) (name string, ok bool) {
	if peer.Tagged() {
		for _, t := range peer.Tags {
			for _, a := range p.AllowTags {
				if a == "*" || a == t {
					return t, true
				}
			}
		}
		return peer.Tags[0], false
	}
	if peer.LoginName == "" {
		return "", false
	}
	for _, u := range p.AllowUsers {
		if u == "*" || strings.EqualFold(u, peer.LoginName) {
			return peer.LoginName, true
		}
	}
	return peer.LoginName, false
}
