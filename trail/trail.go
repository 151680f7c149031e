package trail

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clawguard/clawguard/statedir"
	"github.com/clawguard/clawguard/wire"
)

// The trail is a directory of JSON-lines files, trail-000001.jsonl,
// trail-000002.jsonl, …, each line one Record. Every record carries the
// SHA-256 hash of the one before it (the first record of a file the last
// hash of the previous file), so editing, removing, reordering or
// inserting a record breaks the chain at that point. trail.head holds the
// last record's seq and hash, so cutting records off the end shows too.
//
// The chain is keyless: someone who can write the files and recompute every
// later hash can rewrite history. Keep a copy of the head hash elsewhere
// (`clawguard audit verify-trail --json` prints it) to detect that too.

// Record kinds written by clawguard.
const (
	KindPairing    = "pairing"     // a device pairing approved, rejected or revoked
	KindApproval   = "approval"    // a person's (or a timeout's) decision on an exec ask
	KindElevated   = "elevated"    // an exec on the gateway host
	KindExecDenied = "exec_denied" // an exec the policy or a person refused
)

// Record is one line of the trail.
type Record struct {
	Seq      uint64          `json:"seq"`              // 1 for the first record, then +1
	Time     time.Time       `json:"time"`             // when it was appended (UTC)
	Kind     string          `json:"kind"`             // what happened (Kind*)
	Identity string          `json:"identity"`         // who caused it (X-Clawguard-Identity form)
	Fields   json.RawMessage `json:"fields,omitempty"` // details, a JSON object
	Prev     string          `json:"prev"`             // hash of the previous record
	Hash     string          `json:"hash"`             // SHA-256 over prev and this record
}

// body is a record without its hash: the bytes the hash covers.
type body struct {
	Seq      uint64          `json:"seq"`
	Time     time.Time       `json:"time"`
	Kind     string          `json:"kind"`
	Identity string          `json:"identity"`
	Fields   json.RawMessage `json:"fields,omitempty"`
	Prev     string          `json:"prev"`
}

// Genesis is the prev of the very first record.
var Genesis = strings.Repeat("0", 64)

const (
	// DefaultMaxFileSize is the size after which the trail moves on to a
	// new file.
	DefaultMaxFileSize = 16 << 20
	// MaxRecordSize bounds one line.
	MaxRecordSize = 1 << 20

	headName   = "trail.head"
	lockName   = "trail"
	hashSuffix = len(`,"hash":"`) + 64 + len(`"}`)
)

var (
	fileName = regexp.MustCompile(`^trail-([0-9]{6})\.jsonl$`)
	kindName = regexp.MustCompile(`^[a-z][a-z0-9_.]{0,63}$`)
)

// Dir is the trail's directory inside a state directory.
func Dir(stateDir string) string { return filepath.Join(stateDir, wire.DirTrail) }

func trailFile(n int) string { return fmt.Sprintf("trail-%06d.jsonl", n) }

// Trail appends records. Several Trails, in one process or many, may append
// to the same directory: each append holds the directory's lock.
type Trail struct {
	dir     string
	maxSize int64
	mu      sync.Mutex
}

// Options configure a Trail.
type Options struct {
	// MaxFileSize is the size in bytes after which a new file is started.
	// Default: 16 MiB.
	MaxFileSize int64
}

// Open prepares dir (created 0700) for appending.
func Open(dir string, opts Options) (*Trail, error) {
	if err := statedir.Ensure(dir); err != nil {
		return nil, fmt.Errorf("audit trail: %w", err)
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxFileSize
	}
	return &Trail{dir: dir, maxSize: opts.MaxFileSize}, nil
}

// Dir is the trail's directory.
func (t *Trail) Dir() string { return t.dir }

// head is the content of trail.head.
type head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	File string `json:"file"`
}

// Append writes one record and returns it. fields must marshal to a JSON
// object (nil for none) and must not hold secrets: the trail is not
// encrypted. The record is on disk (fsynced) when Append returns.
func (t *Trail) Append(kind, identity string, fields any) (Record, error) {
	if !kindName.MatchString(kind) {
		return Record{}, fmt.Errorf("audit trail: kind %q is not a lower-case name", kind)
	}
	var raw json.RawMessage
	if fields != nil {
		b, err := json.Marshal(fields)
		if err != nil {
			return Record{}, fmt.Errorf("audit trail: fields: %w", err)
		}
		if len(b) == 0 || b[0] != '{' {
			return Record{}, fmt.Errorf("audit trail: fields must be a JSON object, got %.20s", b)
		}
		if string(b) != "{}" {
			raw = b
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	unlock, err := statedir.Lock(filepath.Join(t.dir, lockName))
	if err != nil {
		return Record{}, fmt.Errorf("audit trail: %w", err)
	}
	defer unlock()

	n, size, last, err := t.tail()
	if err != nil {
		return Record{}, err
	}
	rec := Record{Seq: last.Seq + 1, Time: time.Now().UTC(), Kind: kind, Identity: identity, Fields: raw, Prev: last.Hash}
	line, err := encode(&rec)
	if err != nil {
		return Record{}, err
	}
	if len(line) > MaxRecordSize {
		return Record{}, fmt.Errorf("audit trail: record of %d bytes exceeds %d", len(line), MaxRecordSize)
	}
	if n == 0 || (size > 0 && size+int64(len(line)) > t.maxSize) {
		n++
	}
	name := trailFile(n)
	if err := appendLine(filepath.Join(t.dir, name), line); err != nil {
		return Record{}, err
	}
	hb, _ := json.Marshal(head{Seq: rec.Seq, Hash: rec.Hash, File: name})
	if err := statedir.WriteFile(filepath.Join(t.dir, headName), append(hb, '\n')); err != nil {
		return Record{}, fmt.Errorf("audit trail: %w", err)
	}
	return rec, nil
}

// encode fills in rec.Hash and returns the record's line.
func encode(rec *Record) ([]byte, error) {
	b, err := json.Marshal(body{rec.Seq, rec.Time, rec.Kind, rec.Identity, rec.Fields, rec.Prev})
	if err != nil {
		return nil, fmt.Errorf("audit trail: encode: %w", err)
	}
	rec.Hash = chainHash(rec.Prev, b)
	line := append(b[:len(b)-1], `,"hash":"`...)
	line = append(line, rec.Hash...)
	return append(line, "\"}\n"...), nil
}

// chainHash is SHA-256 over the previous hash, a newline and the record's
// body, in lower-case hex.
func chainHash(prev string, body []byte) string {
	h := sha256.New()
	io.WriteString(h, prev)
	h.Write([]byte{'\n'})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// appendLine appends line to the file in a single write (O_APPEND) and
// fsyncs it; a new file is created 0600 and the directory synced.
func appendLine(path string, line []byte) error {
	_, statErr := os.Lstat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return fmt.Errorf("audit trail: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("audit trail: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("audit trail: close %s: %w", path, err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		return syncDir(filepath.Dir(path))
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit trail: sync %s: %w", dir, err)
	}
	return nil
}

// tail returns the number and size of the newest file and the last
// record (seq 0 and Genesis when there is none). It refuses to continue a
// trail whose last line is torn or does not verify, rather than chain new
// records onto damage.
func (t *Trail) tail() (int, int64, Record, error) {
	files, err := listFiles(t.dir)
	if err != nil {
		return 0, 0, Record{}, err
	}
	if len(files) == 0 {
		return 0, 0, Record{Hash: Genesis}, nil
	}
	newest := files[len(files)-1]
	var newestSize int64
	for i := len(files) - 1; i >= 0; i-- {
		path := filepath.Join(t.dir, trailFile(files[i]))
		line, size, err := lastLine(path)
		if err != nil {
			return 0, 0, Record{}, err
		}
		if i == len(files)-1 {
			newestSize = size
		}
		if line == nil {
			continue // an empty file (a crash right after creating it)
		}
		rec, err := ParseLine(line)
		if err != nil {
			return 0, 0, Record{}, fmt.Errorf("audit trail: last record of %s: %w; run clawguard audit verify-trail", trailFile(files[i]), err)
		}
		return newest, newestSize, rec, nil
	}
	return newest, newestSize, Record{Hash: Genesis}, nil
}

// lastLine returns the last line of path (without its newline) and the
// file's size; nil for an empty file.
func lastLine(path string) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("audit trail: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("audit trail: %w", err)
	}
	size := fi.Size()
	if size == 0 {
		return nil, 0, nil
	}
	n := min(size, int64(MaxRecordSize)+1)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil {
		return nil, 0, fmt.Errorf("audit trail: read %s: %w", path, err)
	}
	if buf[len(buf)-1] != '\n' {
		return nil, 0, fmt.Errorf("audit trail: %s ends with an incomplete record (torn write or truncation); run clawguard audit verify-trail and move the damaged file aside", path)
	}
	buf = buf[:len(buf)-1]
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		buf = buf[i+1:]
	} else if n < size {
		return nil, 0, fmt.Errorf("audit trail: %s: last record exceeds %d bytes", path, MaxRecordSize)
	}
	return buf, size, nil
}

// listFiles returns the numbers of the trail files in dir, ascending.
func listFiles(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit trail: %w", err)
	}
	var nums []int
	for _, e := range entries {
		if m := fileName.FindStringSubmatch(e.Name()); m != nil {
			n, _ := strconv.Atoi(m[1])
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	return nums, nil
}

// ParseLine decodes one trail line (without the newline) and checks that
// its hash matches its content and its own prev. It does not check the
// chain to other records; Verify does.
func ParseLine(line []byte) (Record, error) {
	if len(line) < hashSuffix+2 || !bytes.HasPrefix(line[len(line)-hashSuffix:], []byte(`,"hash":"`)) ||
		!bytes.HasSuffix(line, []byte(`"}`)) {
		return Record{}, errors.New(`not a trail record (it must end with ,"hash":"<64 hex digits>"})`)
	}
	hash := string(line[len(line)-hashSuffix+len(`,"hash":"`) : len(line)-2])
	if !isHex64(hash) {
		return Record{}, errors.New("hash is not 64 lower-case hex digits")
	}
	b := append(line[:len(line)-hashSuffix:len(line)-hashSuffix], '}')
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var rb body
	if err := dec.Decode(&rb); err != nil {
		return Record{}, fmt.Errorf("invalid record: %w", err)
	}
	if dec.More() {
		return Record{}, errors.New("invalid record: data after the record")
	}
	switch {
	case rb.Seq == 0:
		return Record{}, errors.New("invalid record: seq missing or 0")
	case rb.Time.IsZero():
		return Record{}, errors.New("invalid record: time missing")
	case !kindName.MatchString(rb.Kind):
		return Record{}, fmt.Errorf("invalid record: kind %q", rb.Kind)
	case !isHex64(rb.Prev):
		return Record{}, errors.New("invalid record: prev is not 64 lower-case hex digits")
	case len(rb.Fields) > 0 && rb.Fields[0] != '{':
		return Record{}, errors.New("invalid record: fields is not an object")
	}
	rec := Record{Seq: rb.Seq, Time: rb.Time, Kind: rb.Kind, Identity: rb.Identity, Fields: rb.Fields, Prev: rb.Prev, Hash: hash}
	if chainHash(rb.Prev, b) != hash {
		return rec, errEdited
	}
	return rec, nil
}

var errEdited = errors.New("hash does not match the record's content: the record was edited")

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
