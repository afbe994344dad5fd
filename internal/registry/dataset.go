package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/dvc"
	"github.com/custody-ml/custody/internal/store"
)

// DatasetSpec registers a dataset version. Digest and DVCMD5 must follow
// from Files: Digest is the custody manifest pin of the files (as
// `custody hash` computes it for the dataset path) and DVCMD5 is the file's
// md5 (single file) or the DVC "<md5>.dir" hash of the directory.
type DatasetSpec struct {
	Name      string              `json:"name"`
	Version   string              `json:"version"`
	Kind      digest.Kind         `json:"kind"` // "file" or "directory"
	Digest    digest.Digest       `json:"digest"`
	DVCMD5    string              `json:"dvc_md5"`
	SourceURI string              `json:"source_uri,omitempty"`
	Rows      *int64              `json:"rows,omitempty"`
	Files     []store.DatasetFile `json:"files"`
}

// check validates the spec and recomputes both digests from the files.
func (d *DatasetSpec) check() (size int64, err error) {
	if err := CheckName(d.Name); err != nil {
		return 0, err
	}
	if err := CheckVersion(d.Version); err != nil {
		return 0, err
	}
	if err := checkURI("source_uri", d.SourceURI); err != nil {
		return 0, err
	}
	if d.Rows != nil && *d.Rows < 0 {
		return 0, invalidf("negative row count")
	}
	if len(d.Files) == 0 || len(d.Files) > MaxDatasetFiles {
		return 0, invalidf("a dataset lists 1 to %d files", MaxDatasetFiles)
	}
	if d.Kind != digest.KindFile && d.Kind != digest.KindDirectory {
		return 0, invalidf("kind %q is neither file nor directory", d.Kind)
	}
	m := digest.Manifest{
		Kind: d.Kind, Name: d.Name, Digest: d.Digest,
		Serialization: digest.Serialization{Method: digest.MethodFiles, HashType: "sha256"},
	}
	entries := make([]dvc.Entry, 0, len(d.Files))
	for _, f := range d.Files {
		if f.Size < 0 {
			return 0, invalidf("file %q has a negative size", truncate(f.Path))
		}
		size += f.Size
		if !validMD5(f.MD5) {
			return 0, invalidf("file %q: md5 is not 32 lowercase hex digits", truncate(f.Path))
		}
		m.Resources = append(m.Resources, digest.Resource{Name: f.Path, Algorithm: "sha256", Digest: f.SHA256})
		m.Files = append(m.Files, digest.File{Name: f.Path, Size: f.Size})
		entries = append(entries, dvc.Entry{RelPath: f.Path, MD5: f.MD5, Size: f.Size})
	}
	sortResources(m.Resources)
	if m.OMSRoot, err = digest.OMSRoot(m.Resources); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	raw, err := json.Marshal(&m)
	if err != nil {
		return 0, err
	}
	if _, err := digest.ReadManifest(bytes.NewReader(raw)); err != nil {
		return 0, fmt.Errorf("%w: dataset files do not match its digest: %v", ErrInvalid, err)
	}
	want := ""
	if d.Kind == digest.KindFile {
		want = d.Files[0].MD5
		if path.Base(d.Files[0].Path) != d.Files[0].Path {
			return 0, invalidf("a single-file dataset's path is its base name")
		}
	} else {
		want = dvc.DirHash(entries)
	}
	if d.DVCMD5 != want {
		return 0, invalidf("dvc_md5 %q does not follow from the files' md5s (want %s)", truncate(d.DVCMD5), want)
	}
	return size, nil
}

// RegisterDataset registers an immutable dataset version. The same digest
// again is idempotent (created == false); a different one is a
// [ConflictError].
func (s *Service) RegisterDataset(ctx context.Context, actor Actor, spec DatasetSpec) (*store.Dataset, bool, error) {
	if err := actor.Require(PermPublish); err != nil {
		return nil, false, err
	}
	size, err := spec.check()
	if err != nil {
		return nil, false, err
	}
	same := func(d *store.Dataset) (*store.Dataset, bool, error) {
		if d.Digest != spec.Digest {
			return nil, false, &ConflictError{Kind: "dataset", Name: spec.Name, Version: spec.Version, Existing: d.Digest, Got: spec.Digest}
		}
		return d, false, nil
	}
	var out *store.Dataset
	err = s.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		d := &store.Dataset{
			Name: spec.Name, Version: spec.Version, Digest: spec.Digest, DVCMD5: spec.DVCMD5, SourceURI: spec.SourceURI,
			Size: size, Rows: spec.Rows, Files: spec.Files, CreatedBy: actor.Name, CreatedAt: s.now(),
		}
		if err := tx.CreateDataset(ctx, d); err != nil {
			return err
		}
		out = d
		return s.record(ctx, tx, actor, "dataset.register", spec.Name+"@"+spec.Version, map[string]any{
			"name": spec.Name, "version": spec.Version, "digest": spec.Digest, "dvc_md5": spec.DVCMD5, "size": size,
		})
	})
	if errors.Is(err, store.ErrExists) {
		cur, gerr := s.st.GetDataset(ctx, spec.Name, spec.Version)
		if gerr != nil {
			return nil, false, gerr
		}
		return same(cur)
	}
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// GetDataset returns a dataset version.
func (s *Service) GetDataset(ctx context.Context, name, version string) (*store.Dataset, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if err := CheckVersion(version); err != nil {
		return nil, err
	}
	return s.st.GetDataset(ctx, name, version)
}

// validMD5 reports whether s is 32 lowercase hex digits.
func validMD5(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func sortResources(rs []digest.Resource) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Name < rs[j].Name })
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}
