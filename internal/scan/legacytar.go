package scan

import (
	"encoding/binary"
	"io"

	"github.com/custody-ml/custody/internal/scan/pickle"
)

// legacyElemSize is the element size of the storage classes the pre-1.0
// PyTorch tar format names (torch/_utils.py _element_size).
var legacyElemSize = map[string]uint64{
	"DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "LongStorage": 8, "IntStorage": 4,
	"ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1, "BFloat16Storage": 2,
	"ComplexDoubleStorage": 16, "ComplexFloatStorage": 8, "QUInt8Storage": 1, "QInt8Storage": 1,
	"QInt32Storage": 4, "QUInt4x2Storage": 1, "QUInt2x4Storage": 1,
}

// scanLegacyTarMember follows the "storages" or "tensors" member of the
// pre-1.0 torch.save tar format as torch/serialization.py legacy_load reads
// it, so that every pickle in it is analysed and no raw byte is taken for
// one:
//
//	storages: pickle(N), N x { pickle((key, location, storage_type)),
//	          int64 numel, numel*element_size bytes }
//	tensors:  pickle(N), N x { pickle((key, storage_id, tensor_type)),
//	          int32 ndim, 4 bytes, ndim x int64 sizes, ndim x int64 strides,
//	          int64 storage_offset }
func (j *job) scanLegacyTarMember(r io.Reader, member, kind string) {
	a := pickle.NewAnalyzer(r, pickle.Options{Limits: j.s.limits.Pickle, OnEvent: func(e pickle.Event) { j.event(member, e) }})
	bad := func(format string, args ...any) {
		j.malformed(member, a.Offset(), "torch/legacy-tar", format, args...)
	}
	p, err := a.Next()
	if err != nil {
		j.pickleErr(member, 0, err)
		return
	}
	if p.Value.Kind != pickle.ValueInt || p.Value.Int < 0 || p.Value.Int > 1<<24 {
		bad("%s: first pickle is not a count", kind)
		return
	}
	var b8 [8]byte
	for i := int64(0); i < p.Value.Int; i++ {
		q, err := a.Next()
		if err != nil {
			j.pickleErr(member, 0, err)
			return
		}
		args := q.Value
		if args.Kind != pickle.ValueTuple || len(args.Items) != 3 {
			bad("%s: record %d is not a 3-tuple", kind, i)
			return
		}
		switch kind {
		case "storages":
			t := args.Items[2]
			es, ok := legacyElemSize[t.Name]
			if t.Kind != pickle.ValueGlobal || t.Str != "torch" || !ok {
				bad("storage %d: unknown storage type", i)
				return
			}
			if err := a.ReadFull(b8[:]); err != nil {
				bad("storage %d: size cut short", i)
				return
			}
			n := binary.LittleEndian.Uint64(b8[:])
			if n > 1<<56/es {
				bad("storage %d: %d elements", i, n)
				return
			}
			if err := a.Discard(n * es); err != nil {
				bad("storage %d: data cut short", i)
				return
			}
		default: // tensors
			var b4 [4]byte
			if err := a.ReadFull(b4[:]); err != nil {
				bad("tensor %d: cut short", i)
				return
			}
			ndim := int32(binary.LittleEndian.Uint32(b4[:]))
			if ndim < 0 || ndim > 64 {
				bad("tensor %d: %d dimensions", i, ndim)
				return
			}
			if err := a.Discard(4 + 16*uint64(ndim) + 8); err != nil {
				bad("tensor %d: cut short", i)
				return
			}
		}
	}
	if !a.AtEOF() {
		j.add(Finding{Verdict: Safe, Rule: "note/trailing-bytes", Member: member, Offset: a.Offset(),
			Message: "bytes after the last record; torch.load does not read them"})
	}
}
