package ship

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The spill directory holds append-only segment files named
// "<seq>.ndjson", seq a zero-padded 20-digit decimal number; records are
// shipped in ascending seq order, lines in file order. Each line is one
// record (a JSON object) followed by '\n'. A segment is written without
// fsync while it is the active one; it is fsynced (file and directory) when
// it is sealed (rotation, drain, shutdown). After a crash the last line of
// the newest segment may be torn: a final line without '\n' is ignored on
// replay, and any line that is not a JSON object is skipped and counted.
//
// Sequence numbers of a fresh directory start at firstSeq so that records
// older than everything on disk (batches that were in flight in memory when
// the server went away) can be written to a new segment before the head
// (seq head-1) without renaming anything.
const (
	firstSeq      = 1_000_000_000_000
	segmentSuffix = ".ndjson"
)

// errSpillFull means the spill reached its byte cap.
var errSpillFull = errors.New("spill directory is full (cap reached)")

type segment struct {
	seq  uint64
	size int64
}

func segmentName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, segmentSuffix) }

// spill is the on-disk overflow of the shipper. It is not safe for
// concurrent use: the shipper serializes calls with its mutex.
type spill struct {
	dir      string
	maxBytes int64 // cap on the sum of segment sizes
	segBytes int64 // rotate the active segment beyond this size
	segs     []segment
	active   *os.File // the last segment of segs when non-nil
	total    int64
}

// openSpill lists the segments already in dir (a previous run's backlog;
// all of them are sealed: appends always start a new segment).
func openSpill(dir string, maxBytes, segBytes int64) (*spill, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create spill directory: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("failed to read spill directory: %w", err)
	}
	s := &spill{dir: dir, maxBytes: maxBytes, segBytes: segBytes}
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, segmentSuffix) || len(name) != 20+len(segmentSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segmentSuffix), 10, 64)
		if err != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		s.segs = append(s.segs, segment{seq: seq, size: fi.Size()})
		s.total += fi.Size()
	}
	slices.SortFunc(s.segs, func(a, b segment) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	return s, nil
}

func (s *spill) empty() bool { return len(s.segs) == 0 }

func (s *spill) path(seq uint64) string { return filepath.Join(s.dir, segmentName(seq)) }

// appendLines writes records at the tail. On a write error the segment is
// truncated back to its previous size so that no partial line is left in the
// middle of a segment.
func (s *spill) appendLines(lines [][]byte) error {
	var n int64
	for _, l := range lines {
		n += int64(len(l)) + 1
	}
	if s.total+n > s.maxBytes {
		return errSpillFull
	}
	if s.active == nil || s.segs[len(s.segs)-1].size >= s.segBytes {
		if err := s.seal(); err != nil {
			return err
		}
		seq := uint64(firstSeq)
		if len(s.segs) > 0 {
			seq = s.segs[len(s.segs)-1].seq + 1
		}
		f, err := os.OpenFile(s.path(seq), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("failed to create spill segment: %w", err)
		}
		s.active = f
		s.segs = append(s.segs, segment{seq: seq})
	}
	buf := make([]byte, 0, n)
	for _, l := range lines {
		buf = append(buf, l...)
		buf = append(buf, '\n')
	}
	last := &s.segs[len(s.segs)-1]
	if _, err := s.active.Write(buf); err != nil {
		// Leave no torn line behind: the next append must start a line.
		if terr := s.active.Truncate(last.size); terr != nil {
			s.active.Close()
			s.active = nil
		}
		return fmt.Errorf("failed to write spill segment: %w", err)
	}
	last.size += n
	s.total += n
	return nil
}

// prependLines writes records older than everything in the spill into a new
// sealed segment before the head.
func (s *spill) prependLines(lines [][]byte) error {
	if len(lines) == 0 {
		return nil
	}
	var buf []byte
	for _, l := range lines {
		buf = append(buf, l...)
		buf = append(buf, '\n')
	}
	n := int64(len(buf))
	if s.total+n > s.maxBytes {
		return errSpillFull
	}
	seq := uint64(firstSeq)
	if len(s.segs) > 0 {
		seq = s.segs[0].seq - 1
	}
	if err := writeSynced(s.path(seq), buf); err != nil {
		return err
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	s.segs = slices.Insert(s.segs, 0, segment{seq: seq, size: n})
	s.total += n
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("failed to create spill segment: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("failed to write spill segment: %w", err)
	}
	return nil
}

// seal fsyncs and closes the active segment (rotation); a no-op without one.
func (s *spill) seal() error {
	if s.active == nil {
		return nil
	}
	f := s.active
	s.active = nil
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		return fmt.Errorf("failed to seal spill segment: %w", err)
	}
	return nil
}

// head seals the active segment if it is the only one left and returns the
// oldest segment, which is then immutable. ok is false when the spill is
// empty.
func (s *spill) head() (segment, bool, error) {
	if len(s.segs) == 0 {
		return segment{}, false, nil
	}
	if len(s.segs) == 1 && s.active != nil {
		if err := s.seal(); err != nil {
			return segment{}, false, err
		}
	}
	return s.segs[0], true, nil
}

// remove deletes the head segment once every record in it was acknowledged.
func (s *spill) remove(seq uint64) error {
	if len(s.segs) == 0 || s.segs[0].seq != seq {
		return fmt.Errorf("spill segment %d is not the head", seq)
	}
	if err := os.Remove(s.path(seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove spill segment: %w", err)
	}
	s.total -= s.segs[0].size
	s.segs = s.segs[1:]
	return syncDir(s.dir)
}

func (s *spill) close() error { return s.seal() }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// readSegment returns the records of a segment file.
func readSegment(path string, maxLine int) (lines [][]byte, skipped int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("failed to open spill segment: %w", err)
	}
	defer f.Close()
	return ReadSegment(f, maxLine)
}

// ReadSegment parses a spill segment: one JSON object per '\n'-terminated
// line. A final line without '\n' (torn by a crash) is ignored; lines longer
// than maxLine bytes or that are not a JSON object are skipped and counted
// in skipped. The returned lines exclude the '\n'.
func ReadSegment(r io.Reader, maxLine int) (lines [][]byte, skipped int, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var cur []byte
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if !tooLong && len(cur)+len(chunk)-1 <= maxLine {
				line := append(cur, chunk[:len(chunk)-1]...)
				if validRecord(line) {
					lines = append(lines, bytes.Clone(line))
				} else {
					skipped++
				}
			} else {
				skipped++
			}
			cur, tooLong = cur[:0], false
		case errors.Is(err, bufio.ErrBufferFull):
			if !tooLong {
				if len(cur)+len(chunk) > maxLine {
					tooLong, cur = true, cur[:0]
				} else {
					cur = append(cur, chunk...)
				}
			}
		case errors.Is(err, io.EOF):
			// A torn tail (len(chunk) > 0) is ignored.
			return lines, skipped, nil
		default:
			return lines, skipped, fmt.Errorf("failed to read spill segment: %w", err)
		}
	}
}

func validRecord(line []byte) bool {
	line = bytes.TrimSpace(line)
	return len(line) >= 2 && line[0] == '{' && json.Valid(line)
}
