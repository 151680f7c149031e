package pairing

import (
	"strings"
	"testing"
)

func TestReserved(t *testing.T) {
	for _, p := range []string{"/.clawguard/api/devices", "/.CLAWGUARD/ui/", "//.clawguard", "/%252eclawguard/api",
		"/x/../.clawguard/api", "/.clawguard;v=1/api", "/.clawguard./api", `/\.clawguard\api`, "/.clawguard%00/api"} {
		if !Reserved(p) {
			t.Errorf("%q not reserved", p)
		}
	}
	for _, p := range []string{"/", "/api/chat", "/clawguard/api", "/.clawguardx/api", "/a/.clawguard/api"} {
		if Reserved(p) {
			t.Errorf("%q reserved", p)
		}
	}
}

// FuzzReserved: no input panics, and every path an upstream would read as
// /.clawguard/… without normalising (a case-insensitive prefix, no dot
// segments) is reserved.
func FuzzReserved(f *testing.F) {
	for _, s := range []string{"/.clawguard/api", "/%2e%2E/x", "/.CLAWGUARD;/", "\x00", "/%zz", `\\.clawguard`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got := Reserved(p)
		lower := strings.ToLower(p)
		if strings.HasPrefix(lower, "/.clawguard/") && !strings.Contains(p, "..") && !strings.Contains(p, "%") && !got {
			t.Fatalf("%q is read as /.clawguard/ by a plain upstream but not reserved", p)
		}
	})
}
