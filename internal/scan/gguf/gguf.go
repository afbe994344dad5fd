// Package gguf validates the header of a GGUF file (llama.cpp) without
// reading tensor data.
//
// # Format (ggml/docs/gguf.md)
//
//	"GGUF" | u32 version (1, 2 or 3) | tensor_count | kv_count
//	kv_count  x { key: string | u32 value_type | value }
//	tensor_count x { name: string | u32 n_dims | n_dims x u64 dim | u32 ggml_type | u64 offset }
//	padding to general.alignment (default 32) | tensor data
//
// Counts, string lengths and array lengths are u64 (u32 in version 1).
// Checks: known value types, nested arrays bounded, string keys UTF-8 and
// unique, n_dims <= 4, known ggml types, offsets aligned and, for types of
// known size, tensors inside the data section without overlap.
package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every validation failure.
var ErrInvalid = errors.New("invalid gguf")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// typeSize gives (block size, bytes per block) for ggml types whose layout
// is fixed (ggml/src/ggml.c type_traits).
var typeSize = map[uint32][2]uint64{
	0: {1, 4}, 1: {1, 2}, 2: {32, 18}, 3: {32, 20}, 6: {32, 22}, 7: {32, 24},
	8: {32, 34}, 9: {32, 36}, 10: {256, 84}, 11: {256, 110}, 12: {256, 144},
	13: {256, 176}, 14: {256, 210}, 15: {256, 292},
	24: {1, 1}, 25: {1, 2}, 26: {1, 4}, 27: {1, 8}, 28: {1, 8}, 30: {1, 2},
}

// maxType is one past the highest ggml type id accepted.
const maxType = 40

// Tensor is one tensor info entry.
type Tensor struct {
	Name   string
	Dims   []uint64
	Type   uint32
	Offset uint64
}

// Header is a validated header.
type Header struct {
	Version   uint32
	KV        int
	Tensors   []Tensor
	Alignment uint64
	DataStart uint64
}

type reader struct {
	r   *bufio.Reader
	off uint64
	v   uint32
	lim uint64 // file size
}

func (r *reader) read(b []byte) error {
	n, err := io.ReadFull(r.r, b)
	r.off += uint64(n)
	if err != nil {
		return invalid("truncated at offset %d", r.off)
	}
	return nil
}

func (r *reader) u32() (uint32, error) {
	var b [4]byte
	err := r.read(b[:])
	return binary.LittleEndian.Uint32(b[:]), err
}

func (r *reader) u64() (uint64, error) {
	var b [8]byte
	err := r.read(b[:])
	return binary.LittleEndian.Uint64(b[:]), err
}

func (r *reader) count() (uint64, error) {
	if r.v == 1 {
		v, err := r.u32()
		return uint64(v), err
	}
	return r.u64()
}

func (r *reader) skip(n uint64) error {
	if r.off > r.lim || n > r.lim-r.off {
		return invalid("length %d runs past the end of the file", n)
	}
	for n > 0 {
		c := n
		if c > 1<<30 {
			c = 1 << 30
		}
		k, err := r.r.Discard(int(c))
		r.off += uint64(k)
		n -= uint64(k)
		if err != nil {
			return invalid("truncated at offset %d", r.off)
		}
	}
	return nil
}

func (r *reader) str(keep bool) (string, error) {
	n, err := r.count()
	if err != nil {
		return "", err
	}
	if !keep || n > 1<<16 {
		return "", r.skip(n)
	}
	if r.off > r.lim || n > r.lim-r.off {
		return "", invalid("string runs past the end of the file")
	}
	b := make([]byte, n)
	if err := r.read(b); err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", invalid("string is not UTF-8")
	}
	return string(b), nil
}

// scalar sizes of value types 0..12 (8 string, 9 array: variable).
var valueSize = [...]uint64{1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8}

func (r *reader) value(t uint32, depth int) (uint64, error) {
	switch {
	case t == 8:
		_, err := r.str(false)
		return 0, err
	case t == 9:
		if depth > 4 {
			return 0, invalid("arrays nested too deep")
		}
		et, err := r.u32()
		if err != nil {
			return 0, err
		}
		n, err := r.count()
		if err != nil {
			return 0, err
		}
		if et >= uint32(len(valueSize)) {
			return 0, invalid("unknown array element type %d", et)
		}
		if s := valueSize[et]; s != 0 {
			if n > math.MaxUint64/s {
				return 0, invalid("array too long")
			}
			return 0, r.skip(n * s)
		}
		if r.off > r.lim || n > r.lim-r.off {
			return 0, invalid("array longer than the file")
		}
		for i := uint64(0); i < n; i++ {
			if _, err := r.value(et, depth+1); err != nil {
				return 0, err
			}
		}
		return 0, nil
	case t < uint32(len(valueSize)):
		var b [8]byte
		s := valueSize[t]
		if err := r.read(b[:s]); err != nil {
			return 0, err
		}
		if t == 7 && b[0] > 1 {
			return 0, invalid("bool value %d", b[0])
		}
		return binary.LittleEndian.Uint64(b[:]), nil
	}
	return 0, invalid("unknown value type %d", t)
}

// Validate reads and checks the header of a GGUF file of size bytes.
func Validate(src io.Reader, size int64) (*Header, error) {
	if size < 0 {
		return nil, invalid("size unknown")
	}
	r := &reader{r: bufio.NewReaderSize(src, 64<<10), lim: uint64(size)}
	var magic [4]byte
	if err := r.read(magic[:]); err != nil || string(magic[:]) != "GGUF" {
		return nil, invalid("bad magic")
	}
	v, err := r.u32()
	if err != nil {
		return nil, err
	}
	if v < 1 || v > 3 {
		return nil, invalid("unsupported version %d", v)
	}
	r.v = v
	h := &Header{Version: v, Alignment: 32}
	nt, err := r.count()
	if err != nil {
		return nil, err
	}
	nkv, err := r.count()
	if err != nil {
		return nil, err
	}
	// Every kv and tensor info takes at least 8 bytes: bound the counts by
	// the file size before looping.
	if nkv > uint64(size)/8 || nt > uint64(size)/8 {
		return nil, invalid("counts larger than the file allows")
	}
	keys := map[string]bool{}
	for i := uint64(0); i < nkv; i++ {
		k, err := r.str(true)
		if err != nil {
			return nil, err
		}
		if keys[k] {
			return nil, invalid("duplicate key %q", k)
		}
		keys[k] = true
		t, err := r.u32()
		if err != nil {
			return nil, err
		}
		val, err := r.value(t, 0)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		if k == "general.alignment" {
			if t != 4 || val == 0 || val&(val-1) != 0 {
				return nil, invalid("general.alignment must be a power-of-two u32")
			}
			h.Alignment = val
		}
	}
	h.KV = int(nkv)
	names := map[string]bool{}
	for i := uint64(0); i < nt; i++ {
		name, err := r.str(true)
		if err != nil {
			return nil, err
		}
		if names[name] {
			return nil, invalid("duplicate tensor %q", name)
		}
		names[name] = true
		nd, err := r.u32()
		if err != nil {
			return nil, err
		}
		if nd > 4 {
			return nil, invalid("tensor %q: %d dims", name, nd)
		}
		t := Tensor{Name: name}
		for j := uint32(0); j < nd; j++ {
			d, err := r.u64()
			if err != nil {
				return nil, err
			}
			t.Dims = append(t.Dims, d)
		}
		if t.Type, err = r.u32(); err != nil {
			return nil, err
		}
		if t.Type >= maxType {
			return nil, invalid("tensor %q: unknown type %d", name, t.Type)
		}
		if t.Offset, err = r.u64(); err != nil {
			return nil, err
		}
		if t.Offset%h.Alignment != 0 {
			return nil, invalid("tensor %q: offset %d not aligned to %d", name, t.Offset, h.Alignment)
		}
		h.Tensors = append(h.Tensors, t)
	}
	h.DataStart = (r.off + h.Alignment - 1) / h.Alignment * h.Alignment
	if nt > 0 && h.DataStart > uint64(size) {
		return nil, invalid("data section starts past the end of the file")
	}
	dataLen := uint64(size) - min(h.DataStart, uint64(size))
	ts := append([]Tensor(nil), h.Tensors...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Offset < ts[j].Offset })
	var prevEnd uint64
	for _, t := range ts {
		if t.Offset < prevEnd {
			return nil, invalid("tensor %q overlaps the previous tensor", t.Name)
		}
		if t.Offset > dataLen {
			return nil, invalid("tensor %q starts past the end of the file", t.Name)
		}
		prevEnd = t.Offset
		ts, ok := typeSize[t.Type]
		if !ok {
			continue
		}
		n := uint64(1)
		for _, d := range t.Dims {
			if d != 0 && n > math.MaxUint64/d {
				return nil, invalid("tensor %q too large", t.Name)
			}
			n *= d
		}
		if n%ts[0] != 0 {
			return nil, invalid("tensor %q: %d elements not a multiple of the block size %d", t.Name, n, ts[0])
		}
		bytes := n / ts[0] * ts[1]
		if bytes > dataLen-t.Offset {
			return nil, invalid("tensor %q runs past the end of the file", t.Name)
		}
		prevEnd = t.Offset + bytes
	}
	return h, nil
}
