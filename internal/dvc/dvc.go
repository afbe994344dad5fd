// Package dvc computes DVC-compatible content hashes, so that datasets
// registered with custody link to data tracked by DVC (https://dvc.org).
//
// DVC 3 addresses a file by the MD5 of its bytes and a directory by
// "<md5>.dir", the MD5 of its ".dir" object: the JSON list
//
//	[{"md5": "<file md5>", "relpath": "<posix path>"}, ...]
//
// sorted by relpath (code point order), serialized as Python's
// json.dumps(list, sort_keys=True) does: ", " and ": " separators and every
// non-ASCII character escaped as \uXXXX (UTF-16, surrogate pairs above the
// BMP). See dvc-data's hashfile/tree.py (Tree.as_list, Tree.as_bytes,
// Tree.digest). Legacy DVC 2 "md5-dos2unix" hashes of text files are not
// reproduced: MD5 here is always over the raw bytes.
//
// MD5 is not collision resistant; custody uses it only to link to DVC and
// always keeps the SHA-256 beside it.
package dvc

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Entry is one file of a directory: its slash-separated path relative to
// the directory and the lowercase hex MD5 of its bytes.
type Entry struct {
	RelPath string
	MD5     string
}

// FileMD5 returns the lowercase hex MD5 of r's bytes.
func FileMD5(r io.Reader) (string, error) {
	h := md5.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ValidMD5 reports whether s is 32 lowercase hex digits.
func ValidMD5(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// DirObject returns the bytes of DVC's .dir object for entries.
func DirObject(entries []Entry) ([]byte, error) {
	es := append([]Entry(nil), entries...)
	sort.Slice(es, func(i, j int) bool { return es[i].RelPath < es[j].RelPath })
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range es {
		if !ValidMD5(e.MD5) {
			return nil, fmt.Errorf("dvc: %q: md5 %q is not 32 lowercase hex digits", e.RelPath, e.MD5)
		}
		if !utf8.ValidString(e.RelPath) || e.RelPath == "" {
			return nil, errors.New("dvc: relpath is empty or not UTF-8")
		}
		if i > 0 {
			if es[i-1].RelPath == e.RelPath {
				return nil, fmt.Errorf("dvc: %q listed twice", e.RelPath)
			}
			b.WriteString(", ")
		}
		b.WriteString(`{"md5": "`)
		b.WriteString(e.MD5)
		b.WriteString(`", "relpath": `)
		writePyString(&b, e.RelPath)
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return []byte(b.String()), nil
}

// DirHash returns DVC's "<md5>.dir" hash of a directory with entries.
func DirHash(entries []Entry) (string, error) {
	obj, err := DirObject(entries)
	if err != nil {
		return "", err
	}
	sum := md5.Sum(obj)
	return hex.EncodeToString(sum[:]) + ".dir", nil
}

// writePyString writes s as Python's json.dumps does with ensure_ascii.
func writePyString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || r > 0x7e:
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
			} else {
				fmt.Fprintf(b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}
