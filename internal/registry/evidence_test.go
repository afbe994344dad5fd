package registry_test

import (
	"crypto/ed25519"
	"crypto/md5"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/policy"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
	"github.com/custody-ml/custody/internal/store/sqlite"
)

// evidenceDoc returns a results document about spec whose inputs are the
// given files of it.
func evidenceDoc(spec registry.DatasetSpec, outcome string, failed int, inputs ...string) []byte {
	var ins []string
	for _, f := range spec.Files {
		for _, want := range inputs {
			if f.Path == want {
				ins = append(ins, fmt.Sprintf(`{"path":%q,"sha256":"sha256:%s"}`, f.Path, f.SHA256))
			}
		}
	}
	return fmt.Appendf(nil, `{"schema":"custody.data.check/v1","outcome":%q,"tool":{"name":"custody","version":"test"},
 "checked_at":"2026-02-01T00:00:00Z","contract":{"path":"c.yaml","sha256":"sha256:%s","name":"reviews-contract"},
 "summary":{"expectations":4,"pass":%d,"fail":%d},
 "dataset":{"path":"data","kind":"directory","digest":%q,"dvc_md5":%q,"files":%d},
 "inputs":[%s]}`, outcome, strings.Repeat("0", 64), 4-failed, failed, spec.Digest, spec.DVCMD5, len(spec.Files), strings.Join(ins, ","))
}

func (f *fixture) signDoc(name string, doc []byte) json.RawMessage {
	return f.sign(registry.EvidenceManifest(name, doc))
}

func TestAttachEvidence(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	spec := datasetSpec(t, "reviews", "1", map[string]string{"train.csv": "a,b\n1,2\n", "test.csv": "a,b\n3,4\n"})
	if _, _, err := f.svc.RegisterDataset(ctx, publisher, spec); err != nil {
		t.Fatal(err)
	}
	other := datasetSpec(t, "reviews", "2", map[string]string{"train.csv": "a,b\n9,9\n"})
	if _, _, err := f.svc.RegisterDataset(ctx, publisher, other); err != nil {
		t.Fatal(err)
	}
	doc := evidenceDoc(spec, "pass", 0, "train.csv", "test.csv")
	req := registry.EvidenceRequest{Dataset: "reviews", Version: "1", Name: "result.json", Document: doc, Signature: f.signDoc("result.json", doc)}
	e, created, err := f.svc.AttachEvidence(ctx, publisher, req)
	if err != nil || !created {
		t.Fatalf("AttachEvidence = %+v, %v, %v", e, created, err)
	}
	if e.Digest != digest.Digest(sha256.Sum256(doc)) || e.Contract != "reviews-contract" || e.Outcome != "pass" || e.Signature.Signer != "key test" || e.Expectations != 4 || e.ToolVersion != "test" {
		t.Fatalf("stored evidence %+v", e)
	}
	if evs := f.events(t); evs[len(evs)-1].Type != "dataset.evidence" || evs[len(evs)-1].Subject != "reviews@1" {
		t.Fatalf("last event %+v", evs[len(evs)-1])
	}
	// Again: idempotent, even with a signature that no longer verifies.
	again := req
	again.Signature = json.RawMessage(`{}`)
	if _, created, err := f.svc.AttachEvidence(ctx, publisher, again); err != nil || created {
		t.Fatalf("same evidence again: %v, %v", created, err)
	}

	f.clock = f.clock.Add(time.Minute)
	failing := evidenceDoc(spec, "fail", 2, "train.csv")
	if _, _, err := f.svc.AttachEvidence(ctx, publisher, registry.EvidenceRequest{Dataset: "reviews", Version: "1", Name: "r2.json", Document: failing, Signature: f.signDoc("r2.json", failing)}); err != nil {
		t.Fatal(err)
	}

	refuse := []struct {
		name string
		req  registry.EvidenceRequest
		want error
		msg  string
	}{
		{"wrong dataset digest", registry.EvidenceRequest{Dataset: "reviews", Version: "2", Name: "result.json", Document: doc, Signature: f.signDoc("result.json", doc)},
			registry.ErrConflict, "was checked against digest"},
		{"input not in the dataset", func() registry.EvidenceRequest {
			d := evidenceDoc(spec, "pass", 0, "train.csv")
			d = []byte(strings.Replace(string(d), `"inputs":[{"path":"train.csv","sha256":"sha256:`, `"inputs":[{"path":"train.csv","sha256":"sha256:`+strings.Repeat("1", 64)+`", "x":"`, 1))
			return registry.EvidenceRequest{Dataset: "reviews", Version: "1", Name: "x.json", Document: d, Signature: f.signDoc("x.json", d)}
		}(), registry.ErrConflict, "is not a file of the dataset"},
		{"dvc hash differs", func() registry.EvidenceRequest {
			d := []byte(strings.Replace(string(evidenceDoc(spec, "pass", 0, "train.csv")), spec.DVCMD5, strings.Repeat("0", 32)+".dir", 1))
			return registry.EvidenceRequest{Dataset: "reviews", Version: "1", Name: "x.json", Document: d, Signature: f.signDoc("x.json", d)}
		}(), registry.ErrConflict, "dvc_md5"},
		{"signature over other bytes", registry.EvidenceRequest{Dataset: "reviews", Version: "1", Name: "r3.json", Document: evidenceDoc(spec, "pass", 0, "test.csv"), Signature: f.signDoc("r3.json", doc)},
			registry.ErrUnverified, "another model"},
		{"no signature", registry.EvidenceRequest{Dataset: "reviews", Version: "1", Name: "r3.json", Document: doc}, registry.ErrUnverified, "unsigned"},
		{"not a results document", registry.EvidenceRequest{Dataset: "reviews", Version: "1", Name: "r3.json", Document: []byte(`{"schema":"x"}`), Signature: json.RawMessage(`{}`)},
			registry.ErrInvalid, "schema"},
		{"no dataset in the document", func() registry.EvidenceRequest {
			d := []byte(`{"schema":"custody.data.check/v1","outcome":"pass","checked_at":"2026-02-01T00:00:00Z","contract":{"name":"c"},"inputs":[{"path":"a"}]}`)
			return registry.EvidenceRequest{Dataset: "reviews", Version: "1", Name: "x.json", Document: d, Signature: f.signDoc("x.json", d)}
		}(), registry.ErrInvalid, "--dataset"},
		{"trailing data", registry.EvidenceRequest{Dataset: "reviews", Version: "1", Name: "r3.json", Document: append(append([]byte{}, doc...), "{}"...), Signature: json.RawMessage(`{}`)},
			registry.ErrInvalid, "trailing"},
		{"bad file name", registry.EvidenceRequest{Dataset: "reviews", Version: "1", Name: "../r.json", Document: doc, Signature: json.RawMessage(`{}`)}, registry.ErrInvalid, "file name"},
		{"unknown dataset", registry.EvidenceRequest{Dataset: "reviews", Version: "9", Name: "r.json", Document: doc, Signature: json.RawMessage(`{}`)}, registry.ErrNotFound, "not found"},
	}
	for _, tc := range refuse {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.svc.AttachEvidence(ctx, publisher, tc.req)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("AttachEvidence = %v, want %v containing %q", err, tc.want, tc.msg)
			}
		})
	}
	if _, _, err := f.svc.AttachEvidence(ctx, viewer, req); !errors.Is(err, registry.ErrForbidden) {
		t.Fatalf("viewer attached evidence: %v", err)
	}

	evs, err := f.svc.ListEvidence(ctx, "reviews", "1")
	if err != nil || len(evs) != 2 {
		t.Fatalf("ListEvidence = %d, %v", len(evs), err)
	}
	if _, err := f.svc.ListEvidence(ctx, "reviews", "9"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("ListEvidence(unknown) = %v", err)
	}
	res, err := f.svc.ContractResults(ctx, []store.DatasetRef{{Name: "reviews", Version: "2"}, {Name: "reviews", Version: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Dataset != "reviews" || res[0].Version != "1" || !res[0].Passed || res[1].Passed || res[1].Failed != 2 ||
		res[0].Signer != "key test" || res[0].Contract != "reviews-contract" || res[0].EvidenceDigest != e.Digest {
		t.Fatalf("ContractResults = %+v", res)
	}
}

// FuzzEvidenceDocument: arbitrary signed documents never panic the parser;
// each is attached or refused as invalid, conflicting or unverified.
func FuzzEvidenceDocument(f *testing.F) {
	st, err := sqlite.Open(f.Context(), filepath.Join(f.TempDir(), "r.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	pub, priv, _ := ed25519.GenerateKey(nil)
	fx := &fixture{st: st, priv: priv}
	fx.svc = registry.New(st, registry.Options{Verifier: edVerifier{pub}})
	data := []byte("a\n1\n")
	sum := digest.Digest(sha256.Sum256(data))
	spec := registry.DatasetSpec{Name: "d", Version: "1", Kind: digest.KindFile, Digest: sum, DVCMD5: fmt.Sprintf("%x", md5.Sum(data)),
		Files: []store.DatasetFile{{Path: "a.csv", Size: int64(len(data)), SHA256: sum.Hex(), MD5: fmt.Sprintf("%x", md5.Sum(data))}}}
	if _, _, err := fx.svc.RegisterDataset(f.Context(), publisher, spec); err != nil {
		f.Fatal(err)
	}
	f.Add(evidenceDoc(spec, "pass", 0, "a.csv"))
	f.Add(evidenceDoc(spec, "fail", 5, "a.csv"))
	f.Add([]byte(`{"schema":"custody.data.check/v1","outcome":"pass","summary":{"expectations":-1}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		_, _, err := fx.svc.AttachEvidence(t.Context(), publisher,
			registry.EvidenceRequest{Dataset: "d", Version: "1", Name: "r.json", Document: doc, Signature: fx.signDoc("r.json", doc)})
		if err != nil && !errors.Is(err, registry.ErrInvalid) && !errors.Is(err, registry.ErrConflict) && !errors.Is(err, registry.ErrUnverified) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}

// TestContractEvidenceInPolicy: the promote decision sees the contract
// evidence attached to the version's training datasets. A failed contract
// denies with the dataset named; with require_contracts an input without
// passing evidence denies; passing evidence allows.
func TestContractEvidenceInPolicy(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := gatedFixture(t, st)
	f.svc = registry.New(st, registry.Options{Verifier: edVerifier{f.priv.Public().(ed25519.PublicKey)}, Gate: mustDefaultGate(t),
		PolicyConfig: map[string]any{"require_contracts": true}, Now: func() time.Time { return f.clock }})
	ctx := t.Context()
	reviews := datasetSpec(t, "reviews", "1", map[string]string{"train.csv": "a,b\n1,2\n"})
	labels := datasetSpec(t, "labels", "1", map[string]string{"l.csv": "y\n1\n"})
	for _, d := range []registry.DatasetSpec{reviews, labels} {
		if _, _, err := f.svc.RegisterDataset(ctx, admin, d); err != nil {
			t.Fatal(err)
		}
	}
	attach := func(spec registry.DatasetSpec, outcome string, failed int, file string) {
		t.Helper()
		doc := evidenceDoc(spec, outcome, failed, file)
		name := outcome + ".json"
		if _, _, err := f.svc.AttachEvidence(ctx, admin, registry.EvidenceRequest{Dataset: spec.Name, Version: spec.Version, Name: name, Document: doc, Signature: f.signDoc(name, doc)}); err != nil {
			t.Fatal(err)
		}
	}
	req := f.request(t, "m", "1", "w1")
	req.ScanVerdict = "safe"
	req.Run = &registry.RunSpec{Inputs: []store.DatasetRef{{Name: "reviews", Version: "1"}, {Name: "labels", Version: "1"}}}
	if _, _, err := f.svc.RegisterVersion(ctx, admin, req); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.Approve(ctx, approver, "m", "1", "")
	wantDenied(t, err, "training dataset reviews@1 has no passing contract evidence")
	_, err = f.svc.Promote(ctx, approver, "m", "1", "production")
	wantDenied(t, err, "training dataset reviews@1 has no passing contract evidence")
	wantDenied(t, err, "training dataset labels@1 has no passing contract evidence")

	attach(reviews, "fail", 2, "train.csv")
	attach(labels, "pass", 0, "l.csv")
	_, err = f.svc.Promote(ctx, approver, "m", "1", "production")
	wantDenied(t, err, `dataset contract "reviews-contract" failed on reviews@1`)
	wantDenied(t, err, "training dataset reviews@1 has no passing contract evidence")

	// A new dataset version that passes, and a version trained on it.
	reviews2 := datasetSpec(t, "reviews", "2", map[string]string{"train.csv": "a,b\n1,3\n"})
	if _, _, err := f.svc.RegisterDataset(ctx, admin, reviews2); err != nil {
		t.Fatal(err)
	}
	attach(reviews2, "pass", 0, "train.csv")
	req = f.request(t, "m", "2", "w2")
	req.ScanVerdict = "safe"
	req.Run = &registry.RunSpec{Inputs: []store.DatasetRef{{Name: "reviews", Version: "2"}, {Name: "labels", Version: "1"}}}
	if _, _, err := f.svc.RegisterVersion(ctx, admin, req); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Approve(ctx, approver, "m", "2", ""); err != nil {
		t.Fatal(err)
	}
	if e, err := f.svc.Promote(ctx, approver, "m", "2", "production"); err != nil || e.Version != "2" {
		t.Fatalf("Promote(2) = %+v, %v", e, err)
	}
}

func mustDefaultGate(t *testing.T) registry.Gate {
	t.Helper()
	g, err := policy.NewDefault(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return g
}
