package dvc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrFormat is returned (wrapped; check with errors.Is) when a .dvc or
// dvc.lock file is not valid.
var ErrFormat = errors.New("invalid DVC file")

// MaxFileSize caps the size of a .dvc or dvc.lock file that [ParseFile] reads.
const MaxFileSize = 16 << 20

// Version is one data version recorded by DVC: an out of a .dvc file, or a
// dep or out of a dvc.lock stage.
type Version struct {
	// Stage is the dvc.lock stage name; empty for .dvc files.
	Stage string `json:"stage,omitempty"`
	// Role is "out" or "dep".
	Role string `json:"role"`
	// Path is as written in the file (relative to the file's directory,
	// or a URL for external data).
	Path string `json:"path"`
	// Algorithm is derived from the "hash" field: "md5" for DVC 3.x,
	// "md5-dos2unix" when an md5 is present without "hash" (DVC 2.x).
	Algorithm Algorithm `json:"hash,omitempty"`
	MD5       string    `json:"md5,omitempty"`
	Size      *int64    `json:"size,omitempty"`
	NFiles    *int64    `json:"nfiles,omitempty"`
	// Other holds checksums DVC records for non-local remotes (etag,
	// checksum, version_id), as strings.
	Other map[string]string `json:"other,omitempty"`
}

// IsDir reports whether v records a directory (its md5 ends in ".dir").
func (v *Version) IsDir() bool { return strings.HasSuffix(v.MD5, ".dir") }

var md5RE = regexp.MustCompile(`^[0-9a-f]{32}(\.dir)?$`)

type rawOut struct {
	Path      *string `yaml:"path"`
	MD5       *string `yaml:"md5"`
	Hash      *string `yaml:"hash"`
	Size      *int64  `yaml:"size"`
	NFiles    *int64  `yaml:"nfiles"`
	ETag      *string `yaml:"etag"`
	Checksum  *string `yaml:"checksum"`
	VersionID *string `yaml:"version_id"`
}

type rawStage struct {
	Deps []yaml.Node `yaml:"deps"`
	Outs []yaml.Node `yaml:"outs"`
}

type rawFile struct {
	Schema *string             `yaml:"schema"`
	Deps   []yaml.Node         `yaml:"deps"`
	Outs   []yaml.Node         `yaml:"outs"`
	Stages map[string]rawStage `yaml:"stages"`
}

// Parse reads a .dvc file or a dvc.lock (schema 2.0) from r and returns the
// data versions it records, in file order (dvc.lock stages sorted by name).
// Parameters (dvc.lock "params") are not data versions and are skipped; a dep
// without a hash (a plain path) is kept with an empty MD5.
func Parse(r io.Reader) ([]Version, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrFormat, MaxFileSize)
	}
	var raw rawFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("%w: empty file", ErrFormat)
		}
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	var out []Version
	add := func(stage, role string, nodes []yaml.Node) error {
		for i := range nodes {
			v, err := parseOut(&nodes[i])
			if err != nil {
				where := role
				if stage != "" {
					where = "stage " + stage + " " + role
				}
				return fmt.Errorf("%w: %s %d: %v", ErrFormat, where, i, err)
			}
			v.Stage, v.Role = stage, role
			out = append(out, *v)
		}
		return nil
	}
	if raw.Stages != nil {
		if raw.Schema != nil && *raw.Schema != "2.0" {
			return nil, fmt.Errorf("%w: unsupported dvc.lock schema %q", ErrFormat, *raw.Schema)
		}
		names := make([]string, 0, len(raw.Stages))
		for n := range raw.Stages {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			st := raw.Stages[n]
			if err := add(n, "dep", st.Deps); err != nil {
				return nil, err
			}
			if err := add(n, "out", st.Outs); err != nil {
				return nil, err
			}
		}
	}
	if err := add("", "dep", raw.Deps); err != nil {
		return nil, err
	}
	if err := add("", "out", raw.Outs); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no outs, deps or stages", ErrFormat)
	}
	return out, nil
}

func parseOut(n *yaml.Node) (*Version, error) {
	if n.Kind == yaml.ScalarNode {
		// A legacy or hand-written entry with a path only.
		if n.Value == "" {
			return nil, errors.New("empty path")
		}
		return &Version{Path: n.Value}, nil
	}
	var r rawOut
	if err := n.Decode(&r); err != nil {
		return nil, err
	}
	if r.Path == nil || *r.Path == "" {
		return nil, errors.New("missing path")
	}
	v := &Version{Path: *r.Path, Size: r.Size, NFiles: r.NFiles}
	if r.MD5 != nil {
		if !md5RE.MatchString(*r.MD5) {
			return nil, fmt.Errorf("malformed md5 %q", *r.MD5)
		}
		v.MD5 = *r.MD5
		v.Algorithm = AlgMD5Dos2Unix
		if r.Hash != nil {
			switch Algorithm(*r.Hash) {
			case AlgMD5:
				v.Algorithm = AlgMD5
			default:
				return nil, fmt.Errorf("unsupported hash %q", *r.Hash)
			}
		}
	}
	if r.Size != nil && *r.Size < 0 {
		return nil, errors.New("negative size")
	}
	if r.NFiles != nil && *r.NFiles < 0 {
		return nil, errors.New("negative nfiles")
	}
	for k, p := range map[string]*string{"etag": r.ETag, "checksum": r.Checksum, "version_id": r.VersionID} {
		if p != nil {
			if v.Other == nil {
				v.Other = map[string]string{}
			}
			v.Other[k] = *p
		}
	}
	return v, nil
}

// ParseFile opens and parses a .dvc or dvc.lock file.
func ParseFile(path string) ([]Version, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vs, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("failed to parse %s: %w", path, err)
	}
	return vs, nil
}

// Verification statuses of [Check].
const (
	StatusOK       = "ok"       // the data on disk has the recorded hash
	StatusMismatch = "mismatch" // it does not
	StatusMissing  = "missing"  // the path is not on disk
	StatusSkipped  = "skipped"  // nothing to compare (no md5, or a URL)
)

// Check is the outcome of comparing one [Version] with the data on disk.
type Check struct {
	Status string `json:"status"`
	// Actual is the hash computed from disk (ok and mismatch only).
	Actual       string   `json:"actual_md5,omitempty"`
	ActualSize   *int64   `json:"actual_size,omitempty"`
	ActualNFiles *int64   `json:"actual_nfiles,omitempty"`
	Detail       string   `json:"detail,omitempty"`
	Warnings     []string `json:"warnings,omitempty"`
}

// Verify compares v with the data at filepath.Join(baseDir, v.Path), using
// v's algorithm. A differing size or nfiles is a mismatch too. I/O errors
// other than "not found" are returned.
func Verify(ctx context.Context, baseDir string, v *Version, opts Options) (*Check, error) {
	if v.MD5 == "" {
		return &Check{Status: StatusSkipped, Detail: "no md5 recorded"}, nil
	}
	if strings.Contains(v.Path, "://") || strings.HasPrefix(v.Path, "remote:") {
		return &Check{Status: StatusSkipped, Detail: "not a local path"}, nil
	}
	p := v.Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(baseDir, filepath.FromSlash(p))
	}
	if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
		return &Check{Status: StatusMissing}, nil
	}
	opts.Algorithm = v.Algorithm
	res, err := Hash(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	c := &Check{Status: StatusOK, Actual: res.Hash, ActualSize: &res.Size, Warnings: res.Warnings}
	if res.IsDir {
		n := int64(res.NFiles)
		c.ActualNFiles = &n
	}
	var why []string
	if res.Hash != v.MD5 {
		why = append(why, "md5 differs")
	}
	if v.Size != nil && *v.Size != res.Size {
		why = append(why, "size differs")
	}
	if v.NFiles != nil && res.IsDir && *v.NFiles != int64(res.NFiles) {
		why = append(why, "nfiles differs")
	}
	if len(why) > 0 {
		c.Status = StatusMismatch
		c.Detail = strings.Join(why, ", ")
	}
	return c, nil
}
