// Package safetensors validates the header of a safetensors file without
// reading its tensor data.
//
// # Format
//
//	u64 little-endian N | N bytes of UTF-8 JSON header | data
//
// The header is a JSON object mapping tensor names to
// {"dtype": D, "shape": [u64...], "data_offsets": [begin, end]} plus an
// optional "__metadata__" object whose values are all strings. The rules are
// those of the reference implementation (huggingface/safetensors,
// safetensors/src/tensor.rs, Metadata::validate):
//
//   - N <= 100,000,000 (MAX_HEADER_SIZE) and 8+N <= file size;
//   - the header starts with '{' and is valid UTF-8 JSON (trailing spaces
//     are allowed: writers pad the header to an 8-byte boundary);
//   - dtype is a known name; shape entries are non-negative integers;
//   - sorted by begin offset, tensors are contiguous from 0, do not overlap,
//     and end - begin equals the element count times the dtype size;
//   - the last end equals the data size exactly.
//
// Stricter than the reference: a key appearing twice is rejected (two parsers
// could disagree about which one wins).
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"sort"
	"unicode/utf8"
)

// MaxHeaderSize is the reference implementation's cap on N.
const MaxHeaderSize = 100_000_000

// ErrInvalid is wrapped by every validation failure.
var ErrInvalid = errors.New("invalid safetensors")

// dtypeBits is the size in bits of each dtype the reference implementation
// knows (safetensors/src/tensor.rs, enum Dtype).
var dtypeBits = map[string]uint64{
	"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
	"I16": 16, "U16": 16, "F16": 16, "BF16": 16,
	"I32": 32, "U32": 32, "F32": 32, "C64": 64,
	"F64": 64, "I64": 64, "U64": 64,
	"F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}

// Tensor is one validated tensor entry.
type Tensor struct {
	Name       string
	DType      string
	Shape      []uint64
	Begin, End uint64
}

// Header is a validated header.
type Header struct {
	Size     uint64 // N
	Tensors  []Tensor
	Metadata map[string]string
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Validate reads the header from r, a file of size bytes, and checks it.
// It reads exactly 8+N bytes.
func Validate(r io.Reader, size int64) (*Header, error) {
	var nb [8]byte
	if _, err := io.ReadFull(r, nb[:]); err != nil {
		return nil, invalid("header size unreadable")
	}
	n := binary.LittleEndian.Uint64(nb[:])
	if n > MaxHeaderSize {
		return nil, invalid("header size %d exceeds %d", n, MaxHeaderSize)
	}
	if size < 8 || n > uint64(size-8) {
		return nil, invalid("header size %d larger than the file", n)
	}
	hb := make([]byte, n)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, invalid("header unreadable: %v", err)
	}
	return Parse(hb, uint64(size)-8-n)
}

// Parse validates the JSON header hb of a file with dataLen data bytes.
func Parse(hb []byte, dataLen uint64) (*Header, error) {
	if len(hb) == 0 || hb[0] != '{' {
		return nil, invalid("header does not start with '{'")
	}
	if !utf8.Valid(hb) {
		return nil, invalid("header is not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(hb))
	dec.UseNumber()
	h := &Header{Size: uint64(len(hb))}
	if _, err := dec.Token(); err != nil {
		return nil, invalid("header: %v", err)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, invalid("header: %v", err)
		}
		key := tok.(string)
		if seen[key] {
			return nil, invalid("duplicate key %q", key)
		}
		seen[key] = true
		if key == "__metadata__" {
			var md map[string]string
			if err := dec.Decode(&md); err != nil {
				return nil, invalid("__metadata__ is not a map of strings: %v", err)
			}
			h.Metadata = md
			continue
		}
		var raw struct {
			DType       *string       `json:"dtype"`
			Shape       []json.Number `json:"shape"`
			DataOffsets []json.Number `json:"data_offsets"`
		}
		if err := dec.Decode(&raw); err != nil {
			return nil, invalid("tensor %q: %v", key, err)
		}
		if raw.DType == nil || raw.Shape == nil || raw.DataOffsets == nil {
			return nil, invalid("tensor %q: missing dtype, shape or data_offsets", key)
		}
		t := Tensor{Name: key, DType: *raw.DType}
		if _, ok := dtypeBits[t.DType]; !ok {
			return nil, invalid("tensor %q: unknown dtype %q", key, t.DType)
		}
		for _, d := range raw.Shape {
			v, err := usize(d)
			if err != nil {
				return nil, invalid("tensor %q: shape: %v", key, err)
			}
			t.Shape = append(t.Shape, v)
		}
		if len(raw.DataOffsets) != 2 {
			return nil, invalid("tensor %q: data_offsets needs 2 entries", key)
		}
		var err1, err2 error
		t.Begin, err1 = usize(raw.DataOffsets[0])
		t.End, err2 = usize(raw.DataOffsets[1])
		if err1 != nil || err2 != nil {
			return nil, invalid("tensor %q: bad data_offsets", key)
		}
		h.Tensors = append(h.Tensors, t)
	}
	if _, err := dec.Token(); err != nil {
		return nil, invalid("header: %v", err)
	}
	// Only whitespace may follow the object.
	if len(bytes.TrimRight(hb[dec.InputOffset():], " \t\r\n")) != 0 {
		return nil, invalid("trailing bytes after the header object")
	}
	sort.SliceStable(h.Tensors, func(i, j int) bool {
		a, b := h.Tensors[i], h.Tensors[j]
		if a.Begin != b.Begin {
			return a.Begin < b.Begin
		}
		return a.End < b.End
	})
	var start uint64
	for _, t := range h.Tensors {
		if t.Begin != start || t.End < t.Begin {
			return nil, invalid("tensor %q: offsets [%d,%d] not contiguous from %d", t.Name, t.Begin, t.End, start)
		}
		n := new(big.Int).SetUint64(1)
		for _, d := range t.Shape {
			n.Mul(n, new(big.Int).SetUint64(d))
		}
		n.Mul(n, new(big.Int).SetUint64(dtypeBits[t.DType]))
		if bits := n.Uint64(); !n.IsUint64() || bits%8 != 0 || bits/8 != t.End-t.Begin {
			return nil, invalid("tensor %q: %d bytes for shape %v of %s", t.Name, t.End-t.Begin, t.Shape, t.DType)
		}
		start = t.End
	}
	if start != dataLen {
		return nil, invalid("tensors cover %d bytes, data is %d bytes", start, dataLen)
	}
	return h, nil
}

func usize(n json.Number) (uint64, error) {
	s := n.String()
	var v uint64
	if s == "" {
		return 0, errors.New("empty number")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a non-negative integer", s)
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, fmt.Errorf("%q overflows", s)
		}
		v = v*10 + d
	}
	return v, nil
}
