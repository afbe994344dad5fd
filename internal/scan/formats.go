package scan

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"regexp"
	"strings"

	"github.com/custody-ml/custody/internal/scan/gguf"
	"github.com/custody-ml/custody/internal/scan/pickle"
	"github.com/custody-ml/custody/internal/scan/safetensors"
)

// scanNpy reads a .npy header (numpy/lib/format.py): magic, version, header
// length (u16 for 1.0, u32 for 2.0/3.0), then a Python dict literal. An
// object dtype means a pickle follows the header; other data is skipped.
func (j *job) scanNpy(b blob, member string) {
	r := bufio.NewReader(b.reader())
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		j.malformed(member, 0, "npy/malformed", "header cut short")
		return
	}
	var hlen int
	off := int64(8)
	switch pre[6] {
	case 1:
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			j.malformed(member, 8, "npy/malformed", "header cut short")
			return
		}
		hlen, off = int(binary.LittleEndian.Uint16(l[:])), 10
	case 2, 3:
		var l [4]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			j.malformed(member, 8, "npy/malformed", "header cut short")
			return
		}
		hlen, off = int(binary.LittleEndian.Uint32(l[:])), 12
	default:
		j.malformed(member, 6, "npy/malformed", "unsupported .npy version %d.%d", pre[6], pre[7])
		return
	}
	// numpy refuses headers over 10000 bytes unless max_header_size is
	// raised; allow more, bounded.
	if hlen > 1<<20 {
		j.malformed(member, off, "npy/malformed", "header length %d too large", hlen)
		return
	}
	h := make([]byte, hlen)
	if _, err := io.ReadFull(r, h); err != nil {
		j.malformed(member, off, "npy/malformed", "header cut short")
		return
	}
	plain, ok := npyPlainDescr(string(h))
	if !ok {
		j.malformed(member, off, "npy/malformed", "header lacks descr, shape or fortran_order")
		return
	}
	if plain {
		return // a plain numeric dtype: the data is never unpickled
	}
	// Object dtype, or a descr too unusual to be sure it is not one (numpy
	// accepts any dtype spelling: 'object', 'O', structured fields):
	// numpy.load(allow_pickle=True) unpickles what follows the header.
	if next, err := r.Peek(1); err == nil && pickle.IsOpcode(next[0]) {
		j.scanPickle(r, member, off+int64(hlen), false)
		return
	}
	if npyObjectDescr.MatchString(string(h)) {
		j.malformed(member, off+int64(hlen), "npy/malformed", "object array without a pickle after the header")
		return
	}
	j.add(Finding{Verdict: Unknown, Rule: "npy/dtype", Member: member, Offset: off,
		Message: "dtype not recognised as plain numeric data; not analysed"})
}

// npyPlainString matches the plain numeric dtype strings numpy writes:
// byte order, kind, item size, and a unit for datetimes.
var npyPlainString = regexp.MustCompile(`^[<>|=]?(b1|\?|[iu][1248]|f(2|4|8|16)|c(8|16|32)|[SUV][0-9]+|[mM]8(\[[0-9]*[a-zA-Z]+\])?)$`)

// npyObjectDescr spots an explicit object type code.
var npyObjectDescr = regexp.MustCompile(`['"][<>|=]?O[0-9]*['"]|object`)

// npyDescrRE extracts a single-string descr: 'descr': '<f4' (either quote).
var npyDescrRE = regexp.MustCompile(`['"]descr['"]\s*:\s*(?:'([^']*)'|"([^"]*)")`)

// npyPlainDescr reports whether the header's descr is a plain numeric dtype
// string. ok is false when the header lacks a required key.
func npyPlainDescr(h string) (plain, ok bool) {
	for _, k := range []string{"descr", "shape", "fortran_order"} {
		if !strings.Contains(h, "'"+k+"'") && !strings.Contains(h, `"`+k+`"`) {
			return false, false
		}
	}
	m := npyDescrRE.FindStringSubmatch(h)
	if m == nil {
		return false, true // a list (structured) or other literal
	}
	d := m[1] + m[2]
	return npyPlainString.MatchString(d), true
}

// sized returns b with a known size, copying a stream of unknown length
// (inside a compressed container) within the buffer budget.
func (j *job) sized(b blob, member, what string) (blob, bool) {
	if b.size >= 0 {
		return b, true
	}
	return j.random(b, member, what)
}

func (j *job) scanSafetensors(b blob, member string) {
	b, ok := j.sized(b, member, "safetensors file")
	if !ok {
		return
	}
	if _, err := safetensors.Validate(b.reader(), b.size); err != nil {
		j.malformed(member, 0, "safetensors/invalid", "%v", err)
	}
}

func (j *job) scanGGUF(b blob, member string) {
	b, ok := j.sized(b, member, "GGUF file")
	if !ok {
		return
	}
	if _, err := gguf.Validate(b.reader(), b.size); err != nil {
		j.malformed(member, 0, "gguf/invalid", "%v", err)
	}
}

// scanKerasConfig checks a Keras model configuration (config.json of a
// .keras zip, the model_config attribute of an .h5 file) for Lambda layers,
// whose marshalled Python bytecode runs when the model is loaded.
func (j *job) scanKerasConfig(r io.Reader, member string) {
	var cfg any
	dec := json.NewDecoder(io.LimitReader(r, 256<<20))
	if err := dec.Decode(&cfg); err != nil {
		j.malformed(member, 0, "keras/malformed", "config.json: %v", err)
		return
	}
	j.kerasWalk(cfg, member, 0, 0)
}

func (j *job) kerasWalk(v any, member string, off int64, depth int) {
	if depth > 512 {
		j.malformed(member, off, "limit/keras", "configuration nested deeper than 512")
		return
	}
	switch t := v.(type) {
	case map[string]any:
		if cn, ok := t["class_name"].(string); ok && cn == "Lambda" {
			name := ""
			if c, ok := t["config"].(map[string]any); ok {
				name, _ = c["name"].(string)
				name = clip(name)
			}
			j.add(Finding{Verdict: Dangerous, Rule: "keras/lambda", Member: member, Offset: off, Name: name,
				Message: "Keras Lambda layer " + name + ": its Python code runs when the model is loaded"})
		}
		for _, c := range t {
			j.kerasWalk(c, member, off, depth+1)
		}
	case []any:
		for _, c := range t {
			j.kerasWalk(c, member, off, depth+1)
		}
	}
}

// h5Candidates returns the offsets in data of '{' followed by optional JSON
// whitespace and '"': where a JSON object with keys may start.
func h5Candidates(data []byte) []int {
	var out []int
	for i := 0; i < len(data); {
		k := bytes.IndexByte(data[i:], '{')
		if k < 0 {
			break
		}
		p := i + k + 1
		for p < len(data) && (data[p] == ' ' || data[p] == '\t' || data[p] == '\n' || data[p] == '\r') {
			p++
		}
		if p < len(data) && data[p] == '"' {
			out = append(out, i+k)
		}
		i += k + 1
	}
	return out
}

// scanH5 searches the first H5Window bytes of an HDF5 file for JSON
// objects (the model_config attribute Keras writes is one) and checks every
// one that parses for Lambda layers. A bounded heuristic, not an HDF5 parser:
// see docs/scan.md.
func (j *job) scanH5(b blob, member string) {
	rb, ok := j.random(b, member, "HDF5 file")
	if !ok {
		return
	}
	window := rb.size
	if window > j.s.limits.H5Window {
		window = j.s.limits.H5Window
		j.add(Finding{Verdict: Safe, Rule: "note/h5-window", Member: member,
			Message: "HDF5 file larger than the search window; only its start was searched for a Keras configuration"})
	}
	const chunk = 8 << 20
	buf := make([]byte, chunk+64)
	attempts := 0
	for off := int64(0); off < window; off += chunk {
		n, _ := rb.ra.ReadAt(buf, off)
		data := buf[:n]
		for _, c := range h5Candidates(data) {
			if c >= chunk {
				break
			}
			attempts++
			if attempts > 100000 {
				j.malformed(member, off, "limit/h5", "too many JSON candidates")
				return
			}
			start := off + int64(c)
			dec := json.NewDecoder(io.NewSectionReader(rb.ra, start, 64<<20))
			var v map[string]any
			if err := dec.Decode(&v); err != nil {
				continue
			}
			if _, ok := v["class_name"]; !ok {
				if _, ok := v["config"]; !ok {
					continue
				}
			}
			j.kerasWalk(v, member, start, 0)
		}
	}
}
