package scan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// ONNX models are protobuf (onnx/onnx.proto3). The walker below follows only
// the messages that can hold tensors, reading tags and lengths at offsets and
// skipping tensor bytes, and checks TensorProto.external_data "location":
// onnx.load resolves it against the model's directory, so an absolute path or
// one climbing out with ".." reads (and with onnx tooling, writes) arbitrary
// files.
//
//	ModelProto:   ir_version=1 (varint), graph=7, functions=25
//	GraphProto:   node=1, initializer=5, sparse_initializer=15
//	NodeProto:    attribute=5
//	AttributeProto: t=5, g=6, tensors=10, graphs=11, sparse_tensor=22, sparse_tensors=23
//	FunctionProto:  node=7
//	SparseTensorProto: values=1, indices=2
//	TensorProto:  external_data=13 (StringStringEntryProto key=1 value=2)

type pbMsg int

const (
	pbModel pbMsg = iota
	pbGraph
	pbNode
	pbAttr
	pbFunction
	pbSparse
	pbTensor
	pbEntry
)

// pbChildren maps a message and field number to the sub-message it holds.
var pbChildren = map[pbMsg]map[uint64]pbMsg{
	pbModel:    {7: pbGraph, 25: pbFunction},
	pbGraph:    {1: pbNode, 5: pbTensor, 15: pbSparse},
	pbNode:     {5: pbAttr},
	pbAttr:     {5: pbTensor, 6: pbGraph, 10: pbTensor, 11: pbGraph, 22: pbSparse, 23: pbSparse},
	pbFunction: {7: pbNode},
	pbSparse:   {1: pbTensor, 2: pbTensor},
	pbTensor:   {13: pbEntry},
}

var errPB = errors.New("not a valid protobuf message")

type pbWalker struct {
	ra     io.ReaderAt
	j      *job
	member string
	fields int
}

func (w *pbWalker) varint(off, end int64) (uint64, int64, error) {
	var buf [10]byte
	n := end - off
	if n > 10 {
		n = 10
	}
	if n <= 0 {
		return 0, off, errPB
	}
	k, _ := w.ra.ReadAt(buf[:n], off)
	v, m := binary.Uvarint(buf[:k])
	if m <= 0 {
		return 0, off, errPB
	}
	return v, off + int64(m), nil
}

// walk parses the message kind in [off, end) and checks what it holds.
func (w *pbWalker) walk(kind pbMsg, off, end int64, depth int) error {
	if depth > 64 {
		return fmt.Errorf("%w: nested too deep", errPB)
	}
	var key, value string
	hasLoc := false
	for off < end {
		w.fields++
		if w.fields > 10_000_000 {
			return fmt.Errorf("%w: too many fields", errPB)
		}
		tag, next, err := w.varint(off, end)
		if err != nil {
			return err
		}
		field, wt := tag>>3, tag&7
		if field == 0 {
			return errPB
		}
		off = next
		switch wt {
		case 0:
			if _, off, err = w.varint(off, end); err != nil {
				return err
			}
		case 1:
			off += 8
		case 5:
			off += 4
		case 2:
			l, next, err := w.varint(off, end)
			if err != nil {
				return err
			}
			if l > uint64(end-next) {
				return errPB
			}
			start, stop := next, next+int64(l)
			off = stop
			if kind == pbEntry && (field == 1 || field == 2) && l <= 1<<16 {
				b := make([]byte, l)
				if _, err := w.ra.ReadAt(b, start); err != nil {
					return errPB
				}
				if field == 1 {
					key = string(b)
				} else {
					value = string(b)
					hasLoc = true
				}
				continue
			}
			if child, ok := pbChildren[kind][field]; ok {
				if err := w.walk(child, start, stop, depth+1); err != nil {
					return err
				}
			}
		default:
			return errPB
		}
		if off > end {
			return errPB
		}
	}
	if kind == pbEntry && key == "location" && hasLoc {
		if reason := escapes(value); reason != "" {
			w.j.add(Finding{Verdict: Dangerous, Rule: "onnx/external-data-escape", Member: w.member, Name: value,
				Message: fmt.Sprintf("external data location %q %s", value, reason)})
		}
	}
	return nil
}

// escapes says why an external data location leaves the model directory,
// or "" if it stays inside.
func escapes(loc string) string {
	l := strings.ReplaceAll(loc, "\\", "/")
	switch {
	case loc == "":
		return "is empty"
	case strings.ContainsRune(loc, 0):
		return "contains a NUL byte"
	case strings.HasPrefix(l, "/"):
		return "is an absolute path"
	case len(l) >= 2 && l[1] == ':':
		return "is a Windows drive path"
	}
	if c := path.Clean(l); c == ".." || strings.HasPrefix(c, "../") {
		return "climbs out of the model directory"
	}
	return ""
}

// scanONNX walks b as an ONNX ModelProto. It reports false, and nothing,
// when b is not a well-formed protobuf starting with ir_version.
func (j *job) scanONNX(b blob, member string) bool {
	// Collect findings aside, so random data is not called ONNX.
	probe := &job{s: j.s, ctx: j.ctx, res: &Result{}, seen: map[string]bool{}}
	pw := &pbWalker{ra: b.ra, j: probe, member: member}
	if err := pw.walk(pbModel, 0, b.size, 0); err != nil {
		return false
	}
	for _, f := range probe.res.Findings {
		j.add(f)
	}
	return true
}
