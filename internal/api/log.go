package api

import (
	"net/http"
	"strconv"

	"github.com/custody-ml/custody/internal/tlog"
)

// The transparency log's read endpoints (docs/tlog.md). /api/v1/log is
// also the prefix of the C2SP tlog-tiles layout: checkpoint and
// tile/<L>/<N>[.p/<W>], tile/entries/<N>[.p/<W>].

// rawResponse is a handler result written as-is instead of in the JSON
// envelope (checkpoints and tiles have formats of their own).
type rawResponse struct {
	contentType string
	body        []byte
}

// LogKey is the response of GET /log/key.
type LogKey struct {
	Origin string `json:"origin"`
	// VerifierKey is the signed-note verifier key of the log
	// ("<name>+<key hash>+<base64 key>"). Fetching it over the API only
	// identifies the log: clients must get it from a trusted source.
	VerifierKey string `json:"verifier_key"`
}

// InclusionProof is the response of GET /log/entries/{index}.
type InclusionProof struct {
	Index int64 `json:"index"`
	Size  int64 `json:"size"`
	// Entry is the entry's bytes (canonical JSON), as a string.
	Entry string `json:"entry"`
	// Proof is the RFC 6962 audit path, base64 hashes.
	Proof []tlog.Hash `json:"proof"`
}

// ConsistencyProof is the response of GET /log/consistency/{from}.
type ConsistencyProof struct {
	From  int64       `json:"from"`
	Size  int64       `json:"size"`
	Proof []tlog.Hash `json:"proof"`
}

func (s *Server) logOrErr() (*tlog.Log, error) {
	if s.opts.Log == nil {
		return nil, errorf(ErrNotFound, "this server keeps no transparency log")
	}
	return s.opts.Log, nil
}

func (s *Server) logCheckpoint(c *call) (any, int, error) {
	l, err := s.logOrErr()
	if err != nil {
		return nil, 0, err
	}
	b, err := l.Checkpoint(c.r.Context())
	if err != nil {
		return nil, 0, err
	}
	return rawResponse{"text/plain; charset=utf-8", b}, http.StatusOK, nil
}

func (s *Server) logKey(c *call) (any, int, error) {
	l, err := s.logOrErr()
	if err != nil {
		return nil, 0, err
	}
	return LogKey{Origin: l.Origin(), VerifierKey: s.opts.LogVerifierKey}, http.StatusOK, nil
}

func (s *Server) logTile(c *call) (any, int, error) {
	l, err := s.logOrErr()
	if err != nil {
		return nil, 0, err
	}
	t, err := tlog.ParseTilePath("tile/" + c.path("path"))
	if err != nil {
		return nil, 0, errorf(ErrBadRequest, "%v", err)
	}
	b, err := l.ReadTile(c.r.Context(), t)
	if err != nil {
		return nil, 0, err
	}
	return rawResponse{"application/octet-stream", b}, http.StatusOK, nil
}

func pathInt(c *call, name string) (int64, error) {
	v := c.path(name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != v {
		return 0, errorf(ErrBadRequest, "%s: want a non-negative integer", name)
	}
	return n, nil
}

func querySize(c *call) (int64, error) {
	v := c.r.URL.Query().Get("size")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || strconv.FormatInt(n, 10) != v {
		return 0, errorf(ErrBadRequest, "size: want a positive integer")
	}
	return n, nil
}

func (s *Server) logEntry(c *call) (any, int, error) {
	l, err := s.logOrErr()
	if err != nil {
		return nil, 0, err
	}
	idx, err := pathInt(c, "index")
	if err != nil {
		return nil, 0, err
	}
	size, err := querySize(c)
	if err != nil {
		return nil, 0, err
	}
	p, n, err := l.ProveInclusion(c.r.Context(), idx, size)
	if err != nil {
		return nil, 0, err
	}
	e, err := l.Entry(c.r.Context(), idx)
	if err != nil {
		return nil, 0, err
	}
	return InclusionProof{Index: idx, Size: n, Entry: string(e), Proof: nonNilHashes(p)}, http.StatusOK, nil
}

func (s *Server) logConsistency(c *call) (any, int, error) {
	l, err := s.logOrErr()
	if err != nil {
		return nil, 0, err
	}
	from, err := pathInt(c, "from")
	if err != nil {
		return nil, 0, err
	}
	size, err := querySize(c)
	if err != nil {
		return nil, 0, err
	}
	p, n, err := l.ProveConsistency(c.r.Context(), from, size)
	if err != nil {
		return nil, 0, err
	}
	return ConsistencyProof{From: from, Size: n, Proof: nonNilHashes(p)}, http.StatusOK, nil
}

func nonNilHashes(p []tlog.Hash) []tlog.Hash {
	if p == nil {
		return []tlog.Hash{}
	}
	return p
}
