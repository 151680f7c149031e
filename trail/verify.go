package trail

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Report is the result of Verify.
type Report struct {
	Dir      string `json:"dir"`
	OK       bool   `json:"ok"`
	Files    int    `json:"files"`
	Records  uint64 `json:"records"`
	LastSeq  uint64 `json:"last_seq"`
	LastHash string `json:"last_hash"`
	HeadSeq  uint64 `json:"head_seq"` // what trail.head records; below LastSeq after a crash mid-append
	Break    *Break `json:"break,omitempty"`

	beforeLast string // hash of the record before the last
}

// Break locates the first place where the trail does not verify.
type Break struct {
	File   string `json:"file"`
	Line   int    `json:"line,omitempty"` // 1-based; 0 when the problem is the file as a whole
	Seq    uint64 `json:"seq,omitempty"`  // the record's seq, when it could be read
	Reason string `json:"reason"`
}

func (b *Break) Error() string {
	var loc string
	switch {
	case b.Line > 0 && b.Seq > 0:
		loc = fmt.Sprintf("%s line %d (seq %d)", b.File, b.Line, b.Seq)
	case b.Line > 0:
		loc = fmt.Sprintf("%s line %d", b.File, b.Line)
	default:
		loc = b.File
	}
	return "audit trail broken at " + loc + ": " + b.Reason
}

// Verify checks every record in dir: each line parses, its hash
// matches its content, seq counts up by one from 1 across all files, each
// prev is the previous record's hash, no file is missing, and the end
// matches trail.head. It reports the first break in the report and as a
// *Break error; other errors are I/O failures. A directory without
// trail files verifies with zero records.
func Verify(dir string) (Report, error) {
	rep := Report{Dir: dir, LastHash: Genesis}
	files, err := listFiles(dir)
	if err != nil {
		return rep, err
	}
	fail := func(b *Break) (Report, error) {
		rep.Break = b
		return rep, b
	}
	hd, err := readHead(dir)
	if err != nil {
		return fail(&Break{File: headName, Reason: err.Error()})
	}
	rep.Files = len(files)
	for i, n := range files {
		name := trailFile(n)
		if n != i+1 {
			return fail(&Break{File: trailFile(i + 1), Reason: "file missing: records were removed"})
		}
		if b, err := verifyFile(filepath.Join(dir, name), name, &rep); b != nil || err != nil {
			if err != nil {
				return rep, err
			}
			return fail(b)
		}
	}
	switch {
	case hd == nil && rep.Records > 0:
		return fail(&Break{File: headName, Reason: fmt.Sprintf("missing, but the trail has %d records (removed, or a crash during the very first append)", rep.Records)})
	case hd == nil:
	case hd.Seq > rep.LastSeq:
		return fail(&Break{File: hd.File, Reason: fmt.Sprintf("truncated: trail.head records seq %d but the trail ends at seq %d", hd.Seq, rep.LastSeq)})
	case hd.Seq == rep.LastSeq && hd.Hash != rep.LastHash:
		return fail(&Break{File: hd.File, Seq: hd.Seq, Reason: "the last record's hash differs from trail.head's: the end of the trail was replaced"})
	case hd.Seq < rep.LastSeq && (hd.Seq+1 < rep.LastSeq || hd.Hash != rep.beforeLast):
		// One record past the head is a crash between writing a record
		// and the head; anything else is not.
		return fail(&Break{File: hd.File, Reason: fmt.Sprintf("trail.head records seq %d but the trail goes on to %d: the head was rolled back or records were rewritten", hd.Seq, rep.LastSeq)})
	}
	if hd != nil {
		rep.HeadSeq = hd.Seq
	}
	rep.OK = true
	return rep, nil
}

// verifyFile checks one file's records against the chain so far in rep.
func verifyFile(path, name string, rep *Report) (*Break, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit trail: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for line := 1; ; line++ {
		raw, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			raw, err = readLong(r, raw)
		}
		if len(raw) == 0 && err != nil {
			break // end of file
		}
		if err != nil || !bytes.HasSuffix(raw, []byte("\n")) {
			if len(raw) > MaxRecordSize {
				return &Break{File: name, Line: line, Reason: fmt.Sprintf("line longer than %d bytes", MaxRecordSize)}, nil
			}
			return &Break{File: name, Line: line, Reason: "incomplete record without a newline: the file was truncated or a write was torn"}, nil
		}
		rec, perr := ParseLine(raw[:len(raw)-1])
		want := rep.LastSeq + 1
		switch {
		case errors.Is(perr, errEdited):
			return &Break{File: name, Line: line, Seq: rec.Seq, Reason: perr.Error()}, nil
		case perr != nil:
			return &Break{File: name, Line: line, Reason: perr.Error()}, nil
		case rec.Seq > want:
			return &Break{File: name, Line: line, Seq: rec.Seq, Reason: fmt.Sprintf("expected seq %d: records before this one were removed or moved", want)}, nil
		case rec.Seq < want:
			return &Break{File: name, Line: line, Seq: rec.Seq, Reason: fmt.Sprintf("expected seq %d: records were reordered, duplicated or inserted", want)}, nil
		case rec.Prev != rep.LastHash:
			return &Break{File: name, Line: line, Seq: rec.Seq, Reason: "prev does not match the previous record's hash: a record was replaced or inserted here"}, nil
		}
		rep.Records++
		rep.LastSeq, rep.LastHash, rep.beforeLast = rec.Seq, rec.Hash, rep.LastHash
	}
	return nil, nil
}

// readLong finishes reading a line longer than the reader's buffer, up to
// just past MaxRecordSize.
func readLong(r *bufio.Reader, first []byte) ([]byte, error) {
	buf := append([]byte(nil), first...)
	for len(buf) <= MaxRecordSize {
		more, err := r.ReadSlice('\n')
		buf = append(buf, more...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return buf, err
		}
	}
	return buf, errors.New("line too long")
}

func readHead(dir string) (*head, error) {
	b, err := os.ReadFile(filepath.Join(dir, headName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var h head
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("unreadable: %w", err)
	}
	if !isHex64(h.Hash) || !fileName.MatchString(h.File) {
		return nil, errors.New("unreadable: bad hash or file name")
	}
	return &h, nil
}
