package trail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTrail(t *testing.T, maxSize int64) *Trail {
	t.Helper()
	tr, err := Open(filepath.Join(t.TempDir(), "trail"), Options{MaxFileSize: maxSize})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func appendN(t *testing.T, tr *Trail, n int) []Record {
	t.Helper()
	var recs []Record
	for i := range n {
		r, err := tr.Append(KindApproval, "user:ann", map[string]any{"n": i, "argv": []string{"rm", "-rf", "/tmp/x"}, "decision": "deny"})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustVerify(t *testing.T, dir string) Report {
	t.Helper()
	rep, err := Verify(dir)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %v (%+v)", err, rep)
	}
	return rep
}

func TestTrailAppendAndVerify(t *testing.T) {
	tr := newTrail(t, 0)
	if rep := mustVerify(t, tr.Dir()); rep.Records != 0 {
		t.Fatalf("empty trail: %+v", rep)
	}
	recs := appendN(t, tr, 3)
	r, err := tr.Append(KindElevated, "token:ci", nil)
	if err != nil {
		t.Fatal(err)
	}
	recs = append(recs, r)
	if recs[0].Seq != 1 || recs[0].Prev != Genesis || recs[1].Prev != recs[0].Hash || recs[3].Seq != 4 {
		t.Fatalf("chain: %+v", recs)
	}
	rep := mustVerify(t, tr.Dir())
	if rep.Records != 4 || rep.LastSeq != 4 || rep.LastHash != recs[3].Hash || rep.Files != 1 || rep.HeadSeq != 4 {
		t.Fatalf("report %+v", rep)
	}
	for _, name := range []string{"trail-000001.jsonl", "trail.head"} {
		fi, err := os.Stat(filepath.Join(tr.Dir(), name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", name, fi.Mode(), err)
		}
	}
	if fi, _ := os.Stat(tr.Dir()); fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", fi.Mode())
	}
	lines := readLines(t, filepath.Join(tr.Dir(), "trail-000001.jsonl"))
	var first map[string]any
	if err := json.Unmarshal(lines[0], &first); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"seq", "time", "kind", "identity", "fields", "prev", "hash"} {
		if _, ok := first[k]; !ok {
			t.Errorf("record lacks %q: %s", k, lines[0])
		}
	}
}

func TestTrailAppendRefusesBadInput(t *testing.T) {
	tr := newTrail(t, 0)
	if _, err := tr.Append("Bad Kind", "x", nil); err == nil {
		t.Error("bad kind accepted")
	}
	if _, err := tr.Append(KindPairing, "x", []int{1}); err == nil {
		t.Error("non-object fields accepted")
	}
	if _, err := tr.Append(KindPairing, "x", map[string]string{"big": strings.Repeat("x", MaxRecordSize)}); err == nil {
		t.Error("oversized record accepted")
	}
	if rep := mustVerify(t, tr.Dir()); rep.Records != 0 {
		t.Fatalf("refused appends left records: %+v", rep)
	}
}

// forge rewrites a record's content and recomputes its own hash, as an
// attacker who knows the format would.
func forge(t *testing.T, line []byte, edit func(*Record)) []byte {
	t.Helper()
	rec, err := ParseLine(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil {
		t.Fatal(err)
	}
	edit(&rec)
	out, err := encode(&rec)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTrailTamperingDetected(t *testing.T) {
	type tamper struct {
		name   string
		do     func(t *testing.T, dir string, lines [][]byte) [][]byte // nil result: leave the file
		line   int
		reason string
	}
	cases := []tamper{
		{"edit a field", func(t *testing.T, _ string, l [][]byte) [][]byte {
			l[2] = bytes.Replace(l[2], []byte(`"deny"`), []byte(`"allow-once"`), 1)
			return l
		}, 3, "the record was edited"},
		{"edit identity", func(t *testing.T, _ string, l [][]byte) [][]byte {
			l[1] = bytes.Replace(l[1], []byte("user:ann"), []byte("user:bob"), 1)
			return l
		}, 2, "edited"},
		{"edit and rehash", func(t *testing.T, _ string, l [][]byte) [][]byte {
			l[2] = forge(t, l[2], func(r *Record) { r.Identity = "user:bob" })
			return l
		}, 4, "prev does not match"},
		{"delete a line", func(t *testing.T, _ string, l [][]byte) [][]byte {
			return append(l[:2:2], l[3:]...)
		}, 3, "expected seq 3"},
		{"reorder", func(t *testing.T, _ string, l [][]byte) [][]byte {
			l[2], l[3] = l[3], l[2]
			return l
		}, 3, "expected seq 3"},
		{"duplicate a line", func(t *testing.T, _ string, l [][]byte) [][]byte {
			return append(l[:3:3], l[2:]...)
		}, 4, "reordered, duplicated or inserted"},
		{"insert a forged record", func(t *testing.T, _ string, l [][]byte) [][]byte {
			prev, _ := ParseLine(bytes.TrimSuffix(l[1], []byte("\n")))
			fake := Record{Seq: 3, Time: time.Now().UTC(), Kind: KindApproval, Identity: "user:mallory", Prev: prev.Hash}
			line, _ := encode(&fake)
			return append(l[:2:2], append([][]byte{line}, l[2:]...)...)
		}, 4, "reordered, duplicated or inserted"},
		{"truncate the last record", func(t *testing.T, _ string, l [][]byte) [][]byte {
			return l[:len(l)-2]
		}, 0, "truncated: trail.head records seq 6 but the trail ends at seq 5"},
		{"truncate inside a line", func(t *testing.T, _ string, l [][]byte) [][]byte {
			l[5] = l[5][:40]
			return l
		}, 6, "incomplete record"},
		{"replace the last record", func(t *testing.T, _ string, l [][]byte) [][]byte {
			l[5] = forge(t, l[5], func(r *Record) { r.Kind = KindPairing })
			return l
		}, 0, "end of the trail was replaced"},
		{"garbage line", func(t *testing.T, _ string, l [][]byte) [][]byte {
			l[0] = []byte("hello\n")
			return l
		}, 1, "not a trail record"},
		{"unknown field", func(t *testing.T, _ string, l [][]byte) [][]byte {
			l[0] = bytes.Replace(l[0], []byte(`{"seq"`), []byte(`{"x":1,"seq"`), 1)
			return l
		}, 1, "unknown field"},
		{"remove the head", func(t *testing.T, dir string, l [][]byte) [][]byte {
			os.Remove(filepath.Join(dir, "trail.head"))
			return nil
		}, 0, "missing"},
		{"roll the head back", func(t *testing.T, dir string, l [][]byte) [][]byte {
			rec, _ := ParseLine(bytes.TrimSuffix(l[2], []byte("\n")))
			b, _ := json.Marshal(head{Seq: rec.Seq, Hash: rec.Hash, File: "trail-000001.jsonl"})
			os.WriteFile(filepath.Join(dir, "trail.head"), b, 0o600)
			return nil
		}, 0, "rolled back"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := newTrail(t, 0)
			appendN(t, tr, 6)
			path := filepath.Join(tr.Dir(), "trail-000001.jsonl")
			if out := c.do(t, tr.Dir(), readLines(t, path)); out != nil {
				writeLines(t, path, out)
			}
			rep, err := Verify(tr.Dir())
			var b *Break
			if !errors.As(err, &b) || rep.OK || rep.Break != b {
				t.Fatalf("tampering not detected: %v %+v", err, rep)
			}
			if b.Line != c.line || !strings.Contains(b.Reason, c.reason) {
				t.Fatalf("break %+v, want line %d reason %q", b, c.line, c.reason)
			}
			if b.Line > 0 && b.File != "trail-000001.jsonl" {
				t.Fatalf("file %q", b.File)
			}
		})
	}
}

func TestTrailRotation(t *testing.T) {
	tr := newTrail(t, 700)
	recs := appendN(t, tr, 20)
	rep := mustVerify(t, tr.Dir())
	if rep.Files < 3 || rep.Records != 20 || rep.LastHash != recs[19].Hash {
		t.Fatalf("report %+v", rep)
	}
	for n := 1; n <= rep.Files; n++ {
		fi, err := os.Stat(filepath.Join(tr.Dir(), trailFile(n)))
		if err != nil || fi.Size() > 700 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("file %d: %v %v", n, fi, err)
		}
	}
	// The first record of file 2 carries the last hash of file 1.
	l1 := readLines(t, filepath.Join(tr.Dir(), trailFile(1)))
	l2 := readLines(t, filepath.Join(tr.Dir(), trailFile(2)))
	last1, _ := ParseLine(bytes.TrimSpace(l1[len(l1)-2]))
	first2, _ := ParseLine(bytes.TrimSpace(l2[0]))
	if first2.Prev != last1.Hash || first2.Seq != last1.Seq+1 {
		t.Fatalf("chain across files: %+v -> %+v", last1, first2)
	}

	// Editing the last record of file 1 breaks there.
	p1 := filepath.Join(tr.Dir(), trailFile(1))
	orig := bytes.Join(l1, nil)
	l1[len(l1)-2] = bytes.Replace(l1[len(l1)-2], []byte("user:ann"), []byte("user:eve"), 1)
	writeLines(t, p1, l1)
	if _, err := Verify(tr.Dir()); err == nil || !strings.Contains(err.Error(), trailFile(1)) {
		t.Fatalf("edit in file 1: %v", err)
	}
	os.WriteFile(p1, orig, 0o600)
	mustVerify(t, tr.Dir())

	// Removing a middle file, or the first, is detected.
	p2 := filepath.Join(tr.Dir(), trailFile(2))
	os.Rename(p2, p2+".bak")
	if _, err := Verify(tr.Dir()); err == nil || !strings.Contains(err.Error(), "trail-000002.jsonl: file missing") {
		t.Fatalf("missing middle file: %v", err)
	}
	os.Rename(p2+".bak", p2)
	os.Remove(p1)
	if _, err := Verify(tr.Dir()); err == nil || !strings.Contains(err.Error(), "trail-000001.jsonl: file missing") {
		t.Fatalf("missing first file: %v", err)
	}
}

func TestTrailRefusesTornTail(t *testing.T) {
	tr := newTrail(t, 0)
	appendN(t, tr, 2)
	path := filepath.Join(tr.Dir(), "trail-000001.jsonl")
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"seq":3,"time":"2026-`)
	f.Close()
	if _, err := tr.Append(KindPairing, "x", nil); err == nil || !strings.Contains(err.Error(), "incomplete record") {
		t.Fatalf("append after a torn write: %v", err)
	}
	if _, err := Verify(tr.Dir()); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("verify: %v", err)
	}
}

// TestTrailConcurrentAppenders runs appenders in three processes and two
// goroutines at once against one directory.
func TestTrailConcurrentAppenders(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "trail")
	const perProc, procs, goroutines = 40, 3, 2
	var cmds []*exec.Cmd
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTrailHelperProcess$")
		cmd.Env = append(os.Environ(), "CLAWGUARD_TRAIL_HELPER="+dir, "CLAWGUARD_TRAIL_N="+strconv.Itoa(perProc), "CLAWGUARD_TRAIL_ID=p"+strconv.Itoa(i))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr, err := Open(dir, Options{MaxFileSize: 4096})
			if err != nil {
				t.Error(err)
				return
			}
			for i := range perProc {
				if _, err := tr.Append(KindExecDenied, fmt.Sprintf("g%d", g), map[string]int{"i": i}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("helper: %v", err)
		}
	}
	rep := mustVerify(t, dir)
	if want := uint64(perProc * (procs + goroutines)); rep.Records != want || rep.LastSeq != want {
		t.Fatalf("report %+v, want %d records", rep, want)
	}
}

func TestTrailHelperProcess(t *testing.T) {
	dir := os.Getenv("CLAWGUARD_TRAIL_HELPER")
	if dir == "" {
		t.Skip("helper process for TestTrailConcurrentAppenders")
	}
	n, _ := strconv.Atoi(os.Getenv("CLAWGUARD_TRAIL_N"))
	tr, err := Open(dir, Options{MaxFileSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := tr.Append(KindExecDenied, os.Getenv("CLAWGUARD_TRAIL_ID"), map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
}
