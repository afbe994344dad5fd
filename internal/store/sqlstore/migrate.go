package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// migrations are the schema versions, in order: migration i (0-based)
// brings the schema to version i+1. Never edit a released migration;
// append a new one. {{serial}} and {{blob}} are replaced by the dialect's
// types.
var migrations = []string{
	// 1: the registry.
	`
CREATE TABLE models (
	name        TEXT PRIMARY KEY,
	description TEXT NOT NULL,
	owners      TEXT NOT NULL,
	tags        TEXT NOT NULL,
	created_by  TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);
CREATE TABLE versions (
	model        TEXT NOT NULL REFERENCES models (name),
	version      TEXT NOT NULL,
	digest       TEXT NOT NULL,
	oms_root     TEXT NOT NULL,
	manifest     TEXT NOT NULL,
	signatures   TEXT NOT NULL,
	uri          TEXT NOT NULL,
	format       TEXT NOT NULL,
	scan_verdict TEXT NOT NULL,
	run_id       TEXT NOT NULL,
	created_by   TEXT NOT NULL,
	created_at   BIGINT NOT NULL,
	PRIMARY KEY (model, version)
);
CREATE INDEX versions_by_digest ON versions (digest);
CREATE TABLE alias_events (
	seq      {{serial}},
	model    TEXT NOT NULL REFERENCES models (name),
	alias    TEXT NOT NULL,
	version  TEXT NOT NULL,
	previous TEXT NOT NULL,
	actor    TEXT NOT NULL,
	at       BIGINT NOT NULL
);
CREATE INDEX alias_events_by_alias ON alias_events (model, alias, seq);
CREATE TABLE datasets (
	name       TEXT NOT NULL,
	version    TEXT NOT NULL,
	digest     TEXT NOT NULL,
	dvc_md5    TEXT NOT NULL,
	source_uri TEXT NOT NULL,
	size       BIGINT NOT NULL,
	rows       BIGINT,
	files      TEXT NOT NULL,
	created_by TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (name, version)
);
CREATE INDEX datasets_by_digest ON datasets (digest);
CREATE INDEX datasets_by_dvc_md5 ON datasets (dvc_md5);
CREATE TABLE runs (
	id             TEXT PRIMARY KEY,
	params         TEXT NOT NULL,
	metrics        TEXT NOT NULL,
	code_repo      TEXT NOT NULL,
	code_commit    TEXT NOT NULL,
	image_digest   TEXT NOT NULL,
	env_lock       TEXT NOT NULL,
	output_model   TEXT NOT NULL,
	output_version TEXT NOT NULL,
	created_by     TEXT NOT NULL,
	created_at     BIGINT NOT NULL
);
CREATE INDEX runs_by_output ON runs (output_model, output_version);
CREATE TABLE run_inputs (
	run_id          TEXT NOT NULL REFERENCES runs (id),
	dataset_name    TEXT NOT NULL,
	dataset_version TEXT NOT NULL,
	PRIMARY KEY (run_id, dataset_name, dataset_version),
	FOREIGN KEY (dataset_name, dataset_version) REFERENCES datasets (name, version)
);
CREATE INDEX run_inputs_by_dataset ON run_inputs (dataset_name, dataset_version);
CREATE TABLE tokens (
	id         TEXT PRIMARY KEY,
	hash       {{blob}} NOT NULL,
	role       TEXT NOT NULL,
	name       TEXT NOT NULL,
	created_by TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE TABLE events (
	seq     {{serial}},
	type    TEXT NOT NULL,
	subject TEXT NOT NULL,
	actor   TEXT NOT NULL,
	at      BIGINT NOT NULL,
	payload TEXT NOT NULL
);
`,
	// 2: the transparency log (internal/tlog, docs/tlog.md). log_head is a
	// single row holding the tree size; writers lock it to assign leaf
	// indexes. log_entries holds the leaves (canonical JSON), log_hashes
	// the stored hashes of golang.org/x/mod/sumdb/tlog, by stored index.
	`
CREATE TABLE log_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	size BIGINT NOT NULL
);
INSERT INTO log_head (id, size) VALUES (1, 0);
CREATE TABLE log_entries (
	idx   BIGINT PRIMARY KEY,
	entry {{blob}} NOT NULL
);
CREATE TABLE log_hashes (
	idx  BIGINT PRIMARY KEY,
	hash {{blob}} NOT NULL
);
`,
	// 3: serving (docs/serving.md). alias_events.log_index is the leaf index
	// of the log entry that recorded the change (NULL before v3), so a
	// serving process can prove the answer it gets; deployments are the
	// reports of serving processes.
	`
ALTER TABLE alias_events ADD COLUMN log_index BIGINT;
CREATE TABLE deployments (
	id              {{serial}},
	model           TEXT NOT NULL REFERENCES models (name),
	alias           TEXT NOT NULL,
	version         TEXT NOT NULL,
	digest          TEXT NOT NULL,
	alias_log_index BIGINT NOT NULL,
	host            TEXT NOT NULL,
	pid             BIGINT NOT NULL,
	started_at      BIGINT NOT NULL,
	actor           TEXT NOT NULL,
	at              BIGINT NOT NULL,
	log_index       BIGINT
);
CREATE INDEX deployments_by_model ON deployments (model, id);
`,
	// 4: approvals and version status (promotion and rollback,
	// docs/registry.md). At most one approval per approver and one status
	// record per version.
	`
CREATE TABLE approvals (
	model    TEXT NOT NULL,
	version  TEXT NOT NULL,
	approver TEXT NOT NULL,
	comment  TEXT NOT NULL,
	at       BIGINT NOT NULL,
	PRIMARY KEY (model, version, approver),
	FOREIGN KEY (model, version) REFERENCES versions (model, version)
);
CREATE TABLE version_status (
	model   TEXT NOT NULL,
	version TEXT NOT NULL,
	status  TEXT NOT NULL,
	reason  TEXT NOT NULL,
	actor   TEXT NOT NULL,
	at      BIGINT NOT NULL,
	PRIMARY KEY (model, version),
	FOREIGN KEY (model, version) REFERENCES versions (model, version)
);
`,
	// 5: signed data-contract evidence attached to dataset versions
	// (docs/registry.md). document and bundle are kept verbatim.
	`
CREATE TABLE dataset_evidence (
	dataset_name    TEXT NOT NULL,
	dataset_version TEXT NOT NULL,
	digest          TEXT NOT NULL,
	name            TEXT NOT NULL,
	document        {{blob}} NOT NULL,
	bundle          {{blob}} NOT NULL,
	signer          TEXT NOT NULL,
	key_ids         TEXT NOT NULL,
	contract        TEXT NOT NULL,
	contract_digest TEXT NOT NULL,
	outcome         TEXT NOT NULL,
	expectations    BIGINT NOT NULL,
	failed          BIGINT NOT NULL,
	tool_version    TEXT NOT NULL,
	checked_at      BIGINT NOT NULL,
	created_by      TEXT NOT NULL,
	created_at      BIGINT NOT NULL,
	PRIMARY KEY (dataset_name, dataset_version, digest),
	FOREIGN KEY (dataset_name, dataset_version) REFERENCES datasets (name, version)
);
`,
	// 6: the log's right edge kept with its head (docs/tlog.md,
	// "Performance"): the hashes of the complete subtrees covering the
	// log, concatenated, so that the writer that locks the head reads
	// them in the same round trip. NULL until the first append after this
	// migration, which reads them from log_hashes instead.
	`
ALTER TABLE log_head ADD COLUMN edge {{blob}};
`,
}

// SchemaVersion is the schema version this build migrates to.
var SchemaVersion = len(migrations)

func (s *DB) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("failed to begin the migration: %w", err)
	}
	if err := s.applyMigrations(ctx, reader{q: tx, d: s.d}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("failed to commit the migration: %w", err)
	}
	return nil
}

// applyMigrations runs in one transaction: with transactional DDL (both
// SQLite and PostgreSQL have it) a failed migration leaves nothing behind.
func (s *DB) applyMigrations(ctx context.Context, r reader) error {
	if s.d.MigrationLock != "" {
		if _, err := r.exec(ctx, s.d.MigrationLock); err != nil {
			return fmt.Errorf("failed to take the migration lock: %w", err)
		}
	}
	if _, err := r.exec(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)"); err != nil {
		return fmt.Errorf("failed to create schema_migrations: %w", err)
	}
	var current int
	if err := r.queryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return fmt.Errorf("failed to read the schema version: %w", err)
	}
	if current > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this build's %d: upgrade custody", current, len(migrations))
	}
	for v := current + 1; v <= len(migrations); v++ {
		ddl := strings.NewReplacer("{{serial}}", s.d.Serial, "{{blob}}", s.d.Blob).Replace(migrations[v-1])
		for _, stmt := range strings.Split(ddl, ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := r.exec(ctx, stmt); err != nil {
				return fmt.Errorf("failed to apply migration %d: %w", v, err)
			}
		}
		if _, err := r.exec(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", v, nanos(time.Now())); err != nil {
			return fmt.Errorf("failed to record migration %d: %w", v, err)
		}
	}
	return nil
}
