package watch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/custody-ml/custody/internal/fileutil"
)

// SummaryStore persists what monitors accumulate: the summaries of each
// window and segment, the result of each evaluated window, and a small
// state (the breach streak). Values are opaque bytes owned by the engine.
//
// Implementations must make each Save atomic (a reader sees the old or
// the new value, never a part) and durable when it returns; they need not
// serialise callers (an Engine does). Monitor names are [Monitor.Name]s;
// segment names are arbitrary strings ("" is the whole window).
type SummaryStore interface {
	// SaveSummary replaces the summary of one segment of one window.
	SaveSummary(ctx context.Context, monitor string, window time.Time, segment string, data []byte) error
	// LoadSummaries returns every segment's summary of a window (an empty
	// map when there is none).
	LoadSummaries(ctx context.Context, monitor string, window time.Time) (map[string][]byte, error)
	// Windows lists the windows holding summaries, oldest first.
	Windows(ctx context.Context, monitor string) ([]time.Time, error)
	// DeleteWindow removes a window's summaries (not its result).
	DeleteWindow(ctx context.Context, monitor string, window time.Time) error
	// SaveResult replaces the result of a window; Results lists them,
	// oldest window first, at most limit (the newest; all when 0).
	SaveResult(ctx context.Context, monitor string, window time.Time, data []byte) error
	Results(ctx context.Context, monitor string, limit int) ([][]byte, error)
	// SaveState and LoadState keep a monitor's state (nil when none).
	SaveState(ctx context.Context, monitor string, data []byte) error
	LoadState(ctx context.Context, monitor string) ([]byte, error)
}

// FileStore is a SummaryStore in a directory:
//
//	DIR/MONITOR/windows/UNIXSTART/all.json        the whole window
//	DIR/MONITOR/windows/UNIXSTART/s-HASH.json     a segment; HASH is the hex of the first
//	                                              16 bytes of SHA-256(segment name)
//	DIR/MONITOR/results/UNIXSTART.json
//	DIR/MONITOR/state.json
//
// A summary file holds the segment name as a JSON string, a newline, then
// the data. Files are written atomically (internal/fileutil). One process at a time
// may write a directory.
type FileStore struct {
	dir string
}

// maxStoredFile caps what a FileStore reads back.
const maxStoredFile = 64 << 20

// NewFileStore returns a store in dir, created if needed.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("failed to create the monitor state directory: %w", err)
	}
	return &FileStore{dir: dir}, nil
}

func (s *FileStore) monitorDir(monitor string) (string, error) {
	if !nameRE().MatchString(monitor) {
		return "", fmt.Errorf("monitor name %q: %w", monitor, ErrConfig)
	}
	return filepath.Join(s.dir, monitor), nil
}

func windowName(w time.Time) string { return strconv.FormatInt(w.Unix(), 10) }

func segmentFile(segment string) string {
	if segment == "" {
		return "all.json"
	}
	h := sha256.Sum256([]byte(segment))
	return "s-" + hex.EncodeToString(h[:16]) + ".json"
}

func (s *FileStore) write(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return fileutil.WriteFileAtomic(path, data, 0o640)
}

func readCapped(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxStoredFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxStoredFile)
	}
	return os.ReadFile(path)
}

// SaveSummary implements SummaryStore.
func (s *FileStore) SaveSummary(_ context.Context, monitor string, window time.Time, segment string, data []byte) error {
	d, err := s.monitorDir(monitor)
	if err != nil {
		return err
	}
	name, _ := json.Marshal(segment)
	buf := make([]byte, 0, len(name)+1+len(data))
	buf = append(append(append(buf, name...), '\n'), data...)
	return s.write(filepath.Join(d, "windows", windowName(window), segmentFile(segment)), buf)
}

// LoadSummaries implements SummaryStore.
func (s *FileStore) LoadSummaries(_ context.Context, monitor string, window time.Time) (map[string][]byte, error) {
	d, err := s.monitorDir(monitor)
	if err != nil {
		return nil, err
	}
	wd := filepath.Join(d, "windows", windowName(window))
	ents, err := os.ReadDir(wd)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][]byte{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read window summaries: %w", err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		n := e.Name()
		if n != "all.json" && !(strings.HasPrefix(n, "s-") && strings.HasSuffix(n, ".json")) {
			continue // temporary files
		}
		data, err := readCapped(filepath.Join(wd, n))
		if err != nil {
			return nil, fmt.Errorf("failed to read window summaries: %w", err)
		}
		head, body, ok := bytes.Cut(data, []byte{'\n'})
		var seg string
		if !ok || json.Unmarshal(head, &seg) != nil || segmentFile(seg) != n {
			return nil, fmt.Errorf("%s: not a summary file", filepath.Join(wd, n))
		}
		out[seg] = body
	}
	return out, nil
}

func listUnix(dir, suffix string) ([]time.Time, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []time.Time
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, time.Unix(v, 0).UTC())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out, nil
}

// Windows implements SummaryStore.
func (s *FileStore) Windows(_ context.Context, monitor string) ([]time.Time, error) {
	d, err := s.monitorDir(monitor)
	if err != nil {
		return nil, err
	}
	return listUnix(filepath.Join(d, "windows"), "")
}

// DeleteWindow implements SummaryStore.
func (s *FileStore) DeleteWindow(_ context.Context, monitor string, window time.Time) error {
	d, err := s.monitorDir(monitor)
	if err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(d, "windows", windowName(window)))
}

// SaveResult implements SummaryStore.
func (s *FileStore) SaveResult(_ context.Context, monitor string, window time.Time, data []byte) error {
	d, err := s.monitorDir(monitor)
	if err != nil {
		return err
	}
	return s.write(filepath.Join(d, "results", windowName(window)+".json"), data)
}

// Results implements SummaryStore.
func (s *FileStore) Results(_ context.Context, monitor string, limit int) ([][]byte, error) {
	d, err := s.monitorDir(monitor)
	if err != nil {
		return nil, err
	}
	ws, err := listUnix(filepath.Join(d, "results"), ".json")
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(ws) > limit {
		ws = ws[len(ws)-limit:]
	}
	var out [][]byte
	for _, w := range ws {
		data, err := readCapped(filepath.Join(d, "results", windowName(w)+".json"))
		if err != nil {
			return nil, err
		}
		out = append(out, data)
	}
	return out, nil
}

// SaveState implements SummaryStore.
func (s *FileStore) SaveState(_ context.Context, monitor string, data []byte) error {
	d, err := s.monitorDir(monitor)
	if err != nil {
		return err
	}
	return s.write(filepath.Join(d, "state.json"), data)
}

// LoadState implements SummaryStore.
func (s *FileStore) LoadState(_ context.Context, monitor string) ([]byte, error) {
	d, err := s.monitorDir(monitor)
	if err != nil {
		return nil, err
	}
	data, err := readCapped(filepath.Join(d, "state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}
