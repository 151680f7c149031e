package authn

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// longHash is the bcrypt hash of "A"*72+"SECRET" as a tool that truncates
// (htpasswd, older bcrypt libraries) writes it: the hash of its first 72
// bytes. x/crypto's GenerateFromPassword refuses the long password itself.
func longHashSet(t testing.TB) *PasswordSet {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(strings.Repeat("A", MaxPasswordBytes)), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	s := NewPasswordSet()
	if err := s.Add("owner", string(hash)); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPasswordSetRefusesPasswordsPastBcryptsLimit: bcrypt compares only the
// first 72 bytes, so "A"*72+"WRONG" would log in as the owner of
// "A"*72+"SECRET". Every presented password over 72 bytes is refused, for
// known and unknown users, and from the cache too.
func TestPasswordSetRefusesPasswordsPastBcryptsLimit(t *testing.T) {
	s := longHashSet(t)
	prefix := strings.Repeat("A", MaxPasswordBytes)
	for _, c := range []struct{ user, password string }{
		{"owner", prefix + "WRONG"},
		{"owner", prefix + "SECRET"},
		{"owner", prefix + "A"},
		{"nobody", prefix + "WRONG"},
	} {
		if err := s.Check(c.user, c.password); !errors.Is(err, ErrPasswordTooLong) {
			t.Errorf("Check(%s, %d bytes) = %v, want ErrPasswordTooLong", c.user, len(c.password), err)
		}
		if s.Verify(c.user, c.password) {
			t.Errorf("Verify(%s, %d bytes) accepted a password past bcrypt's limit", c.user, len(c.password))
		}
	}
	// Exactly 72 bytes is still checked, and cached, as before; the cache
	// entry does not let a longer password in.
	for i := 0; i < 2; i++ {
		if err := s.Check("owner", prefix); err != nil {
			t.Fatalf("Check of the right 72-byte password (try %d): %v", i+1, err)
		}
	}
	if err := s.Check("owner", prefix+"WRONG"); !errors.Is(err, ErrPasswordTooLong) {
		t.Fatalf("after a cached login: Check = %v, want ErrPasswordTooLong", err)
	}
	if err := s.Check("owner", strings.Repeat("A", MaxPasswordBytes-1)+"B"); !errors.Is(err, ErrInvalidPassword) {
		t.Fatalf("wrong 72-byte password: Check = %v, want ErrInvalidPassword", err)
	}
	if err := s.Check("nobody", prefix); !errors.Is(err, ErrInvalidPassword) {
		t.Fatalf("unknown user: Check = %v, want ErrInvalidPassword", err)
	}
	if want := "passwords longer than 72 bytes are refused (bcrypt checks only the first 72)"; ErrPasswordTooLong.Error() != want {
		t.Fatalf("ErrPasswordTooLong says %q, want %q", ErrPasswordTooLong, want)
	}
}

// FuzzPasswordSetCheck: no input panics, nothing over 72 bytes is accepted,
// and Verify agrees with Check.
func FuzzPasswordSetCheck(f *testing.F) {
	prefix := strings.Repeat("A", MaxPasswordBytes)
	for _, p := range []string{"", prefix, prefix + "WRONG", prefix[:71] + "\xff\xfe", strings.Repeat("\x00", 100)} {
		f.Add("owner", p)
	}
	f.Add("", "x")
	f.Add("nobody", prefix+"SECRET")
	s := longHashSet(f)
	f.Fuzz(func(t *testing.T, user, password string) {
		err := s.Check(user, password)
		if len(password) > MaxPasswordBytes && !errors.Is(err, ErrPasswordTooLong) {
			t.Fatalf("%d-byte password: Check = %v, want ErrPasswordTooLong", len(password), err)
		}
		if err != nil && !errors.Is(err, ErrPasswordTooLong) && !errors.Is(err, ErrInvalidPassword) {
			t.Fatalf("Check = %v, not one of the sentinels", err)
		}
		if err == nil && (user != "owner" || password != prefix) {
			t.Fatalf("Check(%q, %q) accepted", user, password)
		}
		if got := s.Verify(user, password); got != (err == nil) {
			t.Fatalf("Verify = %v but Check = %v", got, err)
		}
	})
}
