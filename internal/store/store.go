// Package store defines the persistence interfaces of the custody registry
// and the records they hold. Implementations live in subpackages (sqlite,
// postgres); all of them pass the conformance suite in storetest.
//
// The store is deliberately dumb: it persists records, enforces uniqueness
// and hands out transactions. The rules (validation, immutability of
// versions, idempotent re-registration, who may do what) live in the
// registry domain package, which reaches a store only through these
// interfaces. A store never imports the domain.
//
// # Transactions
//
// Every state change runs inside [Store.Update]: one read-write transaction
// in which the domain reads, checks, writes the new rows and appends an
// [Event] describing the change ([Tx.AppendEvent]). Either everything
// commits or nothing does, so the event journal (and the transparency log
// built over it) can never disagree with the state it describes.
//
// Concurrent writers on the same model are serialized by [Tx.LockModel]
// (a row lock in PostgreSQL; SQLite serializes all writers).
//
// # Errors
//
// Lookups of absent records return errors wrapping [ErrNotFound]; inserts
// that collide with an existing key return errors wrapping [ErrExists].
// Check both with errors.Is.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/custody-ml/custody/internal/digest"
)

var (
	// ErrNotFound is wrapped by lookups of records that do not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists is wrapped by inserts whose key is already taken.
	ErrExists = errors.New("already exists")
)

// Model is a registered model: a name and its metadata. Versions hang off
// it.
type Model struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Owners      []string  `json:"owners"`
	Tags        []string  `json:"tags"`
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Signature is one OMS signature bundle attached to a version, with the
// signer the verifier reported when it was accepted.
type Signature struct {
	// Bundle is the bundle exactly as submitted (JSON).
	Bundle json.RawMessage `json:"bundle"`
	Signer string          `json:"signer"`
	// KeyIDs are the trusted keys whose signatures verified.
	KeyIDs []string `json:"key_ids,omitempty"`
}

// Version is an immutable model version: the manifest of its bytes, the
// signatures that vouch for them, and where the bytes live.
type Version struct {
	Model       string          `json:"model"`
	Version     string          `json:"version"`
	Manifest    digest.Manifest `json:"manifest"`
	Signatures  []Signature     `json:"signatures"`
	URI         string          `json:"uri,omitempty"`
	Format      string          `json:"format,omitempty"`
	ScanVerdict string          `json:"scan_verdict,omitempty"`
	// RunID names the training run that produced this version, if any.
	RunID     string    `json:"run_id,omitempty"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// AliasEvent is one change of an alias: from Previous to Version ("" means
// the alias did not exist / was removed). The current target of an alias is
// its latest event; its target at time T is the latest event at or before T.
type AliasEvent struct {
	Seq      int64     `json:"seq"`
	Model    string    `json:"model"`
	Alias    string    `json:"alias"`
	Version  string    `json:"version"`
	Previous string    `json:"previous,omitempty"`
	Actor    string    `json:"actor"`
	At       time.Time `json:"at"`
	// LogIndex is the transparency log leaf index of the entry that
	// recorded this change; nil for changes made without a log (or before
	// schema v3).
	LogIndex *int64 `json:"log_index,omitempty"`
}

// Deployment is a serving process's report that it started a model
// version it verified (custody exec --server).
type Deployment struct {
	ID      int64  `json:"id"`
	Model   string `json:"model"`
	Alias   string `json:"alias"`
	Version string `json:"version"`
	// Digest is the pinned manifest digest the process verified.
	Digest digest.Digest `json:"digest"`
	// AliasLogIndex is the log index of the alias change the process
	// verified (-1 if it was not deployed through an alias).
	AliasLogIndex int64     `json:"alias_log_index"`
	Host          string    `json:"host"`
	PID           int64     `json:"pid"`
	StartedAt     time.Time `json:"started_at"`
	Actor         string    `json:"actor"`
	At            time.Time `json:"at"`
	// LogIndex is the log leaf index of the deployment's own entry.
	LogIndex *int64 `json:"log_index,omitempty"`
}

// DatasetFile is one file of a dataset: SHA-256 for integrity and the MD5
// DVC uses to address it.
type DatasetFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // 64 lowercase hex
	MD5    string `json:"md5"`    // 32 lowercase hex
}

// Dataset is an immutable dataset version.
type Dataset struct {
	Name    string        `json:"name"`
	Version string        `json:"version"`
	Digest  digest.Digest `json:"digest"`
	// DVCMD5 is the DVC hash of the whole dataset: a file's md5, or the
	// "<md5>.dir" hash of a directory.
	DVCMD5    string        `json:"dvc_md5"`
	SourceURI string        `json:"source_uri,omitempty"`
	Size      int64         `json:"size"`
	Rows      *int64        `json:"rows,omitempty"`
	Files     []DatasetFile `json:"files"`
	CreatedBy string        `json:"created_by"`
	CreatedAt time.Time     `json:"created_at"`
}

// Evidence is a signed data-contract result (the JSON `custody data check`
// writes) attached to a dataset version. The server keeps the document and
// its signature bundle verbatim, plus a summary it extracted after checking
// that the document is about exactly this dataset version's bytes.
type Evidence struct {
	Dataset        string `json:"dataset"`
	DatasetVersion string `json:"dataset_version"`
	// Digest is the SHA-256 of Document (the pin of the single-file model
	// the signature covers).
	Digest digest.Digest `json:"digest"`
	// Name is the file name the document was signed under.
	Name      string    `json:"name"`
	Document  []byte    `json:"document"` // verbatim bytes (base64 in JSON)
	Signature Signature `json:"signature"`
	// Contract is the contract's (else the suite's) name, ContractDigest
	// the SHA-256 of the contract (else suite) file.
	Contract       string        `json:"contract"`
	ContractDigest digest.Digest `json:"contract_digest"`
	// Outcome is the document's: pass, fail or incomplete.
	Outcome      string    `json:"outcome"`
	Expectations int       `json:"expectations"`
	Failed       int       `json:"failed"`
	ToolVersion  string    `json:"tool_version,omitempty"`
	CheckedAt    time.Time `json:"checked_at"`
	CreatedBy    string    `json:"created_by"`
	CreatedAt    time.Time `json:"created_at"`
}

// DatasetRef names a dataset version.
type DatasetRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// ModelVersion names a model version.
type ModelVersion struct {
	Model   string `json:"model"`
	Version string `json:"version"`
}

// Run is a training run: how a model version was produced.
type Run struct {
	ID          string             `json:"id"`
	Params      map[string]string  `json:"params,omitempty"`
	Metrics     map[string]float64 `json:"metrics,omitempty"`
	CodeRepo    string             `json:"code_repo,omitempty"`
	CodeCommit  string             `json:"code_commit,omitempty"`
	ImageDigest string             `json:"image_digest,omitempty"`
	// EnvLock is the environment lock (custody env capture output), kept
	// verbatim.
	EnvLock       json.RawMessage `json:"env_lock,omitempty"`
	Inputs        []DatasetRef    `json:"inputs"`
	OutputModel   string          `json:"output_model"`
	OutputVersion string          `json:"output_version"`
	CreatedBy     string          `json:"created_by"`
	CreatedAt     time.Time       `json:"created_at"`
}

// Token is an API token. Only the SHA-256 of the secret token string is
// stored.
type Token struct {
	ID        string    `json:"id"`
	Hash      [32]byte  `json:"-"`
	Role      string    `json:"role"`
	Name      string    `json:"name,omitempty"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// Approval records that an approver vouched for a model version. There
// is at most one per (model, version, approver).
type Approval struct {
	Model    string    `json:"model"`
	Version  string    `json:"version"`
	Approver string    `json:"approver"`
	Comment  string    `json:"comment,omitempty"`
	At       time.Time `json:"at"`
}

// VersionStatus marks a model version, e.g. "bad" after a rollback away
// from it. There is at most one per version.
type VersionStatus struct {
	Model   string    `json:"model"`
	Version string    `json:"version"`
	Status  string    `json:"status"`
	Reason  string    `json:"reason,omitempty"`
	Actor   string    `json:"actor"`
	At      time.Time `json:"at"`
}

// Event is one entry of the change journal: every state change appends
// exactly one, in the transaction that makes the change. Seq is assigned by
// the store, increasing in insertion order (PostgreSQL sequences may leave
// gaps after rolled-back transactions), by the end of the transaction.
type Event struct {
	Seq     int64           `json:"seq"`
	Type    string          `json:"type"`
	Subject string          `json:"subject"`
	Actor   string          `json:"actor"`
	At      time.Time       `json:"at"`
	Payload json.RawMessage `json:"payload"`
	// LogIndex is set by the transparency log's hook to the leaf index
	// of the event's entry, at the end of the transaction (the hook
	// appends in a function it defers: see [Tx.Defer]; code that needs
	// the index inside the transaction defers its own function after the
	// hook's); not stored in the journal.
	LogIndex *int64 `json:"-"`
}

// Reader holds the queries. Lists are ordered by key; limit <= 0 means a
// store-chosen default, and after is an exclusive cursor ("" to start).
type Reader interface {
	GetModel(ctx context.Context, name string) (*Model, error)
	ListModels(ctx context.Context, after string, limit int) ([]Model, error)
	GetVersion(ctx context.Context, model, version string) (*Version, error)
	ListVersions(ctx context.Context, model, after string, limit int) ([]Version, error)
	// ResolveAlias returns the alias's latest event at or before at (the
	// latest event when at is zero). An alias that never existed, or did
	// not exist yet at at, is ErrNotFound; a removed alias is an event
	// with an empty Version.
	ResolveAlias(ctx context.Context, model, alias string, at time.Time) (*AliasEvent, error)
	// AliasHistory returns every event of the alias, oldest first.
	AliasHistory(ctx context.Context, model, alias string) ([]AliasEvent, error)
	// ListAliases returns the latest event of every alias of model.
	ListAliases(ctx context.Context, model string) ([]AliasEvent, error)
	// VersionAliases returns, for every alias that ever pointed at the
	// version, the latest event that moved it there, ordered by alias.
	VersionAliases(ctx context.Context, model, version string) ([]AliasEvent, error)
	GetDataset(ctx context.Context, name, version string) (*Dataset, error)
	// ListEvidence returns the evidence attached to a dataset version,
	// oldest first (then by digest); empty if none.
	ListEvidence(ctx context.Context, ds DatasetRef) ([]Evidence, error)
	GetRun(ctx context.Context, id string) (*Run, error)
	// RunsWithInput returns the runs that read the dataset version,
	// ordered by ID.
	RunsWithInput(ctx context.Context, ds DatasetRef) ([]Run, error)
	GetToken(ctx context.Context, id string) (*Token, error)
	// ListApprovals returns the approvals of a version, ordered by time
	// then approver (empty, not ErrNotFound, when there are none).
	ListApprovals(ctx context.Context, model, version string) ([]Approval, error)
	// GetVersionStatus returns the status record of a version;
	// ErrNotFound if it has none.
	GetVersionStatus(ctx context.Context, model, version string) (*VersionStatus, error)
	// GetDeployment returns a deployment report by ID.
	GetDeployment(ctx context.Context, id int64) (*Deployment, error)
	// ListDeployments returns deployment reports with ID > after, oldest
	// first; model "" means every model.
	ListDeployments(ctx context.Context, model string, after int64, limit int) ([]Deployment, error)
	// Events returns events with Seq > after, oldest first.
	Events(ctx context.Context, after int64, limit int) ([]Event, error)

	// LogSize returns the number of entries in the transparency log.
	LogSize(ctx context.Context) (int64, error)
	// LogEntries returns up to limit log entries from index start on, in
	// index order (fewer at the end of the log).
	LogEntries(ctx context.Context, start int64, limit int) ([][]byte, error)
	// LogHashes returns the stored hashes at the given stored-hash indexes,
	// in the same order; ErrNotFound if one is missing.
	LogHashes(ctx context.Context, indexes []int64) ([][32]byte, error)
}

// Tx is a read-write transaction. It is only valid inside the function
// passed to [Store.Update] and must not be used concurrently.
type Tx interface {
	Reader
	// LockModel returns the model and locks it until the transaction
	// ends, serializing writers on the same model across processes.
	LockModel(ctx context.Context, name string) (*Model, error)
	// CreateModel inserts m unless a model of that name exists, in which
	// case it returns (false, nil) and changes nothing.
	CreateModel(ctx context.Context, m *Model) (created bool, err error)
	// UpdateModel replaces the metadata of an existing model.
	UpdateModel(ctx context.Context, m *Model) error
	// CreateVersion inserts v; ErrExists if the version exists.
	CreateVersion(ctx context.Context, v *Version) error
	// AppendAlias records an alias change (with e.LogIndex) and sets
	// e.Seq.
	AppendAlias(ctx context.Context, e *AliasEvent) error
	// SetAliasLogIndex records the log index of alias change seq's entry.
	SetAliasLogIndex(ctx context.Context, seq, index int64) error
	// CreateDeployment records a deployment report and sets d.ID.
	CreateDeployment(ctx context.Context, d *Deployment) error
	// SetDeploymentLogIndex records the log index of deployment id's entry.
	SetDeploymentLogIndex(ctx context.Context, id, index int64) error
	// CreateDataset inserts d; ErrExists if the version exists.
	CreateDataset(ctx context.Context, d *Dataset) error
	// CreateEvidence inserts e; ErrExists if the same document (digest) is
	// already attached to the dataset version; the dataset must exist.
	CreateEvidence(ctx context.Context, e *Evidence) error
	// CreateRun inserts r with its inputs; ErrExists if the ID is taken.
	CreateRun(ctx context.Context, r *Run) error
	// CreateToken inserts t; ErrExists if the ID is taken.
	CreateToken(ctx context.Context, t *Token) error
	// CreateApproval inserts a; ErrExists if the approver already
	// approved the version.
	CreateApproval(ctx context.Context, a *Approval) error
	// CreateVersionStatus inserts st; ErrExists if the version already
	// has a status record.
	CreateVersionStatus(ctx context.Context, st *VersionStatus) error
	// AppendEvent journals a state change. The store may write it at
	// the end of the transaction, before the deferred functions run (see
	// Defer), and sets e.Seq then; e must not change until the
	// transaction ends.
	AppendEvent(ctx context.Context, e *Event) error

	// Defer arranges for fn to run at the end of the transaction, just
	// before it commits: after the function passed to [Store.Update]
	// has returned (in a group commit, after every function of the
	// group), in the order of the Defer calls, on this transaction. A
	// deferred function that fails fails the whole transaction (every
	// function of its group). Reading the log in the transaction first
	// runs the functions deferred so far. The transparency log appends
	// this way (tlog.Hook), so that a transaction holds the log's lock
	// only for its last moments.
	Defer(fn func(ctx context.Context, tx Tx) error)

	// LockLog returns the log's size and right edge and locks the log
	// head until the transaction ends, so that one writer at a time
	// assigns leaf indexes (a row lock in PostgreSQL; SQLite serializes
	// all writers). The right edge is what the last AppendLog stored with
	// the head (the hashes of the complete subtrees covering the log, in
	// one round trip with the lock); nil if none was stored (a log written
	// before it was kept). The caller checks it before trusting it.
	LockLog(ctx context.Context) (size int64, edge [][32]byte, err error)
	// AppendLog stores the entry at index (which must be the size
	// LockLog returned, or the index after the last appended in this
	// transaction), its new stored hashes from stored index hashStart on,
	// and sets the log size to index+1 and its right edge to edge.
	// ErrExists if index is taken.
	AppendLog(ctx context.Context, index int64, entry []byte, hashStart int64, hashes, edge [][32]byte) error
}

// Store is a registry store.
type Store interface {
	Reader
	// Update runs fn in one read-write transaction and commits it if fn
	// returns nil; otherwise it rolls back and returns fn's error. fn may be
	// called more than once if the database asks for a retry
	// (serialization failure), so it must not have effects outside tx.
	Update(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// Ping checks that the database answers (readiness).
	Ping(ctx context.Context) error
	Close() error
}
