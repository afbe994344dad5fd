package predsql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The DB is also a watch.SummaryStore (docs/monitoring.md): the
// monitors' summaries, results and state in the prediction database
// (tables monitor_summaries, monitor_results, monitor_state), so that
// servers sharing a PostgreSQL database share their monitors' state. Each
// Save is one upsert (atomic, durable on return). The methods write
// directly, not through the ingest's writer goroutine: they are few
// (at most one flush per second per monitor).

func (s *DB) upsert(ctx context.Context, query string, args ...any) error {
	_, err := s.db.ExecContext(ctx, query, args...)
	return err
}

// SaveSummary implements watch.SummaryStore.
func (s *DB) SaveSummary(ctx context.Context, monitor string, window time.Time, segment string, data []byte) error {
	err := s.upsert(ctx, "INSERT INTO monitor_summaries(monitor, win, segment, data) VALUES ("+s.ph(0)+","+s.ph(1)+","+s.ph(2)+","+s.ph(3)+
		") ON CONFLICT (monitor, win, segment) DO UPDATE SET data = excluded.data", monitor, window.UnixNano(), []byte(segment), data)
	if err != nil {
		return fmt.Errorf("failed to save the summary of monitor %s: %w", monitor, err)
	}
	return nil
}

// LoadSummaries implements watch.SummaryStore.
func (s *DB) LoadSummaries(ctx context.Context, monitor string, window time.Time) (map[string][]byte, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT segment, data FROM monitor_summaries WHERE monitor = "+s.ph(0)+" AND win = "+s.ph(1), monitor, window.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("failed to load the summaries of monitor %s: %w", monitor, err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var seg, data []byte
		if err := rows.Scan(&seg, &data); err != nil {
			return nil, err
		}
		out[string(seg)] = data
	}
	return out, rows.Err()
}

func (s *DB) times(ctx context.Context, query string, args ...any) ([]time.Time, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, time.Unix(0, n).UTC())
	}
	return out, rows.Err()
}

// Windows implements watch.SummaryStore.
func (s *DB) Windows(ctx context.Context, monitor string) ([]time.Time, error) {
	ws, err := s.times(ctx, "SELECT DISTINCT win FROM monitor_summaries WHERE monitor = "+s.ph(0)+" ORDER BY win", monitor)
	if err != nil {
		return nil, fmt.Errorf("failed to list the windows of monitor %s: %w", monitor, err)
	}
	return ws, nil
}

// DeleteWindow implements watch.SummaryStore.
func (s *DB) DeleteWindow(ctx context.Context, monitor string, window time.Time) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM monitor_summaries WHERE monitor = "+s.ph(0)+" AND win = "+s.ph(1), monitor, window.UnixNano()); err != nil {
		return fmt.Errorf("failed to delete a window of monitor %s: %w", monitor, err)
	}
	return nil
}

// SaveResult implements watch.SummaryStore.
func (s *DB) SaveResult(ctx context.Context, monitor string, window time.Time, data []byte) error {
	err := s.upsert(ctx, "INSERT INTO monitor_results(monitor, win, data) VALUES ("+s.ph(0)+","+s.ph(1)+","+s.ph(2)+
		") ON CONFLICT (monitor, win) DO UPDATE SET data = excluded.data", monitor, window.UnixNano(), data)
	if err != nil {
		return fmt.Errorf("failed to save a result of monitor %s: %w", monitor, err)
	}
	return nil
}

// Results implements watch.SummaryStore: oldest window first, the newest
// limit when limit > 0.
func (s *DB) Results(ctx context.Context, monitor string, limit int) ([][]byte, error) {
	q := "SELECT data FROM monitor_results WHERE monitor = " + s.ph(0) + " ORDER BY win DESC"
	args := []any{monitor}
	if limit > 0 {
		q += " LIMIT " + s.ph(1)
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("failed to list the results of monitor %s: %w", monitor, err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		out = append(out, data)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// SaveState implements watch.SummaryStore.
func (s *DB) SaveState(ctx context.Context, monitor string, data []byte) error {
	err := s.upsert(ctx, "INSERT INTO monitor_state(monitor, data) VALUES ("+s.ph(0)+","+s.ph(1)+
		") ON CONFLICT (monitor) DO UPDATE SET data = excluded.data", monitor, data)
	if err != nil {
		return fmt.Errorf("failed to save the state of monitor %s: %w", monitor, err)
	}
	return nil
}

// LoadState implements watch.SummaryStore (nil when none).
func (s *DB) LoadState(ctx context.Context, monitor string) ([]byte, error) {
	var data []byte
	err := s.db.QueryRowContext(ctx, "SELECT data FROM monitor_state WHERE monitor = "+s.ph(0), monitor).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to load the state of monitor %s: %w", monitor, err)
	}
	return data, nil
}
