// Package dvc computes DVC-compatible content hashes (per-file md5 and the
// ".dir" hash of a directory) and reads DVC's metafiles (.dvc, dvc.lock), so
// that a custody dataset manifest links to what DVC tracks.
//
// # Which DVC
//
// The algorithms match dvc-data 3.16 as used by DVC 3.x (checked against
// dvc 3.64.0 and dvc-data 3.16.12 sources and their test vectors):
//
//   - [AlgMD5] ("md5", DVC >= 3.0, written as "hash: md5" in .dvc files):
//     the plain MD5 (RFC 1321) of the file's bytes.
//   - [AlgMD5Dos2Unix] ("md5-dos2unix", DVC 2.x and older; a .dvc out with
//     an md5 but no "hash:" field): the file is read in 1 MiB chunks; a chunk
//     whose first 512 bytes look like text (see [IsTextBlock]) has every
//     "\r\n" replaced by "\n" before hashing. A CRLF split across two chunks
//     is not replaced, exactly as in DVC.
//
// A directory's hash is md5(L) + ".dir" where L is DVC's listing of its files
// serialized by Python's json.dumps(list, sort_keys=True); see [DirHash].
package dvc

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
)

// Algorithm names a DVC hash algorithm, spelled as DVC spells it.
type Algorithm string

const (
	// AlgMD5 is DVC 3.x's "md5": MD5 of the raw bytes.
	AlgMD5 Algorithm = "md5"
	// AlgMD5Dos2Unix is DVC 2.x's md5 with CRLF normalisation of text chunks.
	AlgMD5Dos2Unix Algorithm = "md5-dos2unix"
)

// chunkSize is dvc_data.hashfile.hash.fobj_md5's chunk_size (2**20).
const chunkSize = 1 << 20

// textBlockSize is dvc_data.hashfile.istextfile.DEFAULT_CHUNK_SIZE.
const textBlockSize = 512

// IsTextBlock reports whether DVC's heuristic (istextblock) calls block text:
// empty is text; any NUL byte is binary; otherwise text when at most 30% of
// the bytes are outside printable ASCII (32..126) and "\n\r\t\f\b".
func IsTextBlock(block []byte) bool {
	if len(block) == 0 {
		return true
	}
	if bytes.IndexByte(block, 0) >= 0 {
		return false
	}
	nontext := 0
	for _, c := range block {
		if (c >= 32 && c < 127) || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\b' {
			continue
		}
		nontext++
	}
	// Python: float(len(nontext)) / len(block) <= 0.30
	return float64(nontext)/float64(len(block)) <= 0.30
}

// MD5 returns the DVC hash (hex) of the bytes read from r with algorithm alg,
// and the number of bytes read. It streams: memory use is one 1 MiB chunk.
func MD5(r io.Reader, alg Algorithm) (string, int64, error) {
	h := md5.New()
	var n int64
	var err error
	switch alg {
	case AlgMD5:
		n, err = io.Copy(h, r)
	case AlgMD5Dos2Unix:
		n, err = dos2unixCopy(h, r)
	default:
		return "", 0, fmt.Errorf("dvc: unsupported hash algorithm %q", alg)
	}
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func dos2unixCopy(h hash.Hash, r io.Reader) (int64, error) {
	br := bufio.NewReaderSize(r, chunkSize)
	buf := make([]byte, chunkSize)
	var total int64
	for {
		// fobj.read(n) on a regular file returns n bytes unless at EOF.
		n, err := io.ReadFull(br, buf)
		if n > 0 {
			total += int64(n)
			chunk := buf[:n]
			if IsTextBlock(chunk[:min(n, textBlockSize)]) {
				chunk = bytes.ReplaceAll(chunk, []byte("\r\n"), []byte("\n"))
			}
			h.Write(chunk)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
