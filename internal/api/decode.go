package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
)

// RegisterBody is the body of PUT /api/v1/models/{name}/versions/{version}.
// The model name and version come from the path.
type RegisterBody struct {
	Manifest    digest.Manifest   `json:"manifest"`
	Signatures  []json.RawMessage `json:"signatures"`
	URI         string            `json:"uri,omitempty"`
	Format      string            `json:"format,omitempty"`
	ScanVerdict string            `json:"scan_verdict,omitempty"`
	Run         *registry.RunSpec `json:"run,omitempty"`
}

// DatasetBody is the body of PUT /api/v1/datasets/{name}/versions/{version}.
type DatasetBody struct {
	Kind      digest.Kind         `json:"kind"`
	Digest    digest.Digest       `json:"digest"`
	DVCMD5    string              `json:"dvc_md5"`
	SourceURI string              `json:"source_uri,omitempty"`
	Rows      *int64              `json:"rows,omitempty"`
	Files     []store.DatasetFile `json:"files"`
}

// EvidenceBody is the body of POST
// /api/v1/datasets/{name}/versions/{version}/evidence.
type EvidenceBody struct {
	// Name is the file name the document was signed under.
	Name string `json:"name"`
	// Document is the results JSON, byte for byte (base64 in the body, so
	// no re-encoding can change the signed bytes).
	Document  []byte          `json:"document"`
	Signature json.RawMessage `json:"signature"`
}

// decodeStrict decodes exactly one JSON object of at most limit bytes into
// v: unknown fields, trailing data, and oversized bodies are errors. The
// semantic checks (names, limits, digests) are the domain's.
func decodeStrict(r io.Reader, limit int64, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(ErrTooLarge, "request body larger than %d bytes", mbe.Limit)
		}
		return errorf(ErrBadRequest, "failed to read request body: %v", err)
	}
	if int64(len(data)) > limit {
		return errorf(ErrTooLarge, "request body larger than %d bytes", limit)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(ErrBadRequest, "invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(ErrBadRequest, "invalid JSON body: trailing data after the object")
	}
	return nil
}

// decodeRegister decodes a registration body.
func decodeRegister(r io.Reader, limit int64) (*registry.RegisterRequest, error) {
	var b RegisterBody
	if err := decodeStrict(r, limit, &b); err != nil {
		return nil, err
	}
	return &registry.RegisterRequest{
		Manifest: b.Manifest, Signatures: b.Signatures, URI: b.URI, Format: b.Format, ScanVerdict: b.ScanVerdict, Run: b.Run,
	}, nil
}

// decodeDataset decodes a dataset registration body.
func decodeDataset(r io.Reader, limit int64) (*registry.DatasetSpec, error) {
	var b DatasetBody
	if err := decodeStrict(r, limit, &b); err != nil {
		return nil, err
	}
	return &registry.DatasetSpec{Kind: b.Kind, Digest: b.Digest, DVCMD5: b.DVCMD5, SourceURI: b.SourceURI, Rows: b.Rows, Files: b.Files}, nil
}

// decodeEvidence decodes an evidence attachment body.
func decodeEvidence(r io.Reader, limit int64) (*registry.EvidenceRequest, error) {
	var b EvidenceBody
	if err := decodeStrict(r, limit, &b); err != nil {
		return nil, err
	}
	return &registry.EvidenceRequest{Name: b.Name, Document: b.Document, Signature: b.Signature}, nil
}
