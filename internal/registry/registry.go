// Package registry is the custody model registry's domain: registered
// models, immutable model versions vouched for by verified signatures,
// aliases with their full history, datasets, training runs and the lineage
// between them, and the tokens and roles that govern who may change what.
//
// The package knows nothing of HTTP or of a particular database: it reaches
// storage through the [store.Store] interfaces and signature checking
// through [SignatureVerifier].
//
// # Rules
//
//   - Versions are immutable. Registering a version again with the same
//     bytes (the same pinned digest) is idempotent and returns the existing
//     version; registering different bytes is refused with a
//     [ConflictError]. Datasets follow the same rule.
//   - A version is registered only if every submitted signature bundle
//     verifies against the server's trust and signs exactly the submitted
//     manifest; at least one bundle is required.
//   - Alias changes are appended, never overwritten: the target of an alias
//     at any past time is a query ([Service.ResolveAlias]).
//   - Approve, Promote and Rollback (and RegisterVersion, when a [Gate] is
//     configured) are decided by policy; every decision, allow or deny, is
//     logged as a policy.decision event, a denial in its own transaction
//     without the change ([DeniedError]). Protected aliases move only
//     through Promote and Rollback.
//   - Every state change happens in one store transaction that also
//     journals it ([store.Event]) and runs the [TxHook]s, so a log built
//     over the journal never disagrees with the state.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/store"
)

// SignatureVerifier checks OMS signature bundles against the server's
// trusted keys, certificate roots or identities.
//
// Verify must succeed only if bundle verifies under the trust the verifier
// was configured with AND the statement it signs names exactly the model
// described by m (its OMS root digest and resources, hashed with m's
// serialization). It is called outside any transaction and may be called
// concurrently.
type SignatureVerifier interface {
	Verify(ctx context.Context, bundle []byte, m *digest.Manifest) (Signer, error)
}

// Signer is who a verified bundle says signed it.
type Signer struct {
	// Identity describes the signer for people: a key ID, a certificate
	// subject, or a Sigstore identity and issuer.
	Identity string
	// KeyIDs are the identifiers of the distinct trusted keys whose
	// signatures verified (threshold and two-person policies count them).
	KeyIDs []string
}

// TxHook runs inside every state-changing transaction, after the change
// and its journal entry have been written. The transparency log hooks in
// here: an error aborts the whole transaction, so the state change and the
// log entry commit together or not at all. A hook may do its work in a
// function it defers to the end of the transaction (store.Tx.Defer), as
// the log does to append.
type TxHook interface {
	AfterChange(ctx context.Context, tx store.Tx, ev *store.Event) error
}

// Options configure a Service.
type Options struct {
	// Verifier checks signature bundles. Nil refuses every registration
	// (nothing can be verified).
	Verifier SignatureVerifier
	// Hooks run in every write transaction (see TxHook).
	Hooks []TxHook
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Gate decides register, approve, promote and rollback (see Gate).
	// Nil leaves registration ungated and refuses approve, promote and
	// rollback (fail closed).
	Gate Gate
	// PolicyConfig is input.config of every decision (trusted_keys,
	// min_metrics, ...: docs/policy.md). It must marshal to JSON and is
	// not modified.
	PolicyConfig map[string]any
	// ProtectedAliases move only through Promote and Rollback: SetAlias
	// refuses them. custody server protects "production" by default.
	ProtectedAliases []string
}

// Service implements the registry's operations over a store.
type Service struct {
	st   store.Store
	opts Options
}

// New returns a Service over st.
func New(st store.Store, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{st: st, opts: opts}
}

// Store returns the underlying store.
func (s *Service) Store() store.Store { return s.st }

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

// record journals a change and runs the hooks, inside tx.
func (s *Service) record(ctx context.Context, tx store.Tx, actor Actor, typ, subject string, payload any) error {
	_, err := s.recordEvent(ctx, tx, actor, typ, subject, payload)
	return err
}

// recordEvent is record returning the journal event, whose LogIndex the
// transparency log's hook sets at the end of the transaction (see
// withLogIndex).
func (s *Service) recordEvent(ctx context.Context, tx store.Tx, actor Actor, typ, subject string, payload any) (*store.Event, error) {
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("failed to encode event: %w", err)
	}
	ev := &store.Event{Type: typ, Subject: subject, Actor: actor.Name, At: s.now(), Payload: p}
	if err := tx.AppendEvent(ctx, ev); err != nil {
		return nil, err
	}
	for _, h := range s.opts.Hooks {
		if err := h.AfterChange(ctx, tx, ev); err != nil {
			return nil, fmt.Errorf("failed to record %s in the log: %w", typ, err)
		}
	}
	return ev, nil
}

// withLogIndex defers f to the end of the transaction, once the
// transparency log has appended ev's entry: f gets the entry's leaf index
// and may record it in the same transaction. Without a log it never runs.
func withLogIndex(tx store.Tx, ev *store.Event, f func(ctx context.Context, tx store.Tx, idx int64) error) {
	tx.Defer(func(ctx context.Context, tx store.Tx) error {
		if ev.LogIndex == nil {
			return nil
		}
		return f(ctx, tx, *ev.LogIndex)
	})
}

// ModelSpec is the metadata of a model.
type ModelSpec struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Owners      []string `json:"owners"`
	Tags        []string `json:"tags"`
}

func (m *ModelSpec) validate() error {
	if err := CheckName(m.Name); err != nil {
		return err
	}
	if err := checkText("description", m.Description, MaxDescriptionLen); err != nil {
		return err
	}
	if err := checkList("owner", m.Owners, MaxOwners, MaxNameLen); err != nil {
		return err
	}
	return checkList("tag", m.Tags, MaxTags, MaxTagLen)
}

// PutModel creates a model or replaces the metadata of an existing one.
func (s *Service) PutModel(ctx context.Context, actor Actor, spec ModelSpec) (*store.Model, error) {
	if err := actor.Require(PermPublish); err != nil {
		return nil, err
	}
	if err := spec.validate(); err != nil {
		return nil, err
	}
	var out *store.Model
	err := s.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		now := s.now()
		m := &store.Model{Name: spec.Name, Description: spec.Description, Owners: spec.Owners, Tags: spec.Tags, CreatedBy: actor.Name, CreatedAt: now, UpdatedAt: now}
		created, err := tx.CreateModel(ctx, m)
		if err != nil {
			return err
		}
		typ := "model.create"
		if !created {
			cur, err := tx.LockModel(ctx, spec.Name)
			if err != nil {
				return err
			}
			cur.Description, cur.Owners, cur.Tags, cur.UpdatedAt = spec.Description, spec.Owners, spec.Tags, now
			if err := tx.UpdateModel(ctx, cur); err != nil {
				return err
			}
			m, typ = cur, "model.update"
		}
		out = m
		return s.record(ctx, tx, actor, typ, m.Name, spec)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetModel returns a model.
func (s *Service) GetModel(ctx context.Context, name string) (*store.Model, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	return s.st.GetModel(ctx, name)
}

// ListModels lists models by name, after the cursor.
func (s *Service) ListModels(ctx context.Context, after string, limit int) ([]store.Model, error) {
	return s.st.ListModels(ctx, after, limit)
}

// RunSpec describes the training run that produced a version.
type RunSpec struct {
	// ID names the run; empty means the server assigns one.
	ID          string             `json:"id,omitempty"`
	Params      map[string]string  `json:"params,omitempty"`
	Metrics     map[string]float64 `json:"metrics,omitempty"`
	CodeRepo    string             `json:"code_repo,omitempty"`
	CodeCommit  string             `json:"code_commit,omitempty"`
	ImageDigest string             `json:"image_digest,omitempty"`
	EnvLock     json.RawMessage    `json:"env_lock,omitempty"`
	Inputs      []store.DatasetRef `json:"inputs,omitempty"`
}

// RegisterRequest registers a model version.
type RegisterRequest struct {
	Model    string          `json:"model"`
	Version  string          `json:"version"`
	Manifest digest.Manifest `json:"manifest"`
	// Signatures are OMS signature bundles (JSON), at least one.
	Signatures  []json.RawMessage `json:"signatures"`
	URI         string            `json:"uri,omitempty"`
	Format      string            `json:"format,omitempty"`
	ScanVerdict string            `json:"scan_verdict,omitempty"`
	// Run, if set, records how the version was produced; its inputs are
	// lineage.
	Run *RunSpec `json:"run,omitempty"`
}

func (r *RegisterRequest) validate() error {
	if err := CheckName(r.Model); err != nil {
		return err
	}
	if err := CheckVersion(r.Version); err != nil {
		return err
	}
	if len(r.Manifest.Resources) > MaxResources || len(r.Manifest.Files) > MaxResources {
		return invalidf("manifest lists more than %d resources", MaxResources)
	}
	// Re-parse the manifest to check that it is self-consistent: the pin
	// and the OMS root must follow from the listed resources.
	raw, err := json.Marshal(&r.Manifest)
	if err != nil {
		return invalidf("manifest: %v", err)
	}
	if _, err := digest.ReadManifest(bytesReader(raw)); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(r.Signatures) == 0 {
		return fmt.Errorf("%w: no signature bundle (unsigned models are not registered)", ErrUnverified)
	}
	if len(r.Signatures) > MaxSignatures {
		return invalidf("more than %d signature bundles", MaxSignatures)
	}
	for i, b := range r.Signatures {
		if len(b) > MaxBundleSize {
			return invalidf("signature %d is larger than %d bytes", i, MaxBundleSize)
		}
	}
	if err := checkURI("uri", r.URI); err != nil {
		return err
	}
	if r.Format != "" {
		if err := checkIdent("format", r.Format, 32); err != nil {
			return err
		}
	}
	okVerdict := false
	for _, v := range ScanVerdicts {
		okVerdict = okVerdict || v == r.ScanVerdict
	}
	if !okVerdict {
		return invalidf("scan verdict %q is not one of safe, suspicious, unsafe, unknown", truncate(r.ScanVerdict))
	}
	if r.Run != nil {
		return r.Run.validate()
	}
	return nil
}

func (r *RunSpec) validate() error {
	if r.ID != "" {
		if err := checkIdent("run id", r.ID, MaxNameLen); err != nil {
			return err
		}
	}
	if len(r.Params) > MaxRunEntries || len(r.Metrics) > MaxRunEntries {
		return invalidf("more than %d params or metrics", MaxRunEntries)
	}
	for k, v := range r.Params {
		if err := checkText("param name", k, MaxTagLen); err != nil || k == "" {
			return invalidf("param name %q is empty or invalid", truncate(k))
		}
		if err := checkText("param "+k, v, MaxRunValueLen); err != nil {
			return err
		}
	}
	for k := range r.Metrics {
		if err := checkText("metric name", k, MaxTagLen); err != nil || k == "" {
			return invalidf("metric name %q is empty or invalid", truncate(k))
		}
	}
	if err := checkURI("code_repo", r.CodeRepo); err != nil {
		return err
	}
	if err := checkText("code_commit", r.CodeCommit, 128); err != nil {
		return err
	}
	if r.ImageDigest != "" {
		if err := checkText("image_digest", r.ImageDigest, 256); err != nil {
			return err
		}
	}
	if len(r.EnvLock) > MaxEnvLockSize {
		return invalidf("env_lock is larger than %d bytes", MaxEnvLockSize)
	}
	if len(r.EnvLock) > 0 && !json.Valid(r.EnvLock) {
		return invalidf("env_lock is not JSON")
	}
	if len(r.Inputs) > MaxInputs {
		return invalidf("more than %d input datasets", MaxInputs)
	}
	seen := map[store.DatasetRef]bool{}
	for _, in := range r.Inputs {
		if err := CheckName(in.Name); err != nil {
			return err
		}
		if err := CheckVersion(in.Version); err != nil {
			return err
		}
		if seen[in] {
			return invalidf("input %s@%s listed twice", in.Name, in.Version)
		}
		seen[in] = true
	}
	return nil
}

// RegisterVersion registers an immutable model version, creating the model
// (owned by the actor) on first use. It returns the stored version and
// whether this call created it: re-registering the same bytes returns the
// existing version and created == false; different bytes fail with a
// [ConflictError].
func (s *Service) RegisterVersion(ctx context.Context, actor Actor, req RegisterRequest) (*store.Version, bool, error) {
	if err := actor.Require(PermPublish); err != nil {
		return nil, false, err
	}
	if err := req.validate(); err != nil {
		return nil, false, err
	}
	// Idempotence first: a retry of a registration that committed must not
	// depend on the signatures still verifying (keys rotate).
	if v, err := s.st.GetVersion(ctx, req.Model, req.Version); err == nil {
		return s.sameVersion(v, &req)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, false, err
	}
	sigs, err := s.verify(ctx, &req)
	if err != nil {
		return nil, false, err
	}
	var decision *verdict
	if s.opts.Gate != nil {
		if decision, err = s.decideRegister(ctx, actor, &req, sigs); err != nil {
			return nil, false, err
		}
	}
	var out *store.Version
	created := false
	err = s.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		now := s.now()
		modelCreated, err := tx.CreateModel(ctx, &store.Model{Name: req.Model, Owners: []string{actor.Name}, CreatedBy: actor.Name, CreatedAt: now, UpdatedAt: now})
		if err != nil {
			return err
		}
		if _, err := tx.LockModel(ctx, req.Model); err != nil {
			return err
		}
		if modelCreated {
			if err := s.record(ctx, tx, actor, "model.create", req.Model, ModelSpec{Name: req.Model, Owners: []string{actor.Name}}); err != nil {
				return err
			}
		}
		if v, err := tx.GetVersion(ctx, req.Model, req.Version); err == nil {
			out, created, err = s.sameVersion(v, &req)
			return err
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		v := &store.Version{
			Model: req.Model, Version: req.Version, Manifest: req.Manifest, Signatures: sigs,
			URI: req.URI, Format: req.Format, ScanVerdict: req.ScanVerdict,
			CreatedBy: actor.Name, CreatedAt: now,
		}
		if req.Run != nil {
			run, err := s.createRun(ctx, tx, actor, req.Run, req.Model, req.Version, now)
			if err != nil {
				return err
			}
			v.RunID = run.ID
		}
		if err := tx.CreateVersion(ctx, v); err != nil {
			return err
		}
		signers := make([]string, len(sigs))
		for i, sg := range sigs {
			signers[i] = sg.Signer
		}
		out, created = v, true
		if decision != nil {
			if err := s.recordDecision(ctx, tx, actor, decision); err != nil {
				return err
			}
		}
		return s.record(ctx, tx, actor, "version.register", req.Model+"@"+req.Version, map[string]any{
			"model": req.Model, "version": req.Version, "digest": req.Manifest.Digest, "oms_root": req.Manifest.OMSRoot,
			"signers": signers, "uri": req.URI, "run_id": v.RunID, "scan_verdict": req.ScanVerdict,
		})
	})
	if err != nil {
		return nil, false, err
	}
	return out, created, nil
}

// decideRegister evaluates the register policy on the version about to
// be created (its signatures just verified). A denial is logged and
// returned; an allow is logged by the caller with the registration.
func (s *Service) decideRegister(ctx context.Context, actor Actor, req *RegisterRequest, sigs []store.Signature) (*verdict, error) {
	v := &store.Version{Model: req.Model, Version: req.Version, Manifest: req.Manifest, Signatures: sigs, ScanVerdict: req.ScanVerdict, CreatedBy: actor.Name}
	trusted := make([]bool, len(sigs))
	for i := range trusted {
		trusted[i] = true // verified against the current trust just now
	}
	vin, err := versionInput(ctx, s.st, v, trusted)
	if err != nil {
		return nil, err
	}
	if req.Run != nil {
		m := map[string]any{}
		for k, x := range req.Run.Metrics {
			m[k] = x
		}
		vin["metrics"] = m
	}
	vd, err := s.evaluate(ctx, DecisionRegister, req.Model+"@"+req.Version, s.policyInput(DecisionRegister, actor, vin), nil)
	if err != nil {
		return nil, s.refuse(ctx, actor, vd, err)
	}
	if !vd.allow {
		return nil, s.refuse(ctx, actor, vd, nil)
	}
	return vd, nil
}

func (s *Service) sameVersion(v *store.Version, req *RegisterRequest) (*store.Version, bool, error) {
	if v.Manifest.Digest != req.Manifest.Digest {
		return nil, false, &ConflictError{Kind: "model version", Name: req.Model, Version: req.Version, Existing: v.Manifest.Digest, Got: req.Manifest.Digest}
	}
	return v, false, nil
}

func (s *Service) verify(ctx context.Context, req *RegisterRequest) ([]store.Signature, error) {
	if s.opts.Verifier == nil {
		return nil, fmt.Errorf("%w: the server has no trusted keys configured", ErrUnverified)
	}
	sigs := make([]store.Signature, len(req.Signatures))
	for i, b := range req.Signatures {
		signer, err := s.opts.Verifier.Verify(ctx, b, &req.Manifest)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, &VerificationError{Index: i, Err: err}
		}
		sigs[i] = store.Signature{Bundle: b, Signer: signer.Identity, KeyIDs: signer.KeyIDs}
	}
	return sigs, nil
}

func (s *Service) createRun(ctx context.Context, tx store.Tx, actor Actor, spec *RunSpec, model, version string, now time.Time) (*store.Run, error) {
	for _, in := range spec.Inputs {
		if _, err := tx.GetDataset(ctx, in.Name, in.Version); errors.Is(err, store.ErrNotFound) {
			return nil, invalidf("input dataset %s@%s is not registered", in.Name, in.Version)
		} else if err != nil {
			return nil, err
		}
	}
	id := spec.ID
	if id == "" {
		id = "run-" + randomHex(8)
	}
	run := &store.Run{
		ID: id, Params: spec.Params, Metrics: spec.Metrics, CodeRepo: spec.CodeRepo, CodeCommit: spec.CodeCommit,
		ImageDigest: spec.ImageDigest, EnvLock: spec.EnvLock, Inputs: spec.Inputs,
		OutputModel: model, OutputVersion: version, CreatedBy: actor.Name, CreatedAt: now,
	}
	if err := tx.CreateRun(ctx, run); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, fmt.Errorf("%w: run %s already exists (a run produces one version)", ErrConflict, id)
		}
		return nil, err
	}
	if run.Inputs == nil {
		run.Inputs = []store.DatasetRef{}
	}
	return run, s.record(ctx, tx, actor, "run.create", id, map[string]any{"id": id, "inputs": run.Inputs, "output": model + "@" + version})
}

// GetVersion returns a model version.
func (s *Service) GetVersion(ctx context.Context, model, version string) (*store.Version, error) {
	if err := CheckName(model); err != nil {
		return nil, err
	}
	if err := CheckVersion(version); err != nil {
		return nil, err
	}
	return s.st.GetVersion(ctx, model, version)
}

// ListVersions lists a model's versions by version label.
func (s *Service) ListVersions(ctx context.Context, model, after string, limit int) ([]store.Version, error) {
	if _, err := s.GetModel(ctx, model); err != nil {
		return nil, err
	}
	return s.st.ListVersions(ctx, model, after, limit)
}

// GetRun returns a training run.
func (s *Service) GetRun(ctx context.Context, id string) (*store.Run, error) {
	if err := checkIdent("run id", id, MaxNameLen); err != nil {
		return nil, err
	}
	return s.st.GetRun(ctx, id)
}
