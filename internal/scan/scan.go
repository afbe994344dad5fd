// Package scan decides whether model files can be loaded without running
// code they carry, without loading them.
//
// Every file is identified by its magic bytes, whatever its name, and
// analysed as what the loaders that accept it would see: pickles (alone,
// stacked, inside zip, tar, npy/npz, gzip/bz2/xz/zlib/lzma-compressed joblib
// files and legacy PyTorch files) by the symbolic unpickler of
// [github.com/custody-ml/custody/internal/scan/pickle], checked against a
// default-deny [policy.Policy]; safetensors and GGUF headers by strict
// validators; Keras configurations for Lambda layers; ONNX external data
// locations for paths escaping the model directory. Tensor bytes are skipped,
// not parsed.
//
// # Verdicts
//
// Each file gets the worst verdict of its findings, in the order
// [Safe] < [Unknown] < [Malformed] < [Dangerous]. Nothing is ever executed.
// See docs/scan.md.
package scan

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/custody-ml/custody/internal/scan/pickle"
	"github.com/custody-ml/custody/internal/scan/policy"
)

// Verdict is the outcome for one file or finding.
type Verdict int

const (
	// Safe: fully analysed, nothing outside the allowlist.
	Safe Verdict = iota
	// Unknown: imports or content neither allowed nor known-dangerous.
	Unknown
	// Malformed: could not be fully analysed (invalid, truncated, over a
	// resource limit, or an unsupported encoding).
	Malformed
	// Dangerous: imports or calls known to run code, or structure a
	// benign writer never produces (computed imports, escaping paths).
	Dangerous
)

var verdictNames = [...]string{"safe", "unknown", "malformed", "dangerous"}

func (v Verdict) String() string {
	if v < 0 || int(v) >= len(verdictNames) {
		return "invalid"
	}
	return verdictNames[v]
}

// MarshalText implements encoding.TextMarshaler.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (v *Verdict) UnmarshalText(b []byte) error {
	for i, n := range verdictNames {
		if n == string(b) {
			*v = Verdict(i)
			return nil
		}
	}
	return fmt.Errorf("unknown verdict %q", b)
}

// Finding is one reason for a verdict. Verdict Safe marks a note that does
// not affect the file's verdict (a tolerated irregularity).
type Finding struct {
	Verdict Verdict `json:"verdict"`
	Rule    string  `json:"rule"`
	// Member is the path inside containers, levels joined by "!"
	// ("model.zip!archive/data.pkl"); empty for the file itself.
	Member string `json:"member,omitempty"`
	// Offset is the byte offset in the member's decoded content (the file
	// itself when Member is empty).
	Offset  int64  `json:"offset"`
	Module  string `json:"module,omitempty"`
	Name    string `json:"name,omitempty"`
	Opcode  string `json:"opcode,omitempty"`
	Message string `json:"message"`
	Source  string `json:"source,omitempty"`
}

// Result is the outcome for one file.
type Result struct {
	Path     string    `json:"path"`
	Verdict  Verdict   `json:"verdict"`
	Format   string    `json:"format"`
	Findings []Finding `json:"findings"`
	// Suppressed counts findings beyond Limits.MaxFindings.
	Suppressed int `json:"suppressed,omitempty"`
}

// Limits bound the work done on one file.
type Limits struct {
	Pickle pickle.Limits
	// MaxDepth is the deepest nesting of containers (zip in zip, gzip in tar).
	MaxDepth int
	// MaxDecompressed caps the bytes produced by decompression per file.
	MaxDecompressed int64
	// MaxRatio caps decompressed/compressed once over 64 MiB decompressed.
	MaxRatio int64
	// MaxBuffer caps the bytes copied per file to random-access archives
	// inside compressed streams (a zip in a tar.gz, a deflated zip in a
	// zip): up to 32 MiB each in memory, beyond that in a temporary file.
	MaxBuffer int64
	// MaxMembers caps the members of one archive.
	MaxMembers int
	// MaxFindings caps the findings listed per file (the verdict still
	// counts every one).
	MaxFindings int
	// H5Window is how many bytes of an HDF5 file are searched for a Keras
	// model configuration.
	H5Window int64
}

// DefaultLimits returns the limits used by the CLI.
func DefaultLimits() Limits {
	return Limits{
		Pickle:          pickle.DefaultLimits(),
		MaxDepth:        6,
		MaxDecompressed: 16 << 30,
		MaxRatio:        1000,
		MaxBuffer:       16 << 30,
		MaxMembers:      1 << 16,
		MaxFindings:     200,
		H5Window:        1 << 30,
	}
}

// Scanner scans files. It is safe for concurrent use.
type Scanner struct {
	policy *policy.Policy
	limits Limits
}

// New returns a scanner with policy p (nil: [policy.Default]) and limits l
// (zero fields take their default).
func New(p *policy.Policy, l Limits) *Scanner {
	if p == nil {
		p = policy.Default()
	}
	d := DefaultLimits()
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxDecompressed <= 0 {
		l.MaxDecompressed = d.MaxDecompressed
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = d.MaxRatio
	}
	if l.MaxBuffer <= 0 {
		l.MaxBuffer = d.MaxBuffer
	}
	if l.MaxMembers <= 0 {
		l.MaxMembers = d.MaxMembers
	}
	if l.MaxFindings <= 0 {
		l.MaxFindings = d.MaxFindings
	}
	if l.H5Window <= 0 {
		l.H5Window = d.H5Window
	}
	return &Scanner{policy: p, limits: l}
}

// ScanFile scans the regular file at path. The error is non-nil only when
// the file cannot be read at all (open, stat); read errors part-way are
// reported as Malformed findings.
func (s *Scanner) ScanFile(ctx context.Context, path string) (Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return Result{Path: path}, fmt.Errorf("failed to open: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Result{Path: path}, fmt.Errorf("failed to stat: %w", err)
	}
	if !st.Mode().IsRegular() {
		return Result{Path: path}, fmt.Errorf("failed to scan %s: not a regular file", path)
	}
	return s.Scan(ctx, path, f, st.Size()), nil
}

// ScanReader scans the stream r (standard input, a pipe), reported under
// name. Formats that need random access (zip) or a known size (safetensors,
// GGUF) are copied within Limits.MaxBuffer first.
func (s *Scanner) ScanReader(ctx context.Context, name string, r io.Reader) Result {
	j := &job{s: s, ctx: ctx, res: &Result{Path: name, Findings: []Finding{}}, seen: map[string]bool{}}
	defer j.cleanup()
	j.res.Format = j.scan(blob{r: &ctxReader{ctx, r}, size: -1}, "", 0)
	return *j.res
}

// Scan scans size bytes of r, reported under name.
func (s *Scanner) Scan(ctx context.Context, name string, r io.ReaderAt, size int64) Result {
	j := &job{s: s, ctx: ctx, res: &Result{Path: name, Findings: []Finding{}}, seen: map[string]bool{}}
	defer j.cleanup()
	j.res.Format = j.scan(blob{ra: ctxReaderAt{ctx, r}, size: size}, "", 0)
	return *j.res
}

// job is the state of one file's scan.
type job struct {
	s            *Scanner
	ctx          context.Context
	res          *Result
	seen         map[string]bool
	decompressed int64
	buffered     int64 // bytes copied by random() across nesting levels
	temps        []*os.File
	members      int // archive members scanned, across nesting levels
}

func (j *job) add(f Finding) {
	key := fmt.Sprintf("%d|%s|%s|%s|%s|%s", f.Verdict, f.Rule, f.Member, f.Module, f.Name, f.Message)
	if f.Module != "" || f.Name != "" {
		key = fmt.Sprintf("%d|%s|%s|%s|%s", f.Verdict, f.Rule, f.Member, f.Module, f.Name)
	}
	if f.Verdict > j.res.Verdict {
		j.res.Verdict = f.Verdict
	}
	if j.seen[key] {
		return
	}
	j.seen[key] = true
	if len(j.res.Findings) >= j.s.limits.MaxFindings {
		j.res.Suppressed++
		return
	}
	j.res.Findings = append(j.res.Findings, f)
}

func (j *job) malformed(member string, off int64, rule, format string, args ...any) {
	j.add(Finding{Verdict: Malformed, Rule: rule, Member: member, Offset: off, Message: fmt.Sprintf(format, args...)})
}

// blob is content to scan: random access when ra is set, else a stream.
type blob struct {
	ra   io.ReaderAt
	size int64 // -1 if unknown (streams only)
	r    io.Reader
}

func (b blob) reader() io.Reader {
	if b.ra != nil {
		return io.NewSectionReader(b.ra, 0, b.size)
	}
	return b.r
}

// memBuffer is the largest stream random() keeps in memory; bigger ones go
// to a temporary file, removed when the file's scan ends.
const memBuffer = 32 << 20

// random returns random access to b, copying a stream (a member of a
// compressed container) into memory or a temporary file, within the file's
// MaxBuffer budget.
func (j *job) random(b blob, member, what string) (blob, bool) {
	if b.ra != nil {
		return b, true
	}
	// One budget for the whole file, so nested compressed archives cannot
	// multiply it.
	lim := j.s.limits.MaxBuffer - j.buffered
	over := func() (blob, bool) {
		j.malformed(member, 0, "limit/buffer", "%s inside a compressed container exceeds the %d-byte buffer budget; not analysed", what, j.s.limits.MaxBuffer)
		return blob{}, false
	}
	data, err := io.ReadAll(io.LimitReader(b.r, min(lim, memBuffer)+1))
	if err != nil {
		j.malformed(member, 0, "io", "reading %s: %v", what, err)
		return blob{}, false
	}
	if int64(len(data)) > lim {
		return over()
	}
	if len(data) <= memBuffer {
		j.buffered += int64(len(data))
		return blob{ra: bytes.NewReader(data), size: int64(len(data))}, true
	}
	f, err := os.CreateTemp("", "custody-scan-*")
	if err != nil {
		j.malformed(member, 0, "io", "buffering %s: %v", what, err)
		return blob{}, false
	}
	j.temps = append(j.temps, f)
	n, err := io.Copy(f, io.MultiReader(bytes.NewReader(data), io.LimitReader(b.r, lim+1-int64(len(data)))))
	if err != nil {
		j.malformed(member, 0, "io", "buffering %s: %v", what, err)
		return blob{}, false
	}
	if n > lim {
		return over()
	}
	j.buffered += n
	return blob{ra: f, size: n}, true
}

func (j *job) cleanup() {
	for _, f := range j.temps {
		f.Close()
		os.Remove(f.Name())
	}
}

func join(member, name string) string {
	if member == "" {
		return name
	}
	return member + "!" + name
}

// Magic numbers.
var (
	magicZip    = []byte("PK\x03\x04")
	magicZipE   = []byte("PK\x05\x06")
	magicNpy    = []byte("\x93NUMPY")
	magicGzip   = []byte{0x1f, 0x8b}
	magicBz2    = []byte("BZh")
	magicXz     = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	magicLzma   = []byte{0x5d, 0, 0}
	magicHDF5   = []byte("\x89HDF\r\n\x1a\n")
	magicGGUF   = []byte("GGUF")
	headPeekLen = 512
)

// scan identifies b and dispatches; it returns the format name.
func (j *job) scan(b blob, member string, depth int) string {
	if err := j.ctx.Err(); err != nil {
		j.malformed(member, 0, "io", "scan interrupted: %v", err)
		return "interrupted"
	}
	if depth > j.s.limits.MaxDepth {
		j.malformed(member, 0, "limit/depth", "containers nested deeper than %d", j.s.limits.MaxDepth)
		return "nested"
	}
	var head []byte
	if b.ra != nil {
		n := int64(headPeekLen)
		if b.size < n {
			n = b.size
		}
		head = make([]byte, n)
		if k, err := b.ra.ReadAt(head, 0); err != nil && !(err == io.EOF && int64(k) == n) {
			j.malformed(member, 0, "io", "read: %v", err)
			return "unreadable"
		}
	} else {
		br := bufio.NewReaderSize(b.r, 64<<10)
		head, _ = br.Peek(headPeekLen)
		head = append([]byte(nil), head...)
		b.r = br
	}
	if len(head) == 0 {
		return "empty"
	}
	format := j.dispatch(b, head, member, depth)
	// Polyglots: a file that is also a pickle from byte 0 runs under
	// torch.load or pickle.load whatever its declared format (a renamed
	// .bin, a tar whose first member name is opcodes).
	if b.ra != nil && format != "pickle" && pickle.IsOpcode(head[0]) {
		j.polyglot(b, member, format)
	}
	// Bytes prepended to a zip: Python's zipfile (numpy.load, Keras) reads
	// the archive, PyTorch reads the prefix as a legacy pickle.
	if b.ra != nil && format != "zip" && !bytes.HasPrefix(head, magicZip) && b.size >= 22 {
		if j.tailZip(b, member, depth) {
			format += "+zip"
		}
	}
	return format
}

func (j *job) dispatch(b blob, head []byte, member string, depth int) string {
	switch {
	case bytes.HasPrefix(head, magicZip) || bytes.HasPrefix(head, magicZipE):
		rb, ok := j.random(b, member, "zip archive")
		if !ok {
			return "zip"
		}
		j.scanZip(rb, member, depth)
		return "zip"
	case bytes.HasPrefix(head, magicNpy):
		j.scanNpy(b, member)
		return "npy"
	case bytes.HasPrefix(head, magicGzip), bytes.HasPrefix(head, magicBz2) && len(head) > 3 && head[3] >= '1' && head[3] <= '9',
		bytes.HasPrefix(head, magicXz), isZlib(head), isLzma(head):
		return j.scanCompressed(b, head, member, depth)
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		j.scanTar(b, member, depth)
		return "tar"
	case bytes.HasPrefix(head, magicHDF5):
		j.scanH5(b, member)
		return "hdf5"
	case bytes.HasPrefix(head, magicGGUF):
		j.scanGGUF(b, member)
		return "gguf"
	case isSafetensors(head):
		j.scanSafetensors(b, member)
		return "safetensors"
	case len(head) >= 2 && head[0] == pickleProto && head[1] <= 5:
		j.scanPickle(b.reader(), member, 0, false)
		return "pickle"
	}
	if head[0] == 0x08 && b.ra != nil && j.scanONNX(b, member) {
		return "onnx"
	}
	// The pickle check comes first: a GIF header ("G" is BINFLOAT) can run
	// on into attacker-chosen opcodes, so an image is only an image if it
	// is not also a pickle.
	if pickle.IsOpcode(head[0]) && j.scanPickle(b.reader(), member, 0, true) {
		return "pickle"
	}
	if isImage(head) {
		return "image"
	}
	if head[0] == 0x0a && isSentencePiece(b) {
		return "sentencepiece"
	}
	if isText(head) {
		return "text"
	}
	j.add(Finding{Verdict: Unknown, Rule: "format/unrecognised", Member: member,
		Message: "unrecognised binary format: not analysed"})
	return "unrecognised"
}

const pickleProto = 0x80

func isZlib(h []byte) bool {
	// joblib's zlib files start with 0x78 (deflate, 32 KiB window); the
	// header checksum makes the 16-bit value a multiple of 31.
	return len(h) >= 2 && h[0] == 0x78 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0
}

func isLzma(h []byte) bool {
	// .lzma ("LZMA alone"), as joblib writes it: properties byte 0x5d, then
	// the dictionary size; joblib uses the default preset.
	return len(h) >= 13 && bytes.HasPrefix(h, magicLzma)
}

func isSafetensors(h []byte) bool {
	if len(h) < 9 {
		return false
	}
	n := uint64(h[0]) | uint64(h[1])<<8 | uint64(h[2])<<16 | uint64(h[3])<<24 |
		uint64(h[4])<<32 | uint64(h[5])<<40 | uint64(h[6])<<48 | uint64(h[7])<<56
	return h[8] == '{' && n > 1 && n < 1<<40
}

// isText reports whether head looks like UTF-8 text (config, README).
func isText(head []byte) bool {
	// A multi-byte rune may be cut at the end of the peek window.
	for i := 0; i < 4 && len(head) > 0 && !utf8.Valid(head); i++ {
		head = head[:len(head)-1]
	}
	if !utf8.Valid(head) {
		return false
	}
	for _, c := range head {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' {
			return false
		}
		if c == 0x7f {
			return false
		}
	}
	return true
}

// scanPickle analyses the pickles of r. In speculative mode (content that
// merely starts with an opcode byte) a stream that fails before any import,
// call or complete pickle is not a pickle: it reports false and nothing.
func (j *job) scanPickle(r io.Reader, member string, base int64, speculative bool) bool {
	var events []pickle.Event
	opts := pickle.Options{Limits: j.s.limits.Pickle, Joblib: true}
	if speculative {
		opts.OnEvent = func(e pickle.Event) { e.Offset += base; events = append(events, e) }
	} else {
		opts.OnEvent = func(e pickle.Event) { e.Offset += base; j.event(member, e) }
	}
	sum, err := pickle.AnalyzeStream(r, opts)
	if speculative {
		if err != nil && len(events) == 0 && sum.Pickles == 0 {
			return false
		}
		for _, e := range events {
			j.event(member, e)
		}
	}
	if err != nil {
		j.pickleErr(member, base, err)
	}
	switch {
	case sum.Trailing && sum.TrailingBlank:
		j.add(Finding{Verdict: Safe, Rule: "note/trailing-bytes", Member: member, Offset: base + sum.Consumed,
			Message: "whitespace after the last pickle"})
	case sum.Trailing:
		// pickle.load ignores them, but a loader with its own framing
		// (raw data, then more pickles) could read further pickles.
		j.add(Finding{Verdict: Unknown, Rule: "pickle/trailing-data", Member: member, Offset: base + sum.Consumed,
			Message: "data after the last pickle is not a pickle and is not analysed"})
	}
	if sum.LegacyTorch {
		j.add(Finding{Verdict: Safe, Rule: "note/legacy-torch", Member: member, Offset: base + sum.Consumed,
			Message: "PyTorch legacy format: storage bytes after the 5th pickle are raw tensor data, not analysed"})
	}
	return true
}

// pickleErr reports a pickle analysis error as a malformed finding.
func (j *job) pickleErr(member string, base int64, err error) {
	var pe *pickle.Error
	off := int64(0)
	if errors.As(err, &pe) {
		off = pe.Offset + base
	}
	rule := "pickle/malformed"
	if errors.Is(err, pickle.ErrLimit) {
		rule = "limit/pickle"
	} else if errors.Is(err, pickle.ErrTruncated) {
		rule = "pickle/truncated"
	}
	j.malformed(member, off, rule, "%v", err)
}

// polyglot reads b as a pickle from byte 0 and reports imports (and
// computed imports, BUILD on globals) found before the first error. Extension
// codes and calls alone are not reported: random binary data produces them
// and a stock interpreter fails on them.
func (j *job) polyglot(b blob, member, format string) {
	var events []pickle.Event
	_, _ = pickle.AnalyzeStream(b.reader(), pickle.Options{Limits: j.s.limits.Pickle,
		OnEvent: func(e pickle.Event) {
			if e.Kind == pickle.Import || e.Kind == pickle.ComputedImport || e.Kind == pickle.BuildGlobal {
				events = append(events, e)
			}
		}})
	if len(events) == 0 {
		return
	}
	j.add(Finding{Verdict: Unknown, Rule: "format/polyglot", Member: member,
		Message: "the " + format + " file is also a pickle from its first byte; pickle.load and torch.load would run it"})
	for _, e := range events {
		j.event(member, e)
	}
}

// event turns a pickle event into a finding under the policy.
func (j *job) event(member string, e pickle.Event) {
	f := Finding{Member: member, Offset: e.Offset, Opcode: e.Op}
	switch e.Kind {
	case pickle.Import:
		d := j.s.policy.Check(e.Module, e.Name)
		f.Module, f.Name = clip(e.Module), clip(e.Name)
		full := f.Module + "." + f.Name
		switch d.Class {
		case policy.Allowed:
			return
		case policy.Denied:
			f.Verdict, f.Rule, f.Source = Dangerous, "pickle/denied-import", d.Entry.Source
			f.Message = fmt.Sprintf("imports %s, denied by %q: %s", full, d.Entry.Name, d.Entry.Reason)
		default:
			f.Verdict, f.Rule = Unknown, "pickle/unknown-import"
			f.Message = fmt.Sprintf("imports %s, which the policy neither allows nor denies", full)
		}
	case pickle.Extension:
		f.Verdict, f.Rule = Unknown, "pickle/extension-code"
		f.Name = fmt.Sprint(e.Code)
		f.Message = fmt.Sprintf("%s imports extension code %d from copyreg's registry, which cannot be resolved statically", e.Op, e.Code)
	case pickle.ComputedImport:
		f.Verdict, f.Rule = Dangerous, "pickle/computed-import"
		f.Message = "STACK_GLOBAL operands are not literal strings: the import name is computed at load time"
	case pickle.ComputedCall:
		f.Verdict, f.Rule = Unknown, "pickle/computed-call"
		f.Message = e.Op + " calls a value that is not an imported global"
	case pickle.BuildGlobal:
		f.Verdict, f.Rule = Dangerous, "pickle/build-global"
		f.Module, f.Name = e.Module, e.Name
		f.Message = "BUILD sets attributes on an imported object, mutating module state"
	}
	j.add(f)
}

// countingReader counts decompressed bytes and enforces the bomb limits.
type countingReader struct {
	j      *job
	r      io.Reader
	in     *countReader
	member string
	out    int64
	err    error
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

var errBomb = errors.New("decompression limit exceeded")

func (c *countingReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if err := c.j.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.j.decompressed += int64(n)
	c.out += int64(n)
	l := c.j.s.limits
	if c.j.decompressed > l.MaxDecompressed {
		c.err = fmt.Errorf("%w: more than %d bytes", errBomb, l.MaxDecompressed)
		c.j.malformed(c.member, 0, "limit/decompression", "%v", c.err)
		return n, c.err
	}
	if c.in != nil && c.out > 64<<20 && c.out/(c.in.n+1) > l.MaxRatio {
		c.err = fmt.Errorf("%w: ratio over %d", errBomb, l.MaxRatio)
		c.j.malformed(c.member, 0, "limit/decompression", "%v", c.err)
		return n, c.err
	}
	return n, err
}

// ctxReaderAt fails reads once ctx is done, so a long scan stops promptly
// on SIGINT.
type ctxReaderAt struct {
	ctx context.Context
	ra  io.ReaderAt
}

func (c ctxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.ra.ReadAt(p, off)
}

// clip shortens attacker-sized names (a GLOBAL argument may be 1 MiB) for
// findings.
func clip(s string) string {
	const max = 256
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
