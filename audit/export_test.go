package audit

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// ParseListModulesForTest exposes parseListModules: (id, package) pairs.
func ParseListModulesForTest(b []byte, mainModule string) ([][2]string, error) {
	mods, err := parseListModules(b, mainModule)
	out := make([][2]string, len(mods))
	for i, m := range mods {
		out[i] = [2]string{m.id, m.pkg}
	}
	return out, err
}

// ProcAddrForTest renders ip as /proc/net/tcp{,6} prints it: 32-bit words
// in the host's byte order, in hex.
func ProcAddrForTest(ip netip.Addr) string {
	b := ip.AsSlice()
	var s strings.Builder
	for i := 0; i < len(b); i += 4 {
		fmt.Fprintf(&s, "%08X", binary.NativeEndian.Uint32(b[i:]))
	}
	return s.String()
}

// TokenFingerprintForTest exposes tokenFingerprint.
func TokenFingerprintForTest(tok string) string { return tokenFingerprint(tok) }
