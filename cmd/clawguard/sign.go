package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/clawguard/clawguard/httpsig"
	"github.com/clawguard/clawguard/statedir"
	"github.com/clawguard/clawguard/vault"
)

func init() {
	register(&command{
		name:    "sign",
		summary: "send an RFC 9421 HMAC-signed request (or --print the headers for curl)",
		run:     runSign,
	})
}

const signHelp = `Usage: clawguard sign [flags] URL

Sends a request signed with HTTP Message Signatures (RFC 9421, hmac-sha256):
the signature covers @method, @target-uri, the Content-Digest (RFC 9530) of the
body if there is one, and every -H header; it carries created, a random nonce
and the keyid. Prints the response body; exits 1 when the status is 400 or more.

The key never goes on the command line. Take it from exactly one of:
  --key-vault NAME   the clawguard vault entry NAME (see clawguard vault set)
  --key-env VAR      the environment variable VAR
  --key-file PATH    the file PATH
A key is used as its bytes (one trailing newline dropped), or, written as
"base64:...", decoded; either way at least 32 bytes. The gate reads the
"hmac <keyid> <secret>" secret the same way.

Examples:
  clawguard sign --key-id ci --key-vault hmac_ci https://gw.example/hooks/deploy \
      -X POST -H 'Content-Type: application/json' --body-file payload.json
  echo '{"ok":true}' | clawguard sign --key-id ci --key-env CI_HMAC_KEY -X POST --body-file - URL
  clawguard sign --print --key-id ci --key-vault hmac_ci -X POST --body-file payload.json URL > sig.txt
  curl -H @sig.txt --data-binary @payload.json URL     # the same URL, method and body

Flags:
`

// headerFlags collects repeated -H "Name: value" flags.
type headerFlags []string

func (h *headerFlags) String() string { return strings.Join(*h, ", ") }

func (h *headerFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(name, " \t") {
		return fmt.Errorf("header %q: want \"Name: value\"", v)
	}
	*h = append(*h, strings.TrimSpace(name)+": "+strings.TrimSpace(value))
	return nil
}

type signFlags struct {
	method, bodyFile, keyID, label, digest string
	keyVault, keyEnv, keyFile, stateDir    string
	headers                                headerFlags
	print, include, asJSON                 bool
	timeout                                time.Duration
}

func runSign(ctx context.Context, c *cli, args []string) error {
	var f signFlags
	fs := flag.NewFlagSet("clawguard sign", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		io.WriteString(c.stderr, signHelp)
		fs.PrintDefaults()
	}
	for _, name := range []string{"method", "X"} {
		fs.StringVar(&f.method, name, "", "HTTP method (default GET, or POST with --body-file)")
	}
	for _, name := range []string{"header", "H"} {
		fs.Var(&f.headers, name, "header `\"Name: value\"` to send and cover; repeatable")
	}
	fs.StringVar(&f.bodyFile, "body-file", "", "request body from `PATH` (\"-\" for stdin)")
	fs.StringVar(&f.keyID, "key-id", "", "keyid the verifier knows the key by (required)")
	fs.StringVar(&f.keyVault, "key-vault", "", "key from vault entry `NAME`")
	fs.StringVar(&f.keyEnv, "key-env", "", "key from environment variable `VAR`")
	fs.StringVar(&f.keyFile, "key-file", "", "key from file `PATH`")
	fs.StringVar(&f.label, "label", httpsig.DefaultLabel, "signature label")
	fs.StringVar(&f.digest, "digest", httpsig.DigestSHA256, "Content-Digest algorithm: sha-256 or sha-512")
	fs.BoolVar(&f.print, "print", false, "print the headers to add, one \"Name: value\" per line (for curl -H @file), and send nothing")
	fs.BoolVar(&f.include, "include", false, "print the status line and response headers before the body")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON: {\"status\",\"headers\",\"body\"} (with --print: {\"headers\"})")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "give up after this long")
	dirFlag := stateDirFlag(fs)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		return usageError{err.Error()}
	}
	f.stateDir = *dirFlag
	if len(pos) != 1 {
		return usageError{fmt.Sprintf("want exactly one URL, got %d arguments; see clawguard sign --help", len(pos))}
	}
	if f.keyID == "" {
		return usageError{"--key-id is required"}
	}
	key, err := f.loadKey(c)
	if err != nil {
		return err
	}
	req, err := f.request(ctx, c, pos[0])
	if err != nil {
		return err
	}
	if err := httpsig.Sign(req, f.keyID, key, httpsig.WithLabel(f.label), httpsig.WithDigest(f.digest), httpsig.WithHeaders(f.headerNames()...)); err != nil {
		return err
	}
	if f.print {
		return f.printHeaders(c, req.Header)
	}
	return f.send(c, req)
}

// loadKey reads the key from the one source named.
func (f *signFlags) loadKey(c *cli) ([]byte, error) {
	n := 0
	for _, s := range []string{f.keyVault, f.keyEnv, f.keyFile} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, usageError{"give exactly one of --key-vault NAME, --key-env VAR, --key-file PATH (keys are never taken from the command line)"}
	}
	var raw []byte
	var from string
	switch {
	case f.keyVault != "":
		from = "vault entry " + f.keyVault
		v, err := vault.Open(statedir.Resolve(f.stateDir))
		if err != nil {
			return nil, err
		}
		if raw, err = v.Get(f.keyVault); err != nil {
			return nil, err
		}
	case f.keyEnv != "":
		from = "$" + f.keyEnv
		raw = []byte(os.Getenv(f.keyEnv))
		if len(raw) == 0 {
			return nil, fmt.Errorf("key: environment variable %s is not set or empty", f.keyEnv)
		}
	default:
		from = f.keyFile
		fi, err := os.Stat(f.keyFile)
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(c.stderr, "warning: key file %s is readable by others (mode %04o); chmod 600 it\n", f.keyFile, fi.Mode().Perm())
		}
		if raw, err = os.ReadFile(f.keyFile); err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
	}
	key, err := httpsig.ParseKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return key, nil
}

// request builds the request; a file body is streamed (GetBody reopens the
// file for the digest), stdin is read into memory.
func (f *signFlags) request(ctx context.Context, c *cli, target string) (*http.Request, error) {
	method := f.method
	if method == "" {
		method = http.MethodGet
		if f.bodyFile != "" {
			method = http.MethodPost
		}
	}
	req, err := http.NewRequestWithContext(ctx, strings.ToUpper(method), target, nil)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" || req.URL.Host == "" {
		return nil, usageError{fmt.Sprintf("URL %q: want http://host/... or https://host/...", target)}
	}
	if req.URL.User != nil {
		return nil, usageError{"credentials do not belong in the URL"}
	}
	for _, h := range f.headers {
		name, value, _ := strings.Cut(h, ": ")
		if strings.EqualFold(name, "host") {
			req.Host = value
			continue
		}
		req.Header.Add(name, value)
	}
	switch f.bodyFile {
	case "":
	case "-":
		b, err := io.ReadAll(c.stdin)
		if err != nil {
			return nil, fmt.Errorf("reading body from stdin: %w", err)
		}
		req.ContentLength = int64(len(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		req.Body, _ = req.GetBody()
	default:
		fi, err := os.Stat(f.bodyFile)
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		name := f.bodyFile
		req.ContentLength = fi.Size()
		req.GetBody = func() (io.ReadCloser, error) { return os.Open(name) }
		if req.Body, err = req.GetBody(); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
	}
	return req, nil
}

func (f *signFlags) headerNames() []string {
	names := make([]string, 0, len(f.headers))
	for _, h := range f.headers {
		name, _, _ := strings.Cut(h, ":")
		if !strings.EqualFold(name, "host") {
			names = append(names, name)
		}
	}
	return names
}

// printHeaders prints what a client must add to its request: the -H headers
// (they are covered), Content-Digest, Signature-Input and Signature.
func (f *signFlags) printHeaders(c *cli, h http.Header) error {
	names := append(f.headerNames(), "Content-Digest", "Signature-Input", "Signature")
	out := map[string][]string{}
	var lines []string
	for _, n := range names {
		for _, v := range h.Values(n) {
			ck := http.CanonicalHeaderKey(n)
			out[ck] = append(out[ck], v)
			lines = append(lines, ck+": "+v)
		}
	}
	if f.asJSON {
		return c.writeJSON(struct {
			Headers map[string][]string `json:"headers"`
		}{out})
	}
	for _, l := range lines {
		fmt.Fprintln(c.stdout, l)
	}
	return nil
}

type signResponse struct {
	Status     int                 `json:"status"`
	Headers    map[string][]string `json:"headers"`
	Body       *string             `json:"body,omitempty"`
	BodyBase64 *string             `json:"body_base64,omitempty"` // when the body is not UTF-8
}

func (f *signFlags) send(c *cli, req *http.Request) error {
	client := &http.Client{
		Timeout: f.timeout,
		// A redirect would be a new, unsigned request: show it instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if f.asJSON {
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return fmt.Errorf("reading response: %w", err)
		}
		out := signResponse{Status: resp.StatusCode, Headers: resp.Header}
		if s := string(body); utf8.ValidString(s) {
			out.Body = &s
		} else {
			b := base64.StdEncoding.EncodeToString(body)
			out.BodyBase64 = &b
		}
		if err := c.writeJSON(out); err != nil {
			return err
		}
	} else {
		if f.include {
			fmt.Fprintf(c.stdout, "%s %s\n", resp.Proto, resp.Status)
			keys := make([]string, 0, len(resp.Header))
			for k := range resp.Header {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				for _, v := range resp.Header[k] {
					fmt.Fprintf(c.stdout, "%s: %s\n", k, v)
				}
			}
			fmt.Fprintln(c.stdout)
		}
		if _, err := io.Copy(c.stdout, resp.Body); err != nil {
			return fmt.Errorf("reading response: %w", err)
		}
	}
	if resp.StatusCode >= 400 {
		fmt.Fprintf(c.stderr, "clawguard sign: server answered %s\n", resp.Status)
		return exitCode(1)
	}
	return nil
}

var _ flag.Value = (*headerFlags)(nil)
