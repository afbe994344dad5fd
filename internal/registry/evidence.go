package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/store"
)

// EvidenceSchema is the schema of the data-contract results documents
// `custody data check --out` writes (docs/data.md).
const EvidenceSchema = "custody.data.check/v1"

// MaxEvidenceSize caps an evidence document.
const MaxEvidenceSize = 8 << 20

// EvidenceRequest attaches a signed data-contract result to a dataset
// version.
type EvidenceRequest struct {
	Dataset string
	Version string
	// Name is the file name the document was signed under (`custody sign
	// result.json` signs a one-file model named after the file).
	Name string
	// Document is the results JSON, byte for byte as signed.
	Document []byte
	// Signature is the OMS signature bundle over the document.
	Signature json.RawMessage
}

// evidenceDoc is the part of a results document the registry checks.
// Unknown fields are allowed: the document is kept verbatim.
type evidenceDoc struct {
	Schema  string `json:"schema"`
	Outcome string `json:"outcome"`
	Tool    *struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"tool"`
	CheckedAt time.Time     `json:"checked_at"`
	Contract  *evidenceSpec `json:"contract"`
	Suite     *evidenceSpec `json:"suite"`
	Summary   struct {
		Expectations int `json:"expectations"`
		Fail         int `json:"fail"`
	} `json:"summary"`
	Dataset *struct {
		Digest digest.Digest `json:"digest"`
		DVCMD5 string        `json:"dvc_md5"`
	} `json:"dataset"`
	Inputs []struct {
		Path   string        `json:"path"`
		SHA256 digest.Digest `json:"sha256"`
	} `json:"inputs"`
}

type evidenceSpec struct {
	SHA256 digest.Digest `json:"sha256"`
	Name   string        `json:"name"`
}

// EvidenceMismatchError reports evidence that is not about the dataset
// version it is attached to. It wraps [ErrConflict].
type EvidenceMismatchError struct {
	Dataset, Version string
	Reason           string
}

func (e *EvidenceMismatchError) Error() string {
	return fmt.Sprintf("evidence is not about dataset %s@%s: %s", e.Dataset, e.Version, e.Reason)
}

// Unwrap returns [ErrConflict].
func (e *EvidenceMismatchError) Unwrap() error { return ErrConflict }

func (r *EvidenceRequest) parse() (*evidenceDoc, error) {
	if err := CheckName(r.Dataset); err != nil {
		return nil, err
	}
	if err := CheckVersion(r.Version); err != nil {
		return nil, err
	}
	if err := checkIdent("evidence file name", r.Name, MaxNameLen); err != nil {
		return nil, err
	}
	if len(r.Document) == 0 || len(r.Document) > MaxEvidenceSize {
		return nil, invalidf("an evidence document has 1 to %d bytes", MaxEvidenceSize)
	}
	if len(r.Signature) == 0 {
		return nil, fmt.Errorf("%w: no signature bundle (unsigned evidence is not attached)", ErrUnverified)
	}
	if len(r.Signature) > MaxBundleSize {
		return nil, invalidf("signature is larger than %d bytes", MaxBundleSize)
	}
	var doc evidenceDoc
	dec := json.NewDecoder(bytes.NewReader(r.Document))
	if err := dec.Decode(&doc); err != nil {
		return nil, invalidf("evidence is not a results document: %v", err)
	}
	if dec.More() {
		return nil, invalidf("evidence has trailing data after the JSON object")
	}
	if doc.Schema != EvidenceSchema {
		return nil, invalidf("evidence schema is %q, want %q", truncate(doc.Schema), EvidenceSchema)
	}
	switch doc.Outcome {
	case "pass", "fail", "incomplete":
	default:
		return nil, invalidf("evidence outcome %q is not pass, fail or incomplete", truncate(doc.Outcome))
	}
	if doc.Contract == nil && doc.Suite == nil {
		return nil, invalidf("evidence names neither a contract nor a suite")
	}
	if doc.Dataset == nil || doc.Dataset.Digest.IsZero() {
		return nil, invalidf("evidence does not name the dataset's digest (check with 'custody data check --dataset PATH')")
	}
	if doc.CheckedAt.IsZero() {
		return nil, invalidf("evidence has no checked_at time")
	}
	if len(doc.Inputs) == 0 {
		return nil, invalidf("evidence lists no inputs")
	}
	if doc.Summary.Expectations < 0 || doc.Summary.Fail < 0 || doc.Summary.Fail > doc.Summary.Expectations {
		return nil, invalidf("evidence summary counts are inconsistent")
	}
	for _, s := range []*evidenceSpec{doc.Contract, doc.Suite} {
		if s != nil {
			if err := checkText("contract name", s.Name, MaxNameLen); err != nil {
				return nil, err
			}
		}
	}
	return &doc, nil
}

// bind checks that doc is about exactly the bytes of d: the same pinned
// digest, the same DVC hash when the document has one, and every checked
// input one of d's files.
func bind(doc *evidenceDoc, d *store.Dataset) error {
	mismatch := func(format string, args ...any) error {
		return &EvidenceMismatchError{Dataset: d.Name, Version: d.Version, Reason: fmt.Sprintf(format, args...)}
	}
	if !doc.Dataset.Digest.Equal(d.Digest) {
		return mismatch("the evidence was checked against digest %s, the registered version has %s", doc.Dataset.Digest, d.Digest)
	}
	if doc.Dataset.DVCMD5 != "" && doc.Dataset.DVCMD5 != d.DVCMD5 {
		return mismatch("the evidence has dvc_md5 %s, the registered version has %s", truncate(doc.Dataset.DVCMD5), d.DVCMD5)
	}
	files := make(map[string]bool, len(d.Files))
	for _, f := range d.Files {
		files[f.SHA256] = true
	}
	for _, in := range doc.Inputs {
		if !files[in.SHA256.Hex()] {
			return mismatch("checked input %q (%s) is not a file of the dataset", truncate(in.Path), in.SHA256)
		}
	}
	return nil
}

// EvidenceManifest is the manifest of the one-file model named name with
// content doc: what `custody sign NAME` signs for a single file.
func EvidenceManifest(name string, doc []byte) digest.Manifest {
	sum := digest.Digest(sha256.Sum256(doc))
	rs := []digest.Resource{{Name: name, Algorithm: "sha256", Digest: sum.Hex()}}
	root, _ := digest.OMSRoot(rs) // the digest is valid hex
	return digest.Manifest{
		Kind: digest.KindFile, Name: name, Digest: sum, OMSRoot: root,
		Serialization: digest.Serialization{Method: digest.MethodFiles, HashType: "sha256"},
		Resources:     rs, Files: []digest.File{{Name: name, Size: int64(len(doc))}},
	}
}

// AttachEvidence attaches a signed data-contract result to a registered
// dataset version. The signature must verify against the server's trust
// over the document as a one-file model (the [SignatureVerifier] checks
// the bundle signs exactly that file's SHA-256), and the document must be
// about exactly this dataset version: its dataset digest (and DVC hash, if
// present) equal the registered ones and every checked input is one of the
// version's files ([EvidenceMismatchError] otherwise). Attaching the same
// document again returns the stored record (created == false) without
// checking the signature again.
func (s *Service) AttachEvidence(ctx context.Context, actor Actor, req EvidenceRequest) (*store.Evidence, bool, error) {
	if err := actor.Require(PermPublish); err != nil {
		return nil, false, err
	}
	doc, err := req.parse()
	if err != nil {
		return nil, false, err
	}
	d, err := s.st.GetDataset(ctx, req.Dataset, req.Version)
	if err != nil {
		return nil, false, err
	}
	if err := bind(doc, d); err != nil {
		return nil, false, err
	}
	m := EvidenceManifest(req.Name, req.Document)
	ref := store.DatasetRef{Name: req.Dataset, Version: req.Version}
	existing := func() (*store.Evidence, error) {
		evs, err := s.st.ListEvidence(ctx, ref)
		if err != nil {
			return nil, err
		}
		for i := range evs {
			if evs[i].Digest == m.Digest {
				return &evs[i], nil
			}
		}
		return nil, nil
	}
	if e, err := existing(); err != nil || e != nil {
		return e, false, err
	}
	if s.opts.Verifier == nil {
		return nil, false, fmt.Errorf("%w: the server has no trusted keys configured", ErrUnverified)
	}
	signer, err := s.opts.Verifier.Verify(ctx, req.Signature, &m)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		return nil, false, &VerificationError{Index: 0, Err: err}
	}
	spec := doc.Contract
	if spec == nil {
		spec = doc.Suite
	}
	e := &store.Evidence{
		Dataset: req.Dataset, DatasetVersion: req.Version, Digest: m.Digest, Name: req.Name, Document: req.Document,
		Signature: store.Signature{Bundle: req.Signature, Signer: signer.Identity, KeyIDs: signer.KeyIDs},
		Contract:  spec.Name, ContractDigest: spec.SHA256, Outcome: doc.Outcome,
		Expectations: doc.Summary.Expectations, Failed: doc.Summary.Fail, CheckedAt: doc.CheckedAt.UTC(),
		CreatedBy: actor.Name, CreatedAt: s.now(),
	}
	if doc.Tool != nil {
		if err := checkText("tool version", doc.Tool.Version, 128); err != nil {
			return nil, false, err
		}
		e.ToolVersion = doc.Tool.Version
	}
	err = s.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CreateEvidence(ctx, e); err != nil {
			return err
		}
		return s.record(ctx, tx, actor, "dataset.evidence", req.Dataset+"@"+req.Version, map[string]any{
			"name": req.Dataset, "version": req.Version, "digest": e.Digest, "signer": e.Signature.Signer,
			"contract": e.Contract, "outcome": e.Outcome, "failed": e.Failed,
		})
	})
	if errors.Is(err, store.ErrExists) {
		cur, gerr := existing()
		if gerr != nil || cur == nil {
			return nil, false, errors.Join(err, gerr)
		}
		return cur, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return e, true, nil
}

// ListEvidence returns the evidence attached to a dataset version (which
// must exist), oldest first.
func (s *Service) ListEvidence(ctx context.Context, name, version string) ([]store.Evidence, error) {
	if _, err := s.GetDataset(ctx, name, version); err != nil {
		return nil, err
	}
	return s.st.ListEvidence(ctx, store.DatasetRef{Name: name, Version: version})
}

// ContractResult is one signed contract result about a training input, the
// shape the promote policy reads as `version.contracts[]` (docs/policy.md).
type ContractResult struct {
	Dataset  string `json:"dataset"`
	Version  string `json:"version"`
	Contract string `json:"contract"`
	// Passed is true when the evidence's outcome is "pass" (every
	// expectation passed; none unsupported or in error).
	Passed         bool          `json:"passed"`
	Outcome        string        `json:"outcome"`
	Failed         int           `json:"failed"`
	Signer         string        `json:"signer"`
	EvidenceDigest digest.Digest `json:"evidence_digest"`
	CheckedAt      time.Time     `json:"checked_at"`
}

// ContractResults returns, for a model version's training-run input
// datasets, every piece of evidence attached to them, in input order (then
// oldest first). A dataset without evidence contributes nothing: a policy
// requiring "every input passed its contract" must compare the inputs with
// the results.
func (s *Service) ContractResults(ctx context.Context, runInputs []store.DatasetRef) ([]ContractResult, error) {
	return contractResults(ctx, s.st, runInputs)
}

// contractResults is ContractResults over any reader (a transaction when
// the policy input is rebuilt under the model lock).
func contractResults(ctx context.Context, r store.Reader, runInputs []store.DatasetRef) ([]ContractResult, error) {
	out := []ContractResult{}
	for _, in := range runInputs {
		evs, err := r.ListEvidence(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			out = append(out, ContractResult{
				Dataset: in.Name, Version: in.Version, Contract: e.Contract, Passed: e.Outcome == "pass",
				Outcome: e.Outcome, Failed: e.Failed, Signer: e.Signature.Signer, EvidenceDigest: e.Digest, CheckedAt: e.CheckedAt,
			})
		}
	}
	return out, nil
}
