package scan

import (
	"bytes"
	"encoding/binary"
	"io"
)

// Formats that carry no code and that no model loader executes: recognised so
// that a model directory (images in a model card, a sentencepiece tokenizer)
// can be scanned as a whole. A polyglot (an image with a zip appended) is
// still caught by the tail-zip check.
var (
	magicPNG  = []byte("\x89PNG\r\n\x1a\n")
	magicJPEG = []byte{0xff, 0xd8, 0xff}
	magicGIF  = []byte("GIF8")
)

func isImage(h []byte) bool {
	return bytes.HasPrefix(h, magicPNG) || bytes.HasPrefix(h, magicJPEG) || bytes.HasPrefix(h, magicGIF)
}

// maxSentencePiece bounds the size of a tokenizer model parsed in memory.
const maxSentencePiece = 64 << 20

// isSentencePiece reports whether b (random access, size bytes) is a
// sentencepiece ModelProto (sentencepiece_model.proto): top-level fields
// 1 (pieces, repeated SentencePiece {1 piece: string, 2 score: float,
// 3 type: enum}), 2 (trainer_spec), 3 (normalizer_spec), 4 (self_test_data),
// 5 (denormalizer_spec), all length-delimited, with at least one piece.
func isSentencePiece(b blob) bool {
	if b.ra == nil || b.size <= 0 || b.size > maxSentencePiece {
		return false
	}
	data := make([]byte, b.size)
	if _, err := b.ra.ReadAt(data, 0); err != nil && err != io.EOF {
		return false
	}
	pieces := 0
	ok := pbFields(data, func(field uint64, wt uint64, v []byte) bool {
		if wt != 2 || field < 1 || field > 5 {
			return false
		}
		if field != 1 {
			return true
		}
		pieces++
		return pbFields(v, func(f, w uint64, _ []byte) bool {
			switch f {
			case 1:
				return w == 2
			case 2:
				return w == 5
			case 3:
				return w == 0
			}
			return f >= 200 // extensions
		})
	})
	return ok && pieces > 0
}

// pbFields walks the protobuf message in b, calling fn for each field with
// its value (the payload for length-delimited fields). It reports false if
// the encoding is invalid or fn does.
func pbFields(b []byte, fn func(field, wireType uint64, value []byte) bool) bool {
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 || tag>>3 == 0 {
			return false
		}
		b = b[n:]
		var v []byte
		switch wt := tag & 7; wt {
		case 0:
			_, n := binary.Uvarint(b)
			if n <= 0 {
				return false
			}
			b = b[n:]
		case 1, 5:
			k := 8
			if wt == 5 {
				k = 4
			}
			if len(b) < k {
				return false
			}
			b = b[k:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return false
			}
			v = b[n : n+int(l)]
			b = b[n+int(l):]
		default:
			return false
		}
		if !fn(tag>>3, tag&7, v) {
			return false
		}
	}
	return true
}
