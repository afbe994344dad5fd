package pickle

import (
	"bytes"
	"errors"
	"io"
)

// Summary describes a whole stream analysed by [AnalyzeStream].
type Summary struct {
	Pickles     int   // complete pickles
	Protocol    int   // highest protocol seen
	LegacyTorch bool  // PyTorch legacy (non-zip) serialization
	Consumed    int64 // bytes analysed; the rest (legacy storage data) is skipped
	// Trailing: bytes follow the last pickle that cannot start another
	// one (not an opcode); they are not analysed.
	Trailing bool
	// TrailingBlank: those bytes are only whitespace (a text pickle's
	// final newline).
	TrailingBlank bool
}

// legacyPickles is the number of pickles torch.load reads from a legacy file
// (torch/serialization.py _legacy_load): magic number, protocol version,
// sys info, the data, the storage keys. Raw storage bytes follow.
const legacyPickles = 5

// AnalyzeStream analyses every pickle stacked in r, as a loader calling
// pickle.load repeatedly would see them, until the end of the stream. A
// stream whose first pickle is PyTorch's legacy magic number is a legacy
// checkpoint: its five pickles are analysed and the storage bytes after them
// are not. Bytes after a pickle whose first byte is not an opcode end the
// analysis ([Summary.Trailing]): no loader can execute them. An empty stream
// is an error wrapping ErrTruncated.
func AnalyzeStream(r io.Reader, opts Options) (Summary, error) {
	a := NewAnalyzer(r, opts)
	var s Summary
	for {
		if s.Pickles > 0 && !a.AtEOF() && !IsOpcode(a.Peek(1)[0]) {
			// No unpickler can run anything from here: pickle.load stops
			// at STOP, and a repeated load fails on the first byte.
			s.Consumed = a.Offset()
			s.Trailing = true
			rest := a.Peek(4096)
			s.TrailingBlank = len(rest) < 4096 && len(bytes.Trim(rest, " \t\r\n")) == 0
			return s, nil
		}
		p, err := a.Next()
		if errors.Is(err, io.EOF) {
			s.Consumed = a.Offset()
			if s.Pickles == 0 {
				return s, &Error{Offset: 0, Err: ErrTruncated, Detail: "empty stream"}
			}
			return s, nil
		}
		if p.Protocol > s.Protocol {
			s.Protocol = p.Protocol
		}
		if err != nil {
			s.Consumed = a.Offset()
			return s, err
		}
		s.Pickles++
		if s.Pickles == 1 && p.LegacyTorchMagic {
			s.LegacyTorch = true
		}
		if s.LegacyTorch && s.Pickles == legacyPickles {
			s.Consumed = a.Offset()
			return s, nil
		}
	}
}
