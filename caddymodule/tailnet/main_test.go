package tailnet

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/tsnet"
	"github.com/clawguard/clawguard/tsnet/tsnettest"
)

// TestMain keeps every tsnet node offline and on loopback (tsnettest),
// before anything runs.
func TestMain(m *testing.M) {
	tsnettest.Offline()
	tsnet.SetRetry(50*time.Millisecond, 200*time.Millisecond)
	flag.Parse()
	os.Exit(runTests(m))
}

// Process-wide Caddy setup shared by the tests: the admin endpoint (it
// outlives caddy.Stop, so every config uses the same one) and a storage
// directory, so tests never touch ~/.local/share/caddy.
var (
	adminPort  int
	storageDir string
)

func runTests(m *testing.M) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	adminPort = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if storageDir, err = os.MkdirTemp("", "tsnet-caddy-storage-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(storageDir)
	// Caddy starts process-wide goroutines (the admin server) on its first
	// load; start them here so the per-test goroutine checks see only ours.
	if err := testcaddy.LoadJSON(caddyJSON(nil, nil, "")); err != nil {
		fmt.Fprintln(os.Stderr, "warming up caddy:", err)
		return 1
	}
	testcaddy.Stop()
	return m.Run()
}

// whoami is a test-only Caddy handler that answers with Identify's view
// of the request, so tests see exactly what the gate will see.
type whoami struct {
	Tag string `json:"tag,omitempty"` // echoed, to tell configs apart
}

func (whoami) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.tailnet_test_whoami", New: func() caddy.Module { return new(whoami) }}
}

func (h whoami) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	return tsnettest.Identify(w, r, h.Tag)
}

func init() { caddy.RegisterModule(whoami{}) }

// site is one HTTP server of a test config.
type site struct {
	listen string // e.g. "127.0.0.1:1234" or "tailnet/gate:80"
	tag    string
	tls    bool // serve HTTPS with testCert
}

// testCert is a self-signed certificate for tlsName that TLS test sites
// serve (loaded as PEM: no issuance, no storage locks).
var testCert = func() struct{ certPEM, keyPEM []byte } {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		DNSNames:     []string{tlsName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err)
	}
	return struct{ certPEM, keyPEM []byte }{
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
}()

// tlsName is the name testCert is for.
const tlsName = "gate.test"

// caddyJSON builds a config: the tailnet app as given and one whoami
// server per site. A non-empty logTo sends Caddy's log, at debug level, to
// the logBuffer of that name.
func caddyJSON(t testing.TB, tailnetApp any, logTo string, sites ...site) []byte {
	servers := map[string]any{}
	tlsApp := map[string]any{"disable_storage_clean": true, "disable_storage_check": true}
	apps := map[string]any{"tls": tlsApp}
	for i, s := range sites {
		srv := map[string]any{
			"listen":          []string{s.listen},
			"automatic_https": map[string]any{"disable": true},
			"routes": []any{map[string]any{"handle": []any{map[string]any{
				"handler": "tailnet_test_whoami", "tag": s.tag,
			}}}},
		}
		if s.tls {
			srv["tls_connection_policies"] = []any{map[string]any{}}
			tlsApp["certificates"] = map[string]any{"load_pem": []any{map[string]any{
				"certificate": string(testCert.certPEM), "key": string(testCert.keyPEM),
			}}}
		}
		servers[fmt.Sprintf("srv%d", i)] = srv
	}
	if tailnetApp != nil {
		apps["tailnet"] = tailnetApp
	}
	if len(servers) > 0 {
		apps["http"] = map[string]any{"servers": servers}
	}
	cfg := map[string]any{
		"admin": map[string]any{
			"listen": fmt.Sprintf("127.0.0.1:%d", adminPort),
			"config": map[string]any{"persist": false},
		},
		"storage": map[string]any{"module": "file_system", "root": storageDir},
		"apps":    apps,
	}
	if logTo != "" {
		cfg["logging"] = map[string]any{"logs": map[string]any{"default": map[string]any{
			"level":  "DEBUG",
			"writer": map[string]any{"output": "tailnet_test_buffer", "name": logTo},
		}}}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		panic(err) // maps of strings always marshal
	}
	return b
}

// loadCaddy loads cfg and stops Caddy when the test ends, before the
// tailnet it uses goes away.
func loadCaddy(t testing.TB, cfg []byte) {
	t.Helper()
	if err := testcaddy.LoadJSON(cfg); err != nil {
		t.Fatalf("caddy load: %v", err)
	}
	t.Cleanup(func() {
		testcaddy.Stop()
		waitNoNodes(t)
	})
}

// waitNoNodes waits for the nodes to stop. Caddy closes an old config's
// listeners in the background (caddy.Stop and a reload return once the
// servers have begun shutting down), and the last close stops the node.
func waitNoNodes(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for len(tsnet.Health()) > 0 {
		if time.Now().After(deadline) {
			t.Errorf("nodes still running: %+v", tsnet.Health())
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// getLocal fetches url from the host (not over the tailnet).
func getLocal(t testing.TB, url string) tsnettest.Answer {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return tsnettest.DecodeAnswer(t, res)
}

// logBuffer is a test-only Caddy log writer that keeps everything in
// memory (Caddy's file writer leaves a goroutine behind per file).
type logBuffer struct {
	Name string `json:"name"`
}

var logBuffers sync.Map // name -> *lockedBuffer

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Close() error { return nil }

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (logBuffer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "caddy.logging.writers.tailnet_test_buffer", New: func() caddy.Module { return new(logBuffer) }}
}

func (w logBuffer) String() string    { return "test buffer " + w.Name }
func (w logBuffer) WriterKey() string { return "tailnet_test_buffer:" + w.Name }
func (w logBuffer) OpenWriter() (io.WriteCloser, error) {
	b, _ := logBuffers.LoadOrStore(w.Name, new(lockedBuffer))
	return b.(*lockedBuffer), nil
}

func init() { caddy.RegisterModule(logBuffer{}) }
