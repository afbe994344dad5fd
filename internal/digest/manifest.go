package digest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Serialization records how a manifest was made, in the form of the OMS
// predicate's "serialization" object (OMS v1.0 section 5.2.2).
type Serialization struct {
	Method        string   `json:"method"`               // "files" or "shards"
	HashType      string   `json:"hash_type"`            // always "sha256"
	ShardSize     int64    `json:"shard_size,omitempty"` // with "shards" only
	AllowSymlinks bool     `json:"allow_symlinks"`
	IgnorePaths   []string `json:"ignore_paths,omitempty"`
}

// The serialization methods of OMS v1.0 section 6.3.
const (
	MethodFiles  = "files"
	MethodShards = "shards"
)

// Resource is an OMS resource descriptor: a file (or a shard "path:start:end")
// and the lowercase hex SHA-256 of its bytes.
type Resource struct {
	Name      string `json:"name"`
	Algorithm string `json:"algorithm"`
	Digest    string `json:"digest"`
}

// File is one file of the model with its size, as enumerated.
type File struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// Manifest describes a model's content. It is what `custody hash --json`
// prints and what `custody verify --digest-file` reads.
type Manifest struct {
	Kind          Kind          `json:"kind"`
	Name          string        `json:"name"`     // basename of the model path (OMS subject name)
	Digest        Digest        `json:"digest"`   // the pin
	OMSRoot       Digest        `json:"oms_root"` // the OMS subject digest
	Serialization Serialization `json:"serialization"`
	// Resources are the OMS resource descriptors, sorted by name in byte
	// (code point) order. With the shards method, empty files have no
	// resource (OMS section 6.3.2); they are listed in Files.
	Resources []Resource `json:"resources"`
	Files     []File     `json:"files"`
}

// entry is one line of the canonical manifest: a resource name and digest.
type entry struct {
	name string
	sum  Digest
}

func buildManifest(m *model, units []unit, opts Options) *Manifest {
	man := &Manifest{
		Kind: m.kind,
		Name: m.name,
		Serialization: Serialization{
			Method:        MethodFiles,
			HashType:      "sha256",
			AllowSymlinks: opts.AllowSymlinks,
			IgnorePaths:   m.ignore.sorted(),
		},
		Files: make([]File, len(m.files)),
	}
	if len(man.Serialization.IgnorePaths) == 0 {
		man.Serialization.IgnorePaths = nil
	}
	if opts.ShardSize > 0 {
		man.Serialization.Method = MethodShards
		man.Serialization.ShardSize = opts.ShardSize
	}
	for i, f := range m.files {
		man.Files[i] = File{Name: f.name, Size: f.info.Size()}
	}
	for _, u := range units {
		name := m.files[u.file].name
		if opts.ShardSize > 0 {
			if u.n == 0 {
				continue // OMS: zero-byte files have no shard resource
			}
			name = shardName(name, u.off, u.off+u.n)
		}
		man.Resources = append(man.Resources, Resource{Name: name, Algorithm: "sha256", Digest: u.sum.Hex()})
	}
	sortResources(man.Resources)
	man.OMSRoot = omsRoot(man.Resources)
	if m.kind == KindFile && opts.ShardSize <= 0 {
		man.Digest = units[0].sum
	} else {
		man.Digest = sha256.Sum256(man.CanonicalText())
	}
	return man
}

func shardName(file string, start, end int64) string {
	return file + ":" + strconv.FormatInt(start, 10) + ":" + strconv.FormatInt(end, 10)
}

// SplitShardName splits "path:start:end" into its parts, taking the last two
// colon-separated components as the range, as OMS section 6.3.2 requires
// (file names may contain colons).
func SplitShardName(name string) (file string, start, end int64, err error) {
	j := strings.LastIndexByte(name, ':')
	if j < 0 {
		return "", 0, 0, fmt.Errorf("shard name %q: no byte range", truncate(name))
	}
	i := strings.LastIndexByte(name[:j], ':')
	if i < 0 {
		return "", 0, 0, fmt.Errorf("shard name %q: no byte range", truncate(name))
	}
	start, err1 := parseOffset(name[i+1 : j])
	end, err2 := parseOffset(name[j+1:])
	if err1 != nil || err2 != nil || end < start || name[:i] == "" {
		return "", 0, 0, fmt.Errorf("shard name %q: malformed byte range", truncate(name))
	}
	return name[:i], start, end, nil
}

// parseOffset parses a canonical decimal offset: digits only, no sign, no
// leading zeros.
func parseOffset(s string) (int64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, errors.New("non-canonical offset")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errors.New("non-canonical offset")
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func sortResources(rs []Resource) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Name < rs[j].Name })
}

// omsRoot computes the OMS root digest (OMS v1.0 section 6.5.1): SHA-256
// over the raw digests of the resources, concatenated in the order given.
func omsRoot(rs []Resource) Digest {
	h := sha256.New()
	var raw [Size]byte
	for _, r := range rs {
		// Resources built here always hold valid hex; parsed ones are
		// validated before use.
		hex.Decode(raw[:], []byte(r.Digest))
		h.Write(raw[:])
	}
	var d Digest
	h.Sum(d[:0])
	return d
}

// OMSRoot computes the OMS root digest of rs in the order given.
func OMSRoot(rs []Resource) (Digest, error) {
	for _, r := range rs {
		if _, err := ParseHex(r.Digest); err != nil {
			return Digest{}, fmt.Errorf("resource %q: %w", truncate(r.Name), err)
		}
	}
	return omsRoot(rs), nil
}

// canonical entries: every resource, plus "name:0:0" for empty files with
// the shards method, so that the pin binds empty files too.
func (m *Manifest) entries() ([]entry, error) {
	out := make([]entry, 0, len(m.Resources)+1)
	for _, r := range m.Resources {
		if r.Algorithm != "sha256" {
			return nil, fmt.Errorf("resource %q: unsupported algorithm %q", truncate(r.Name), r.Algorithm)
		}
		d, err := ParseHex(r.Digest)
		if err != nil {
			return nil, fmt.Errorf("resource %q: %w", truncate(r.Name), err)
		}
		out = append(out, entry{name: r.Name, sum: d})
	}
	if m.Serialization.Method == MethodShards {
		empty := sha256.Sum256(nil)
		for _, f := range m.Files {
			if f.Size == 0 {
				out = append(out, entry{name: shardName(f.Name, 0, 0), sum: empty})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// Header lines of the canonical manifest text; see docs/manifest.md.
const (
	headerFiles  = "custody-manifest v1 files\n"
	headerShards = "custody-manifest v1 shards %d\n"
)

// CanonicalText returns the bytes whose SHA-256 is the pin of a directory
// model (and of any model hashed with the shards method):
//
//	custody-manifest v1 files\n            (or: custody-manifest v1 shards <size>\n)
//	<64 hex>  <name>\n                     one line per resource, sorted by name
//
// Lines are in the format of sha256sum: a name containing a backslash is
// written with backslashes doubled and the line prefixed with a backslash.
// With the shards method, names are "path:start:end" and empty files appear
// as "path:0:0". The text can be rebuilt with standard tools, see
// docs/manifest.md.
func (m *Manifest) CanonicalText() []byte {
	es, err := m.entries()
	if err != nil {
		return nil
	}
	return canonicalText(m.Serialization, es)
}

func canonicalText(s Serialization, es []entry) []byte {
	var b bytes.Buffer
	if s.Method == MethodShards {
		fmt.Fprintf(&b, headerShards, s.ShardSize)
	} else {
		b.WriteString(headerFiles)
	}
	for _, e := range es {
		name := e.name
		if strings.ContainsRune(name, '\\') {
			b.WriteByte('\\')
			name = strings.ReplaceAll(name, `\`, `\\`)
		}
		b.WriteString(e.sum.Hex())
		b.WriteString("  ")
		b.WriteString(name)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// maxManifestSize caps a manifest read with [ReadManifest].
const maxManifestSize = 256 << 20

// ErrBadManifest is returned (wrapped) for manifests that cannot be trusted
// to mean what they say: malformed JSON, invalid digests, or a pin that does
// not follow from the listed resources.
var ErrBadManifest = errors.New("invalid manifest")

// ReadManifest parses a manifest as printed by `custody hash --json`. It
// checks that the manifest is self-consistent: names are canonical and
// unique, digests valid, and the pin and OMS root follow from the
// resources (a single-file "files" manifest's pin must equal its only
// resource digest). Input is capped at 256 MiB.
func ReadManifest(r io.Reader) (*Manifest, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxManifestSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxManifestSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadManifest, maxManifestSize)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrBadManifest)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	return &m, nil
}

func (m *Manifest) check() error {
	switch m.Kind {
	case KindFile, KindDirectory:
	default:
		return fmt.Errorf("kind %q is neither %q nor %q", m.Kind, KindFile, KindDirectory)
	}
	s := m.Serialization
	if s.HashType != "sha256" {
		return fmt.Errorf("hash_type %q is not supported", s.HashType)
	}
	switch s.Method {
	case MethodFiles:
		if s.ShardSize != 0 {
			return errors.New("shard_size set with the files method")
		}
	case MethodShards:
		if s.ShardSize <= 0 {
			return errors.New("shards method without a positive shard_size")
		}
	default:
		return fmt.Errorf("unknown serialization method %q", s.Method)
	}
	for _, p := range s.IgnorePaths {
		if n, err := NormalizeIgnore(".", p); err != nil || n != p {
			return fmt.Errorf("ignore path %q is not canonical", truncate(p))
		}
	}
	if len(m.Files) == 0 || len(m.Resources) == 0 && s.Method == MethodFiles {
		return ErrEmptyModel
	}
	if m.Kind == KindFile && len(m.Files) != 1 {
		return fmt.Errorf("single-file manifest lists %d files", len(m.Files))
	}
	files := make(map[string]int64, len(m.Files))
	for _, f := range m.Files {
		if err := checkManifestName(f.Name); err != nil {
			return err
		}
		if f.Size < 0 {
			return fmt.Errorf("file %q has negative size", truncate(f.Name))
		}
		if _, dup := files[f.Name]; dup {
			return fmt.Errorf("file %q listed twice", truncate(f.Name))
		}
		files[f.Name] = f.Size
	}
	seen := make(map[string]bool, len(m.Resources))
	covered := make(map[string]int64, len(m.Files))
	for i, r := range m.Resources {
		if i > 0 && m.Resources[i-1].Name >= r.Name {
			return fmt.Errorf("resources not sorted or not unique at %q", truncate(r.Name))
		}
		file := r.Name
		var start, end int64
		if s.Method == MethodShards {
			var err error
			if file, start, end, err = SplitShardName(r.Name); err != nil {
				return err
			}
			if end == start {
				return fmt.Errorf("resource %q is an empty shard", truncate(r.Name))
			}
		}
		size, ok := files[file]
		if !ok {
			return fmt.Errorf("resource %q names no listed file", truncate(r.Name))
		}
		if s.Method == MethodShards {
			want := min(start+s.ShardSize, size)
			if start%s.ShardSize != 0 || end != want {
				return fmt.Errorf("resource %q does not match shard size %d and file size %d", truncate(r.Name), s.ShardSize, size)
			}
			covered[file] += end - start
		} else {
			if seen[file] {
				return fmt.Errorf("file %q has two resources", truncate(file))
			}
			covered[file] = size
		}
		seen[file] = true
	}
	for name, size := range files {
		if covered[name] != size && !(s.Method == MethodShards && size == 0) {
			return fmt.Errorf("file %q is not covered by its resources", truncate(name))
		}
	}
	es, err := m.entries()
	if err != nil {
		return err
	}
	if root := omsRoot(m.Resources); !root.Equal(m.OMSRoot) {
		return fmt.Errorf("oms_root %s does not follow from the resources (%s)", m.OMSRoot, root)
	}
	var pin Digest
	if m.Kind == KindFile && s.Method == MethodFiles {
		pin = es[0].sum
	} else {
		pin = sha256.Sum256(canonicalText(s, es))
	}
	if !pin.Equal(m.Digest) {
		return fmt.Errorf("digest %s does not follow from the resources (%s)", m.Digest, pin)
	}
	return nil
}

// checkManifestName checks that a name read from a manifest is canonical
// per OMS section 6.1.2: relative, "/"-separated, no empty, "." or ".."
// components, valid UTF-8 without control characters.
func checkManifestName(name string) error {
	if name == "" {
		return errors.New("empty file name")
	}
	for _, c := range strings.Split(name, "/") {
		if c == "" || c == "." || c == ".." {
			return fmt.Errorf("file name %q is not canonical", truncate(name))
		}
	}
	return checkName(name)
}
