// Package attest writes and checks signed SLSA provenance v1 statements for
// training runs: an in-toto Statement v1 whose subject is the trained
// model (digest: its OMS root) and whose predicate
// (https://slsa.dev/provenance/v1) records the run's parameters, the
// datasets, code commit, build image and Python packages it resolved, and
// who built it. The statement is signed as a DSSE envelope in a Sigstore
// bundle v0.3 by package oms ([oms.SignPayload], [oms.VerifyKeysPayload]).
//
// The field mapping is documented in docs/bom.md ("Provenance").
//
// # Errors
//
// [Verify] returns an error wrapping [ErrNotVerified] when the attestation
// does not hold (signature, statement or subject); any other error means it
// could not be checked.
package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/envcheck"
	"github.com/custody-ml/custody/internal/oms"
	provv1 "github.com/in-toto/attestation/go/predicates/provenance/v1"
	attestationv1 "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	// PredicateType is the SLSA provenance v1 predicate type.
	PredicateType = "https://slsa.dev/provenance/v1"
	// BuildType identifies custody's training-run build definition: the
	// meaning of externalParameters and resolvedDependencies below and in
	// docs/bom.md.
	BuildType = "https://custody.dev/provenance/training-run/v1"
	// DefaultBuilderID names a self-attested build: the training ran
	// outside a hardened build platform and the key holder vouches for the
	// run record (SLSA Build L1).
	DefaultBuilderID = "https://custody.dev/builder/self-attested/v1"

	// AnnotationPin is the subject annotation holding the model's pinned
	// digest (docs/manifest.md), which binds file names; the OMS root, the
	// subject digest, does not.
	AnnotationPin = "custody.dev/pinnedDigest"
	// AnnotationSerialization is the subject annotation holding how the
	// model was hashed (digest.Serialization), so that a verifier hashes
	// it the same way.
	AnnotationSerialization = "custody.dev/serialization"
)

// ErrNotVerified is wrapped by [Verify] when the attestation does not hold.
var ErrNotVerified = errors.New("attestation not verified")

// Run is what a training run contributes to the provenance.
type Run struct {
	ID          string
	Params      map[string]string
	CodeRepo    string
	CodeCommit  string
	ImageDigest string // sha256:<hex>
	// EnvLock is the environment lock (custody env capture); its packages
	// become resolved dependencies. Other formats are ignored.
	EnvLock json.RawMessage
}

// Dataset is an input dataset: its registry name and version, its digest
// (the custody pin of its files) and optional source and DVC hash.
type Dataset struct {
	Name, Version string
	Digest        digest.Digest
	SourceURI     string
	DVCMD5        string
}

// Input is everything a statement is built from.
type Input struct {
	// ModelName is the subject name (e.g. "sentiment@1" or a file name).
	ModelName string
	// Manifest is the model's manifest: OMSRoot is the subject digest.
	Manifest *digest.Manifest
	Run      Run
	Datasets []Dataset
	// BuilderID is runDetails.builder.id; empty means DefaultBuilderID.
	BuilderID string
	// StartedOn and FinishedOn are the run's times, when known.
	StartedOn, FinishedOn time.Time
}

type resourceDescriptor struct {
	Name        string            `json:"name,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	Annotations map[string]any    `json:"annotations,omitempty"`
}

type statement struct {
	Type          string               `json:"_type"`
	Subject       []resourceDescriptor `json:"subject"`
	PredicateType string               `json:"predicateType"`
	Predicate     provenance           `json:"predicate"`
}

type provenance struct {
	BuildDefinition struct {
		BuildType            string               `json:"buildType"`
		ExternalParameters   map[string]any       `json:"externalParameters"`
		ResolvedDependencies []resourceDescriptor `json:"resolvedDependencies,omitempty"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID string `json:"id"`
		} `json:"builder"`
		Metadata *buildMetadata `json:"metadata,omitempty"`
	} `json:"runDetails"`
}

type buildMetadata struct {
	InvocationID string `json:"invocationId,omitempty"`
	StartedOn    string `json:"startedOn,omitempty"`
	FinishedOn   string `json:"finishedOn,omitempty"`
}

// Statement returns the in-toto statement JSON (the DSSE payload).
func Statement(in Input) ([]byte, error) {
	if in.Manifest == nil || in.Manifest.OMSRoot.IsZero() {
		return nil, errors.New("attest: the model's manifest has no OMS root")
	}
	if in.ModelName == "" {
		return nil, errors.New("attest: no subject name")
	}
	st := statement{Type: oms.StatementType, PredicateType: PredicateType}
	st.Subject = []resourceDescriptor{{
		Name:   in.ModelName,
		Digest: map[string]string{"sha256": in.Manifest.OMSRoot.Hex()},
		Annotations: map[string]any{
			AnnotationPin:           in.Manifest.Digest.String(),
			AnnotationSerialization: in.Manifest.Serialization,
		},
	}}
	p := &st.Predicate
	p.BuildDefinition.BuildType = BuildType
	params := in.Run.Params
	if params == nil {
		params = map[string]string{}
	}
	ext := map[string]any{"params": params}
	if in.Run.CodeRepo != "" || in.Run.CodeCommit != "" {
		ext["source"] = map[string]string{"repository": in.Run.CodeRepo, "commit": in.Run.CodeCommit}
	}
	p.BuildDefinition.ExternalParameters = ext

	var deps []resourceDescriptor
	for _, d := range in.Datasets {
		rd := resourceDescriptor{Name: d.Name + "@" + d.Version, URI: d.SourceURI, Digest: map[string]string{"sha256": d.Digest.Hex()}}
		if d.DVCMD5 != "" {
			rd.Annotations = map[string]any{"dvcMd5": d.DVCMD5}
		}
		deps = append(deps, rd)
	}
	if in.Run.CodeRepo != "" || in.Run.CodeCommit != "" {
		rd := resourceDescriptor{Name: "source"}
		if in.Run.CodeRepo != "" {
			rd.URI = in.Run.CodeRepo
			if !strings.HasPrefix(rd.URI, "git+") {
				rd.URI = "git+" + rd.URI
			}
		}
		if in.Run.CodeCommit != "" {
			rd.Digest = map[string]string{"gitCommit": in.Run.CodeCommit}
		}
		deps = append(deps, rd)
	}
	if hexd, ok := strings.CutPrefix(in.Run.ImageDigest, "sha256:"); ok {
		deps = append(deps, resourceDescriptor{Name: "build-image", Digest: map[string]string{"sha256": hexd}})
	}
	var lock envcheck.Lock
	if len(in.Run.EnvLock) > 0 && json.Unmarshal(in.Run.EnvLock, &lock) == nil && lock.Schema == envcheck.Schema {
		pk := append([]envcheck.Package(nil), lock.Packages...)
		sort.Slice(pk, func(i, j int) bool { return pk[i].Name < pk[j].Name })
		for _, pkg := range pk {
			deps = append(deps, resourceDescriptor{URI: "pkg:pypi/" + pkg.Name + "@" + pkg.Version})
		}
	}
	p.BuildDefinition.ResolvedDependencies = deps

	p.RunDetails.Builder.ID = in.BuilderID
	if p.RunDetails.Builder.ID == "" {
		p.RunDetails.Builder.ID = DefaultBuilderID
	}
	md := &buildMetadata{InvocationID: in.Run.ID}
	if !in.StartedOn.IsZero() {
		md.StartedOn = in.StartedOn.UTC().Format(time.RFC3339)
	}
	if !in.FinishedOn.IsZero() {
		md.FinishedOn = in.FinishedOn.UTC().Format(time.RFC3339)
	}
	if *md != (buildMetadata{}) {
		p.RunDetails.Metadata = md
	}
	raw, err := json.Marshal(&st)
	if err != nil {
		return nil, err
	}
	// What we write must pass our own strict reading.
	if _, err := parse(raw); err != nil {
		return nil, fmt.Errorf("attest: built an invalid statement: %w", err)
	}
	return raw, nil
}

// Sign builds the statement and signs it with key (and, optionally, a
// certificate chain) into a Sigstore bundle.
func Sign(ctx context.Context, in Input, key crypto.Signer, chain []*x509.Certificate) (*oms.Bundle, error) {
	payload, err := Statement(in)
	if err != nil {
		return nil, err
	}
	return oms.SignPayload(ctx, payload, key, chain)
}

// Parsed is a verified statement.
type Parsed struct {
	Statement  *attestationv1.Statement
	Provenance *provv1.Provenance
}

// parse reads a statement strictly with the in-toto reference types
// (unknown fields refused) and checks it with their validators: an in-toto
// Statement v1 with the SLSA provenance v1 predicate.
func parse(payload []byte) (*Parsed, error) {
	st := new(attestationv1.Statement)
	if err := protojson.Unmarshal(payload, st); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	if st.GetType() != oms.StatementType {
		return nil, fmt.Errorf("statement type %q, want %s", st.GetType(), oms.StatementType)
	}
	if st.GetPredicateType() != PredicateType {
		return nil, fmt.Errorf("predicate type %q, want %s", st.GetPredicateType(), PredicateType)
	}
	raw, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		return nil, err
	}
	prov := new(provv1.Provenance)
	if err := protojson.Unmarshal(raw, prov); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	if err := prov.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	return &Parsed{Statement: st, Provenance: prov}, nil
}

// Subject returns the name, OMS root and pinned digest the statement's
// single subject names, and the serialization to hash the model with.
func (p *Parsed) Subject() (name string, root, pin digest.Digest, ser digest.Serialization, err error) {
	subs := p.Statement.GetSubject()
	if len(subs) != 1 {
		return "", root, pin, ser, fmt.Errorf("%w: %d subjects, want 1", ErrNotVerified, len(subs))
	}
	s := subs[0]
	if root, err = digest.ParseHex(s.GetDigest()["sha256"]); err != nil {
		return "", root, pin, ser, fmt.Errorf("%w: subject: %v", ErrNotVerified, err)
	}
	ann := s.GetAnnotations().AsMap()
	pinStr, _ := ann[AnnotationPin].(string)
	if pin, err = digest.ParseDigest(pinStr); err != nil {
		return "", root, pin, ser, fmt.Errorf("%w: subject annotation %s: %v", ErrNotVerified, AnnotationPin, err)
	}
	raw, err := json.Marshal(ann[AnnotationSerialization])
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		err = dec.Decode(&ser)
	}
	if err != nil || ser.Method == "" {
		return "", root, pin, ser, fmt.Errorf("%w: subject annotation %s is missing or malformed", ErrNotVerified, AnnotationSerialization)
	}
	return s.GetName(), root, pin, ser, nil
}

// Verify checks a bundle's signature with the trusted keys, parses its
// statement strictly, and returns it. Compare the subject with the model
// with [Parsed.Check].
func Verify(bundle []byte, keys []crypto.PublicKey) (*Parsed, []string, error) {
	b, err := oms.ParseBundle(bundle)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotVerified, err)
	}
	payload, signers, err := oms.VerifyKeysPayload(b, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotVerified, err)
	}
	p, err := parse(payload)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotVerified, err)
	}
	return p, signers, nil
}

// Check compares the statement's subject with a model's manifest, hashed
// with the serialization [Parsed.Subject] returned: both the OMS root and
// the pinned digest must match.
func (p *Parsed) Check(m *digest.Manifest) error {
	_, root, pin, _, err := p.Subject()
	if err != nil {
		return err
	}
	if !root.Equal(m.OMSRoot) {
		return fmt.Errorf("%w: the subject's OMS root is %s, the model's is %s", ErrNotVerified, root, m.OMSRoot)
	}
	if !pin.Equal(m.Digest) {
		return fmt.Errorf("%w: the subject's pinned digest is %s, the model's is %s", ErrNotVerified, pin, m.Digest)
	}
	return nil
}
