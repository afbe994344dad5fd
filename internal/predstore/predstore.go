// Package predstore defines the storage of logged predictions and their
// labels: the records, the [Store] interface and its contract. It is
// separate from the registry store (internal/store): predictions are high
// volume, append-mostly and have their own durability path (group commit)
// and retention. Implementations live in predsql (SQLite and PostgreSQL);
// all of them pass the conformance suite in predtest.
//
// Like the registry store, a prediction store is dumb: it persists records,
// enforces the uniqueness of request ids and reports what happened to each
// record. Parsing, validation and the resolution of model digests to
// registered versions are the domain's (internal/predict).
package predstore

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// ErrNotFound is wrapped by lookups of request ids that are not stored.
// Check it with errors.Is.
var ErrNotFound = errors.New("not found")

// Record is one logged prediction, resolved to a registered model version.
type Record struct {
	RequestID string    `json:"request_id"`
	TS        time.Time `json:"ts"`
	Model     string    `json:"model"`
	Version   string    `json:"version"`
	// Digest is the version's pinned digest, "sha256:<64 hex>".
	Digest string `json:"model_sha256"`
	// Features is a flat JSON object (compact), or empty.
	Features json.RawMessage `json:"features,omitempty"`
	// Prediction is a JSON number, string or object of class probabilities.
	Prediction json.RawMessage `json:"prediction"`
	// Segment is a flat JSON object of strings (compact), or empty.
	Segment   json.RawMessage `json:"segment,omitempty"`
	LatencyMS *float64        `json:"latency_ms,omitempty"`
}

// Label is the ground truth attached to a prediction, later.
type Label struct {
	RequestID string `json:"request_id"`
	// Label is a JSON number or string.
	Label json.RawMessage `json:"label"`
	// TS is when the outcome was observed (the server's receipt time if the
	// client gave none).
	TS time.Time `json:"ts"`
}

// Outcome is what Append did with one record.
type Outcome uint8

const (
	// Stored: the record is new and now durable.
	Stored Outcome = iota
	// Duplicate: a record with the same request id and the same content
	// was already stored (or appears earlier in the same call); nothing
	// was written.
	Duplicate
	// Conflict: the request id is taken by a record with different
	// content; nothing was written.
	Conflict
	// Unknown (labels only): no prediction has that request id.
	Unknown
	// Replaced (labels only): stored, but it is not the request id's
	// first label: one was stored before, or comes earlier in the same
	// call. Monitors count only first labels (their summaries only add).
	Replaced
)

func (o Outcome) String() string {
	switch o {
	case Stored:
		return "stored"
	case Duplicate:
		return "duplicate"
	case Conflict:
		return "conflict"
	case Unknown:
		return "unknown"
	case Replaced:
		return "replaced"
	}
	return "invalid"
}

// ExportQuery selects records for export: TS in [Since, Until) (a zero
// Until means no upper bound), of one model or of all ("").
type ExportQuery struct {
	Model        string
	Since, Until time.Time
}

// Store stores predictions and labels.
//
// Append and Label return only once their writes are durable (committed
// and fsynced): the caller may acknowledge them. Implementations batch
// concurrent calls into shared transactions (group commit); an error means
// nothing of that call is guaranteed stored (a retry is safe: request ids
// make Append idempotent).
type Store interface {
	// Append stores records and returns one Outcome per record, in order
	// (Stored, Duplicate or Conflict). Records must have a non-empty
	// RequestID.
	Append(ctx context.Context, recs []Record) ([]Outcome, error)
	// Label stores labels and returns one Outcome per label (Stored;
	// Replaced when the request id already has a label, or one earlier
	// in the call; Unknown when no prediction has the request id). The
	// last label for a request id wins.
	Label(ctx context.Context, labels []Label) ([]Outcome, error)
	// Records returns the stored records with these request ids (absent
	// ids are skipped), in no particular order.
	Records(ctx context.Context, requestIDs []string) ([]Record, error)
	// Get returns the record with the request id and its label (nil if
	// none); ErrNotFound if there is no such record.
	Get(ctx context.Context, requestID string) (*Record, *Label, error)
	// Export calls fn for every record matching q, with its label (or
	// nil), ordered by model then TS. fn must not call the store.
	Export(ctx context.Context, q ExportQuery, fn func(*Record, *Label) error) error
	// DeleteBefore deletes the model's records (and their labels) with TS
	// before t and returns how many records were deleted.
	DeleteBefore(ctx context.Context, model string, t time.Time) (int64, error)
	// Models returns the names of the models that have records, sorted.
	Models(ctx context.Context) ([]string, error)
	Close() error
}
