package trail

import (
	"bytes"
	"testing"
	"time"
)

// FuzzParseLine: any line is either refused or parses into a record whose
// hash matches the bytes it covers; never a panic, never a changed input.
func FuzzParseLine(f *testing.F) {
	rec := Record{Seq: 7, Time: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), Kind: KindApproval,
		Identity: "device:ab12", Fields: []byte(`{"argv":["rm","-rf","/"],"decision":"deny"}`), Prev: Genesis}
	line, err := encode(&rec)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bytes.TrimSuffix(line, []byte("\n")))
	f.Add([]byte(`{"seq":1,"time":"2026-01-01T00:00:00Z","kind":"x","identity":"","prev":"` + Genesis + `","hash":"` + Genesis + `"}`))
	f.Add([]byte(`{"hash":"` + Genesis + `"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, line []byte) {
		orig := bytes.Clone(line)
		rec, err := ParseLine(line)
		if !bytes.Equal(orig, line) {
			t.Fatal("ParseLine modified its input")
		}
		if err != nil {
			return
		}
		if rec.Seq == 0 || !isHex64(rec.Hash) || !isHex64(rec.Prev) {
			t.Fatalf("accepted %+v", rec)
		}
		b := append(line[:len(line)-hashSuffix:len(line)-hashSuffix], '}')
		if chainHash(rec.Prev, b) != rec.Hash {
			t.Fatal("accepted a record whose hash does not match")
		}
	})
}
