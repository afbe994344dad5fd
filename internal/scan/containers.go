package scan

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/custody-ml/custody/internal/scan/pickle"
	"github.com/custody-ml/custody/internal/scan/zipr"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// torchData matches PyTorch storage records: <archive>/data/<key>. torch.load
// reads them as raw bytes (never unpickles them), so they are skipped.
var torchData = regexp.MustCompile(`^(.*/)?data/[^/]+$`)

func (j *job) scanZip(b blob, member string, depth int) {
	a, err := zipr.Open(b.ra, b.size, zipr.Limits{MaxMembers: j.s.limits.MaxMembers})
	if err != nil {
		j.malformed(member, 0, "zip/malformed", "%v", err)
		return
	}
	j.scanArchive(a, member, depth)
}

// tailZip looks for a zip archive at the end of content that does not start
// with one (prepended bytes) and scans it if it is a real archive.
func (j *job) tailZip(b blob, member string, depth int) bool {
	a, err := zipr.Open(b.ra, b.size, zipr.Limits{MaxMembers: j.s.limits.MaxMembers})
	if err != nil || len(a.Members) == 0 {
		return false
	}
	valid := 0
	for _, m := range a.Members {
		if m.DataOff > 0 {
			valid++
		}
	}
	if valid == 0 {
		return false
	}
	j.add(Finding{Verdict: Safe, Rule: "note/zip-prepended", Member: member, Offset: a.Prepended,
		Message: fmt.Sprintf("zip archive after %d prepended bytes: zipfile-based loaders read the archive, torch.load reads the prefix", a.Prepended)})
	j.scanArchive(a, member, depth)
	return true
}

func (j *job) scanArchive(a *zipr.Archive, member string, depth int) {
	for _, p := range a.Problems {
		j.add(Finding{Verdict: Safe, Rule: "note/zip-irregular", Member: member, Message: p})
	}
	// PyTorch zip checkpoints: <prefix>/data.pkl and storages under
	// <prefix>/data/. TorchScript archives also carry code/.
	torch := false
	for _, m := range a.Members {
		if n := m.DisplayName(); n == "data.pkl" || strings.HasSuffix(n, "/data.pkl") {
			torch = true
		}
	}
	keras := false
	for _, m := range a.Members {
		if m.DisplayName() == "config.json" {
			keras = true
		}
	}
	overlapping := overlaps(a)
	for _, m := range a.Members {
		if err := j.ctx.Err(); err != nil {
			j.malformed(member, 0, "io", "scan interrupted: %v", err)
			return
		}
		name := m.DisplayName()
		mpath := join(member, name)
		if overlapping[m] {
			// No writer produces overlapping members; scanning each would
			// let one archive (a zip quine) cost exponential work.
			j.malformed(mpath, 0, "zip/overlap", "member data overlaps another member; not analysed")
			continue
		}
		j.members++
		if j.members > j.s.limits.MaxMembers {
			j.malformed(member, 0, "limit/members", "more than %d archive members in one file", j.s.limits.MaxMembers)
			return
		}
		if torch && torchData.MatchString(m.Name) && torchData.MatchString(m.LocalName) && !strings.HasSuffix(name, ".pkl") {
			// Raw tensor storage: torch.load never unpickles it. Still
			// sniffed: one that holds a complete pickle is reported.
			if sec, ok := a.Section(m); ok {
				j.sniffStorage(sec, mpath)
			}
			continue
		}
		if torch && strings.Contains(name, "/code/") && strings.HasSuffix(name, ".py") {
			j.add(Finding{Verdict: Unknown, Rule: "torch/torchscript", Member: mpath,
				Message: "TorchScript code: executed by torch.jit.load, not analysed"})
			continue
		}
		if strings.HasSuffix(name, "/") && m.Size == 0 {
			continue // directory entry
		}
		r, err := a.Open(m)
		if err != nil {
			j.malformed(mpath, 0, "zip/member", "%v", err)
			continue
		}
		var mb blob
		if sec, ok := a.Section(m); ok {
			mb = blob{ra: sec, size: sec.Size()}
		} else {
			// The compressed size is known up front: a fixed counter gives
			// the ratio check its denominator.
			fixed := &countReader{n: int64(m.CompSize)}
			mb = blob{r: &countingReader{j: j, r: r, in: fixed, member: mpath}, size: int64(m.Size)}
		}
		if keras && name == "config.json" {
			j.scanKerasConfig(mb.reader(), mpath)
			continue
		}
		j.scan(mb, mpath, depth+1)
	}
}

func (j *job) scanTar(b blob, member string, depth int) {
	// With random access the reader seeks over member data (archive/tar
	// uses io.Seeker) and each member is scanned in place.
	var pos *posReader
	src := b.reader()
	if b.ra != nil {
		pos = &posReader{ra: b.ra, size: b.size}
		src = pos
	}
	tr := tar.NewReader(src)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			j.malformed(member, 0, "tar/malformed", "%v", err)
			return
		}
		n++
		if n > j.s.limits.MaxMembers {
			j.malformed(member, 0, "limit/members", "more than %d members", j.s.limits.MaxMembers)
			return
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := join(member, path.Clean(h.Name))
		if base := path.Clean(h.Name); base == "storages" || base == "tensors" {
			// Pre-1.0 torch.save tar: pickles interleaved with raw data.
			br := bufio.NewReader(io.LimitReader(tr, h.Size))
			if head, _ := br.Peek(2); len(head) == 2 && head[0] == pickleProto {
				j.scanLegacyTarMember(br, name, base)
				continue
			}
			j.scan(blob{r: br, size: h.Size}, name, depth+1)
			continue
		}
		_, sparse := h.PAXRecords["GNU.sparse.major"]
		if pos != nil && !sparse && pos.off <= b.size && h.Size <= b.size-pos.off {
			j.scan(blob{ra: io.NewSectionReader(b.ra, pos.off, h.Size), size: h.Size}, name, depth+1)
			continue
		}
		j.scan(blob{r: tr, size: h.Size}, name, depth+1)
	}
}

// posReader reads and seeks over a ReaderAt, exposing its position.
type posReader struct {
	ra   io.ReaderAt
	off  int64
	size int64
}

func (p *posReader) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	if int64(len(b)) > p.size-p.off {
		b = b[:p.size-p.off]
	}
	n, err := p.ra.ReadAt(b, p.off)
	p.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (p *posReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += p.off
	case io.SeekEnd:
		offset += p.size
	}
	if offset < 0 {
		return 0, errors.New("negative position")
	}
	p.off = offset
	return offset, nil
}

// scanCompressed decompresses a gzip, bzip2, xz, zlib or lzma stream (as
// joblib.dump(compress=...) writes them) and scans what it holds.
func (j *job) scanCompressed(b blob, head []byte, member string, depth int) string {
	in := &countReader{r: b.reader()}
	var (
		r    io.Reader
		err  error
		kind string
	)
	switch {
	case bytes.HasPrefix(head, magicGzip):
		kind = "gzip"
		var gz *gzip.Reader
		gz, err = gzip.NewReader(in)
		r = gz
	case bytes.HasPrefix(head, magicBz2):
		kind = "bzip2"
		r = bzip2.NewReader(in)
	case bytes.HasPrefix(head, magicXz):
		kind = "xz"
		r, err = xz.NewReader(in)
	case isZlib(head):
		kind = "zlib"
		r, err = zlib.NewReader(in)
	default:
		kind = "lzma"
		r, err = lzma.NewReader(in)
	}
	if err == nil && (kind == "zlib" || kind == "lzma") {
		// Weak magic: commit only if the first bytes decompress.
		br := bufio.NewReader(r)
		if _, perr := br.Peek(1); perr != nil {
			err = perr
		}
		r = br
	}
	if err != nil {
		if kind == "zlib" || kind == "lzma" {
			// Weak magic: not compressed after all.
			if isText(head) {
				return "text"
			}
			j.add(Finding{Verdict: Unknown, Rule: "format/unrecognised", Member: member,
				Message: "unrecognised binary format: not analysed"})
			return "unrecognised"
		}
		j.malformed(member, 0, "compression/malformed", "%s: %v", kind, err)
		return kind
	}
	cr := &countingReader{j: j, r: r, in: in, member: member}
	inner := j.scan(blob{r: cr, size: -1}, member, depth+1)
	// Drain to surface corrupt compressed data after the analysed part.
	if _, err := io.Copy(io.Discard, cr); err != nil && cr.err == nil {
		j.malformed(member, 0, "compression/malformed", "%s: %v", kind, err)
	}
	return kind + ">" + inner
}

// sniffStorage reports a tensor storage record that starts with a PROTO
// opcode and holds a complete, well-formed pickle. Random tensor bytes almost
// never do (and fail within a few bytes), so this costs nothing and raises no
// false alarms on real checkpoints.
func (j *job) sniffStorage(sec *io.SectionReader, member string) {
	var h [2]byte
	if _, err := sec.ReadAt(h[:], 0); err != nil || h[0] != pickleProto || h[1] < 2 || h[1] > 5 {
		return
	}
	var events []pickle.Event
	sum, err := pickle.AnalyzeStream(io.NewSectionReader(sec, 0, sec.Size()), pickle.Options{
		Limits: j.s.limits.Pickle, OnEvent: func(e pickle.Event) { events = append(events, e) }})
	if err != nil || sum.Pickles == 0 || len(events) == 0 {
		return
	}
	j.add(Finding{Verdict: Safe, Rule: "note/storage-pickle", Member: member,
		Message: "tensor storage record holds a pickle (torch.load reads it as raw bytes)"})
	for _, e := range events {
		j.event(member, e)
	}
}

// overlaps returns the members whose header-to-end range overlaps an
// earlier member's (by offset).
func overlaps(a *zipr.Archive) map[*zipr.Member]bool {
	ms := make([]*zipr.Member, 0, len(a.Members))
	for _, m := range a.Members {
		if m.DataOff > 0 {
			ms = append(ms, m)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].HeaderOff < ms[j].HeaderOff })
	out := map[*zipr.Member]bool{}
	var end int64 = -1
	for _, m := range ms {
		if m.HeaderOff < end {
			out[m] = true
		}
		if e := m.DataOff + int64(m.CompSize); e > end {
			end = e
		}
	}
	return out
}
