package pairing

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawguard/clawguard/wire"
)

func testKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func openStore(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newRequest makes a pending request for a fresh key from client.
func newRequest(t testing.TB, client string) Request {
	t.Helper()
	k := testKey(t)
	pub := k.Public().(ed25519.PublicKey)
	now := time.Now().UTC()
	return Request{ID: newRequestID(), DeviceID: DeviceID(pub), PublicKey: b64.EncodeToString(pub), Name: "dev",
		ClientIP: "192.0.2.1", Client: client, Status: StatusPending, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
}

var testLimits = Limits{MaxPending: DefaultMaxPending, PerClient: DefaultPerClient}

func TestStoreConcurrentWritesAllPersisted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := openStore(t, dir, Options{})
	var wg sync.WaitGroup
	tokens := make([]string, 200)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := s.submit(newRequest(t, fmt.Sprint(i)), true, "auto:local", testLimits)
			if err != nil {
				t.Error(err)
			}
			tokens[i] = tok
		}()
	}
	wg.Wait()
	s.Close()
	// A fresh store reads every device back, and every token authenticates.
	s2 := openStore(t, dir, Options{})
	if n := len(s2.Devices()); n != len(tokens) {
		t.Fatalf("%d devices after reopening, want %d", n, len(tokens))
	}
	for i, tok := range tokens {
		if _, ok := s2.Authenticate(tok); !ok {
			t.Fatalf("token %d lost", i)
		}
	}
	fi, _ := os.Stat(filepath.Join(dir, wire.FileDevices))
	di, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Fatalf("modes: file %o dir %o", fi.Mode().Perm(), di.Mode().Perm())
	}
}

func TestStoreSeesOtherWritersWithinWatchInterval(t *testing.T) {
	dir := t.TempDir()
	a := openStore(t, dir, Options{WatchInterval: 50 * time.Millisecond})
	b := openStore(t, dir, Options{WatchInterval: 50 * time.Millisecond})
	r := newRequest(t, "c")
	tok, err := a.submit(r, true, "auto:local", testLimits)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, func() bool { _, ok := b.Authenticate(tok); return ok })
	// b's write starts from a's state (re-read under the lock), so a's
	// device is not lost by b's revocation of it.
	if _, err := b.Revoke(r.DeviceID, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, func() bool { _, ok := a.Authenticate(tok); return !ok })
	if d := a.Devices(); len(d) != 1 || d[0].Status != DeviceRevoked || d[0].RevokedBy != "test" {
		t.Fatalf("a's view after b's revocation: %+v", d)
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
	}
}

func TestStoreCorruptFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, wire.FileDevices)
	os.WriteFile(path, []byte(`{"version":1,"devices":[{"device_id":"zz"}]}`), 0o600)
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "devices[0]") {
		t.Fatalf("corrupt file at open: %v", err)
	}

	os.Remove(path)
	s := openStore(t, dir, Options{WatchInterval: 20 * time.Millisecond})
	tok, err := s.submit(newRequest(t, "c"), true, "auto:local", testLimits)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	// Damaged by someone else: tokens fail closed, writes refuse to
	// overwrite it, nothing is lost.
	os.WriteFile(path, []byte("{not json"), 0o600)
	waitFor(t, time.Second, func() bool { _, ok := s.Authenticate(tok); return !ok })
	if s.Err() == nil {
		t.Fatal("Err() is nil for a damaged file")
	}
	if _, err := s.submit(newRequest(t, "c"), true, "auto:local", testLimits); err == nil || !strings.Contains(err.Error(), "unreadable") {
		t.Fatalf("write over a damaged file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "{not json" {
		t.Fatal("the damaged file was overwritten")
	}
	// Fixed: back to normal.
	os.WriteFile(path+".fix", good, 0o600)
	os.Rename(path+".fix", path)
	waitFor(t, time.Second, func() bool { _, ok := s.Authenticate(tok); return ok })
}

func TestStoreLastSeenFlushedInBatches(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{WatchInterval: 10 * time.Millisecond, FlushInterval: 50 * time.Millisecond})
	r := newRequest(t, "c")
	if _, err := s.submit(r, true, "auto:local", testLimits); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, wire.FileDevices))
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 1000 {
		s.Touch(r.DeviceID, "192.0.2.9", at.Add(time.Duration(i)))
	}
	// Listed at once, before any write.
	if d := s.Devices(); d[0].LastSeen == nil || d[0].LastIP != "192.0.2.9" {
		t.Fatalf("unflushed last seen not listed: %+v", d[0])
	}
	if fi2, _ := os.Stat(filepath.Join(dir, wire.FileDevices)); !fi2.ModTime().Equal(fi.ModTime()) {
		t.Fatal("Touch wrote the file")
	}
	waitFor(t, 2*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, wire.FileDevices))
		return strings.Contains(string(b), `"last_ip": "192.0.2.9"`)
	})
}

func TestStorePendingLimits(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	lim := Limits{MaxPending: 5, PerClient: 2}
	for i := range 2 {
		if _, err := s.submit(newRequest(t, "greedy"), false, "", lim); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	var e *Error
	if _, err := s.submit(newRequest(t, "greedy"), false, "", lim); !errors.As(err, &e) || e.Status != http.StatusTooManyRequests {
		t.Fatalf("third request of one client: %v", err)
	}
	for i := range 3 {
		if _, err := s.submit(newRequest(t, fmt.Sprint("other", i)), false, "", lim); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.submit(newRequest(t, "late"), false, "", lim); !errors.As(err, &e) || e.Code != CodeTooMany {
		t.Fatalf("request past the total: %v", err)
	}
	// Auto-approval of a local device is never blocked by remote floods.
	if _, err := s.submit(newRequest(t, "late"), true, "auto:local", lim); err != nil {
		t.Fatalf("local request while full: %v", err)
	}
}

func TestStoreExpiredRequestsPruned(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{WatchInterval: 10 * time.Millisecond})
	r := newRequest(t, "c")
	r.ExpiresAt = time.Now().Add(50 * time.Millisecond)
	if _, err := s.submit(r, false, "", testLimits); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, wire.FileDevices))
		return !strings.Contains(string(b), r.ID)
	})
}

func TestDeliverOnceAndRevokedBeforeCollecting(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	r := newRequest(t, "c")
	s.submit(r, false, "", testLimits)
	if _, err := s.Approve(r.ID, "local", time.Minute); err != nil {
		t.Fatal(err)
	}
	tok, status, err := s.deliver(r.ID, r.DeviceID)
	if err != nil || status != StatusApproved || tok == "" {
		t.Fatalf("deliver: %q %s %v", tok, status, err)
	}
	if tok2, _, err := s.deliver(r.ID, r.DeviceID); err == nil || tok2 != "" {
		t.Fatalf("second deliver: %q %v", tok2, err)
	}

	r2 := newRequest(t, "c")
	s.submit(r2, false, "", testLimits)
	s.Approve(r2.ID, "local", time.Minute)
	s.Revoke(r2.DeviceID, "local")
	if tok, _, err := s.deliver(r2.ID, r2.DeviceID); err == nil || tok != "" {
		t.Fatalf("token delivered after revocation: %q %v", tok, err)
	}
}

func TestCSRFToken(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	now := time.Now()
	tok, _ := s.csrfToken("local", now)
	if !s.checkCSRF("local", tok, now) {
		t.Fatal("valid token refused")
	}
	other := openStore(t, t.TempDir(), Options{})
	for name, c := range map[string]struct {
		s   *Store
		id  string
		tok string
		at  time.Time
	}{
		"another identity": {s, "user:alice", tok, now},
		"expired":          {s, "local", tok, now.Add(csrfTTL + time.Second)},
		"another key":      {other, "local", tok, now},
		"extended expiry":  {s, "local", strings.Replace(tok, "v1.1", "v1.2", 1), now},
		"empty":            {s, "local", "", now},
		"garbage":          {s, "local", "v1.x.y", now},
		"truncated mac":    {s, "local", tok[:len(tok)-2], now},
	} {
		if c.s.checkCSRF(c.id, c.tok, c.at) {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestNoncesBoundedAndSingleUse(t *testing.T) {
	n := newNonces(time.Minute, 10, 3)
	now := time.Now()
	var mine []string
	for range 3 {
		c, err := n.issue("a", now)
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, c.Nonce)
	}
	if _, err := n.issue("a", now); err == nil {
		t.Fatal("fourth outstanding nonce of one client issued")
	}
	if !n.use(mine[0], now) || n.use(mine[0], now) {
		t.Fatal("nonce not single-use")
	}
	if _, err := n.issue("a", now); err != nil {
		t.Fatalf("after using one: %v", err)
	}
	for i := range 7 { // 3 of a's and 7 others fill the 10
		if _, err := n.issue(fmt.Sprint("c", i), now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.issue("z", now); err == nil || n.len() != 10 {
		t.Fatalf("past capacity: %v (len %d)", err, n.len())
	}
	// Expired nonces make room and are not usable.
	later := now.Add(2 * time.Minute)
	if n.valid(mine[1], later) || n.use(mine[1], later) {
		t.Fatal("expired nonce usable")
	}
	if _, err := n.issue("z", later); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}
