// Package zipr reads zip archives as tolerantly as the loaders that consume
// model files, so that a scanner sees every member a loader could load.
//
// PyTorch's reader (miniz, caffe2/serialize/inline_container.cc) and Python's
// zipfile (used by numpy.load for .npz and by Keras) accept archives that
// archive/zip rejects or reads differently. zipr accepts:
//
//   - any general-purpose flag bits (data descriptors, UTF-8, even the
//     encryption bit: the member is then reported as encrypted);
//   - CRC-32 mismatches (never checked: content is what matters);
//   - a local header name different from the central directory name (both
//     are reported);
//   - bytes prepended to the archive (self-extracting style; Python's
//     zipfile shifts every offset by the difference between where the central
//     directory is and where the end record says it is);
//   - zip64 end records and zip64 extra fields.
//
// Members are listed from the central directory, and then from a walk of the
// local headers from the start of the archive: a member present only as a
// local header (a loader reading the archive as a stream would see it) is
// listed too, with [Member.Hidden] set.
//
// Format: APPNOTE.TXT 6.3.10 sections 4.3.6 (layout), 4.3.7 (local header),
// 4.3.12 (central directory header), 4.3.14-16 (zip64 and end records).
package zipr

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrFormat is wrapped by every error about the archive's structure.
var ErrFormat = errors.New("zip: malformed archive")

const (
	sigLocal   = 0x04034b50
	sigCentral = 0x02014b50
	sigEnd     = 0x06054b50
	sigEnd64   = 0x06064b50
	sigLoc64   = 0x07064b50
	sigDD      = 0x08074b50

	endLen     = 22
	centralLen = 46
	localLen   = 30
	maxComment = 65535
)

// Limits bound the work done on one archive.
type Limits struct {
	MaxMembers int // entries listed (central directory + hidden)
}

// Member is one entry of the archive.
type Member struct {
	Name       string // central directory name ("" for hidden members)
	LocalName  string // local header name
	Method     uint16
	Flags      uint16
	CRC32      uint32
	CompSize   uint64
	Size       uint64
	HeaderOff  int64 // offset of the local header in the file
	DataOff    int64 // offset of the member's data in the file
	Hidden     bool  // found by walking local headers, not listed centrally
	Encrypted  bool
	localValid bool
}

// DisplayName is the name loaders look members up by: the central directory
// name, or the local name for hidden members.
func (m *Member) DisplayName() string {
	if m.Hidden || m.Name == "" {
		return m.LocalName
	}
	return m.Name
}

// Archive is an opened archive.
type Archive struct {
	r       io.ReaderAt
	size    int64
	Members []*Member
	// Prepended is the number of bytes before the archive proper.
	Prepended int64
	// Problems lists tolerated irregularities (CRC is never checked).
	Problems []string
}

// Open reads the central directory of the archive in r (size bytes) and
// walks its local headers.
func Open(r io.ReaderAt, size int64, lim Limits) (*Archive, error) {
	if lim.MaxMembers <= 0 {
		lim.MaxMembers = 1 << 20
	}
	a := &Archive{r: r, size: size}
	endOff, err := a.findEnd()
	if err != nil {
		return nil, err
	}
	var end [endLen]byte
	if _, err := r.ReadAt(end[:], endOff); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	count := uint64(binary.LittleEndian.Uint16(end[10:]))
	cdSize := uint64(binary.LittleEndian.Uint32(end[12:]))
	cdOff := uint64(binary.LittleEndian.Uint32(end[16:]))
	cdEnd := uint64(endOff) // where the central directory ends
	// zip64 end of central directory locator, just before the end record.
	if endOff >= 20 {
		var loc [20]byte
		if _, err := r.ReadAt(loc[:], endOff-20); err == nil && binary.LittleEndian.Uint32(loc[:]) == sigLoc64 {
			e64 := int64(binary.LittleEndian.Uint64(loc[8:]))
			var rec [56]byte
			// The locator's offset may be shifted by prepended bytes too:
			// the record sits right before the locator.
			try := []int64{e64, endOff - 20 - 56}
			for _, off := range try {
				if off < 0 || off+56 > size {
					continue
				}
				if _, err := r.ReadAt(rec[:], off); err == nil && binary.LittleEndian.Uint32(rec[:]) == sigEnd64 {
					count = binary.LittleEndian.Uint64(rec[32:])
					cdSize = binary.LittleEndian.Uint64(rec[40:])
					cdOff = binary.LittleEndian.Uint64(rec[48:])
					cdEnd = uint64(off)
					break
				}
			}
		}
	}
	if cdSize > cdEnd || cdOff > uint64(size) {
		return nil, fmt.Errorf("%w: central directory out of range", ErrFormat)
	}
	// Prepended bytes: the central directory really starts at cdEnd-cdSize.
	shift := int64(cdEnd-cdSize) - int64(cdOff)
	if shift < 0 {
		shift = 0
	}
	if !a.sigAt(int64(cdOff)+shift, sigCentral) && count > 0 {
		if a.sigAt(int64(cdOff), sigCentral) {
			shift = 0
		} else {
			return nil, fmt.Errorf("%w: no central directory at offset %d", ErrFormat, cdOff)
		}
	}
	a.Prepended = shift
	if err := a.readCentral(int64(cdOff)+shift, cdSize, shift, lim); err != nil {
		return nil, err
	}
	a.walkLocal(shift, int64(cdOff)+shift, lim)
	return a, nil
}

func (a *Archive) sigAt(off int64, sig uint32) bool {
	var b [4]byte
	if off < 0 || off+4 > a.size {
		return false
	}
	if _, err := a.r.ReadAt(b[:], off); err != nil {
		return false
	}
	return binary.LittleEndian.Uint32(b[:]) == sig
}

// findEnd locates the end of central directory record: the last signature
// in the final 64 KiB + 22 bytes whose comment length fits (as Python's
// zipfile and miniz do, searching backwards).
func (a *Archive) findEnd() (int64, error) {
	if a.size < endLen {
		return 0, fmt.Errorf("%w: too short", ErrFormat)
	}
	n := int64(endLen + maxComment)
	if n > a.size {
		n = a.size
	}
	buf := make([]byte, n)
	if _, err := a.r.ReadAt(buf, a.size-n); err != nil && err != io.EOF {
		return 0, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	sig := []byte{'P', 'K', 5, 6}
	end := len(buf)
	for {
		j := bytes.LastIndex(buf[:end], sig)
		if j < 0 {
			break
		}
		if j+endLen <= len(buf) {
			return a.size - n + int64(j), nil
		}
		end = j + 3
	}
	return 0, fmt.Errorf("%w: no end of central directory record", ErrFormat)
}

func (a *Archive) readCentral(off int64, size uint64, shift int64, lim Limits) error {
	if size > 1<<32 {
		return fmt.Errorf("%w: central directory too large", ErrFormat)
	}
	cd := make([]byte, size)
	if _, err := a.r.ReadAt(cd, off); err != nil && !(err == io.EOF && len(cd) == 0) {
		return fmt.Errorf("%w: reading central directory: %v", ErrFormat, err)
	}
	for len(cd) >= centralLen {
		if binary.LittleEndian.Uint32(cd) != sigCentral {
			break
		}
		if len(a.Members) >= lim.MaxMembers {
			return fmt.Errorf("%w: more than %d members", ErrFormat, lim.MaxMembers)
		}
		m := &Member{
			Flags:    binary.LittleEndian.Uint16(cd[8:]),
			Method:   binary.LittleEndian.Uint16(cd[10:]),
			CRC32:    binary.LittleEndian.Uint32(cd[16:]),
			CompSize: uint64(binary.LittleEndian.Uint32(cd[20:])),
			Size:     uint64(binary.LittleEndian.Uint32(cd[24:])),
		}
		nameLen := int(binary.LittleEndian.Uint16(cd[28:]))
		extraLen := int(binary.LittleEndian.Uint16(cd[30:]))
		commentLen := int(binary.LittleEndian.Uint16(cd[32:]))
		hdr := uint64(binary.LittleEndian.Uint32(cd[42:]))
		if centralLen+nameLen+extraLen+commentLen > len(cd) {
			return fmt.Errorf("%w: central directory entry out of range", ErrFormat)
		}
		m.Name = string(cd[centralLen : centralLen+nameLen])
		extra := cd[centralLen+nameLen : centralLen+nameLen+extraLen]
		zip64Extra(extra, &m.Size, &m.CompSize, &hdr)
		cd = cd[centralLen+nameLen+extraLen+commentLen:]
		m.Encrypted = m.Flags&1 != 0
		if hdr > uint64(a.size) {
			a.Problems = append(a.Problems, fmt.Sprintf("member %q: local header offset out of range", m.Name))
			a.Members = append(a.Members, m)
			continue
		}
		m.HeaderOff = int64(hdr) + shift
		if !a.sigAt(m.HeaderOff, sigLocal) && a.sigAt(int64(hdr), sigLocal) {
			m.HeaderOff = int64(hdr)
		}
		if err := a.readLocal(m); err != nil {
			a.Problems = append(a.Problems, fmt.Sprintf("member %q: %v", m.Name, err))
		} else if m.LocalName != m.Name {
			a.Problems = append(a.Problems, fmt.Sprintf("member %q: local header names it %q", m.Name, m.LocalName))
		}
		a.Members = append(a.Members, m)
	}
	return nil
}

// zip64Extra applies the zip64 extended information extra field (0x0001):
// each field present only if the 32-bit one is saturated.
func zip64Extra(extra []byte, size, csize, off *uint64) {
	for len(extra) >= 4 {
		id := binary.LittleEndian.Uint16(extra)
		n := int(binary.LittleEndian.Uint16(extra[2:]))
		if 4+n > len(extra) {
			return
		}
		body := extra[4 : 4+n]
		extra = extra[4+n:]
		if id != 1 {
			continue
		}
		for _, f := range []*uint64{size, csize, off} {
			if f == nil || *f != 0xffffffff {
				continue
			}
			if len(body) < 8 {
				return
			}
			*f = binary.LittleEndian.Uint64(body)
			body = body[8:]
		}
	}
}

// readLocal reads m's local header and sets LocalName and DataOff.
func (a *Archive) readLocal(m *Member) error {
	var h [localLen]byte
	if _, err := a.r.ReadAt(h[:], m.HeaderOff); err != nil {
		return fmt.Errorf("local header unreadable: %v", err)
	}
	if binary.LittleEndian.Uint32(h[:]) != sigLocal {
		return errors.New("no local header signature")
	}
	nameLen := int64(binary.LittleEndian.Uint16(h[26:]))
	extraLen := int64(binary.LittleEndian.Uint16(h[28:]))
	name := make([]byte, nameLen)
	if _, err := a.r.ReadAt(name, m.HeaderOff+localLen); err != nil {
		return fmt.Errorf("local name unreadable: %v", err)
	}
	m.LocalName = string(name)
	m.DataOff = m.HeaderOff + localLen + nameLen + extraLen
	if m.DataOff > a.size {
		return errors.New("data offset out of range")
	}
	m.localValid = true
	return nil
}

// walkLocal follows local headers from the start of the archive, listing
// members that the central directory does not.
func (a *Archive) walkLocal(start, stop int64, lim Limits) {
	known := map[int64]*Member{}
	for _, m := range a.Members {
		known[m.HeaderOff] = m
	}
	off := start
	for off+localLen <= stop && a.sigAt(off, sigLocal) {
		if len(a.Members) >= lim.MaxMembers {
			return
		}
		var h [localLen]byte
		if _, err := a.r.ReadAt(h[:], off); err != nil {
			return
		}
		flags := binary.LittleEndian.Uint16(h[6:])
		csize := uint64(binary.LittleEndian.Uint32(h[18:]))
		size := uint64(binary.LittleEndian.Uint32(h[22:]))
		nameLen := int64(binary.LittleEndian.Uint16(h[26:]))
		extraLen := int64(binary.LittleEndian.Uint16(h[28:]))
		if m, ok := known[off]; ok {
			// Skip by the central directory's size, which is authoritative
			// (and the only one set when a data descriptor is used).
			if m.DataOff <= off || m.CompSize > uint64(a.size-m.DataOff) {
				return
			}
			off = a.skipDescriptor(m.DataOff+int64(m.CompSize), flags)
			continue
		}
		if off+localLen+nameLen+extraLen > a.size {
			return
		}
		extra := make([]byte, extraLen)
		name := make([]byte, nameLen)
		_, _ = a.r.ReadAt(name, off+localLen)
		_, _ = a.r.ReadAt(extra, off+localLen+nameLen)
		zip64Extra(extra, &size, &csize, nil)
		m := &Member{
			LocalName: string(name), Flags: flags,
			Method:   binary.LittleEndian.Uint16(h[8:]),
			CRC32:    binary.LittleEndian.Uint32(h[14:]),
			CompSize: csize, Size: size, HeaderOff: off,
			DataOff: off + localLen + nameLen + extraLen, Hidden: true,
			Encrypted: flags&1 != 0, localValid: true,
		}
		if flags&8 != 0 && csize == 0 {
			// Size only in a trailing data descriptor: not walkable further.
			a.Problems = append(a.Problems, fmt.Sprintf("hidden member %q: size unknown (data descriptor)", m.LocalName))
			if stop <= m.DataOff {
				return
			}
			m.CompSize = uint64(stop - m.DataOff)
			a.Members = append(a.Members, m)
			return
		}
		if m.DataOff > a.size || csize > uint64(a.size-m.DataOff) {
			return
		}
		a.Problems = append(a.Problems, fmt.Sprintf("member %q is not in the central directory", m.LocalName))
		a.Members = append(a.Members, m)
		off = a.skipDescriptor(m.DataOff+int64(csize), flags)
	}
}

func (a *Archive) skipDescriptor(off int64, flags uint16) int64 {
	if flags&8 == 0 {
		return off
	}
	if a.sigAt(off, sigDD) {
		off += 4
	}
	// crc + sizes: 12 bytes, or 20 with zip64 sizes; pick the one followed
	// by a header signature.
	for _, n := range []int64{12, 20} {
		if a.sigAt(off+n, sigLocal) || a.sigAt(off+n, sigCentral) {
			return off + n
		}
	}
	return off + 12
}

// ErrUnsupported is returned by [Archive.Open] for a compression method or
// encryption zipr cannot decode.
var ErrUnsupported = errors.New("zip: unsupported member")

// Open returns the member's decompressed content, and the compressed size
// it reads from. Stored (0) and deflated (8) members are supported, as by
// PyTorch (stored only) and numpy's savez_compressed (deflate).
func (a *Archive) Open(m *Member) (io.Reader, error) {
	if !m.localValid {
		return nil, fmt.Errorf("%w: no readable local header", ErrFormat)
	}
	if m.Encrypted {
		return nil, fmt.Errorf("%w: encrypted", ErrUnsupported)
	}
	if m.DataOff > a.size || m.CompSize > uint64(a.size-m.DataOff) {
		return nil, fmt.Errorf("%w: member data out of range", ErrFormat)
	}
	csize := int64(m.CompSize)
	sr := io.NewSectionReader(a.r, m.DataOff, csize)
	switch m.Method {
	case 0:
		return sr, nil
	case 8:
		return flate.NewReader(sr), nil
	}
	return nil, fmt.Errorf("%w: compression method %d", ErrUnsupported, m.Method)
}

// Section returns the stored bytes of a stored member for random access.
func (a *Archive) Section(m *Member) (*io.SectionReader, bool) {
	if !m.localValid || m.Method != 0 || m.Encrypted || m.DataOff > a.size || m.CompSize > uint64(a.size-m.DataOff) {
		return nil, false
	}
	return io.NewSectionReader(a.r, m.DataOff, int64(m.CompSize)), true
}
