package dvc

import (
	"crypto/md5"
	"encoding/hex"
	"slices"
	"strings"
	"unicode/utf8"
)

// Entry is one file of a directory listing: its path relative to the
// directory, with "/" separators, and its DVC md5 (hex).
type Entry struct {
	RelPath string `json:"relpath"`
	MD5     string `json:"md5"`
	Size    int64  `json:"size"`
}

// DirHash returns DVC's hash of a directory listing, "<md5 hex>.dir".
//
// The bytes hashed are those of dvc_data.hashfile.tree.Tree.as_bytes():
// json.dumps(listing, sort_keys=True).encode("utf-8"), where listing is
// [{"md5": <hex>, "relpath": <path>}, ...] sorted by relpath (Python string
// order: code points). json.dumps' defaults apply: separators ", " and ": ",
// ensure_ascii=True (anything outside 0x20..0x7e as \uXXXX, lower-case hex, UTF-16 surrogate
// pairs above U+FFFF). Path bytes that are not valid UTF-8 are decoded as
// Python's os.fsdecode does (surrogateescape: byte b becomes U+DC00+b).
// The input slice is not modified.
func DirHash(entries []Entry) string {
	sum := md5.Sum(DirListing(entries))
	return hex.EncodeToString(sum[:]) + ".dir"
}

// DirListing returns the exact bytes that [DirHash] hashes.
func DirListing(entries []Entry) []byte {
	type keyed struct {
		key []rune
		e   *Entry
	}
	ks := make([]keyed, len(entries))
	for i := range entries {
		ks[i] = keyed{key: fsdecode(entries[i].RelPath), e: &entries[i]}
	}
	// Python's sorted() is stable; equal relpaths cannot occur in a tree.
	slices.SortStableFunc(ks, func(a, b keyed) int { return slices.Compare(a.key, b.key) })
	var b strings.Builder
	b.WriteByte('[')
	for i, k := range ks {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`{"md5": `)
		writePyJSONString(&b, fsdecode(k.e.MD5))
		b.WriteString(`, "relpath": `)
		writePyJSONString(&b, k.key)
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return []byte(b.String())
}

// fsdecode decodes s as UTF-8 with Python's surrogateescape error handler.
func fsdecode(s string) []rune {
	out := make([]rune, 0, len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			out = append(out, 0xDC00+rune(s[i]))
			i++
			continue
		}
		out = append(out, r)
		i += size
	}
	return out
}

const hexDigits = "0123456789abcdef"

// writePyJSONString writes s as Python's json encoder does with
// ensure_ascii=True (json.encoder.py_encode_basestring_ascii).
func writePyJSONString(b *strings.Builder, s []rune) {
	b.WriteByte('"')
	u4 := func(c rune) {
		b.WriteString(`\u`)
		b.WriteByte(hexDigits[c>>12&0xf])
		b.WriteByte(hexDigits[c>>8&0xf])
		b.WriteByte(hexDigits[c>>4&0xf])
		b.WriteByte(hexDigits[c&0xf])
	}
	for _, c := range s {
		switch c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case c < 0x20 || c > 0x7e:
				if c >= 0x10000 {
					c -= 0x10000
					u4(0xd800 | (c>>10)&0x3ff)
					u4(0xdc00 | c&0x3ff)
				} else {
					u4(c)
				}
			default:
				b.WriteRune(c)
			}
		}
	}
	b.WriteByte('"')
}
