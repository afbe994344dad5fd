package api

import (
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/custody-ml/custody/internal/predict"
)

// IngestResult is the data of a POST /api/v1/predictions response.
type IngestResult = predict.IngestResult

// LabelResult is the data of a POST /api/v1/labels response.
type LabelResult = predict.LabelResult

// PredictionLookup is the data of a GET /api/v1/predictions/{request_id}
// response.
type PredictionLookup = predict.Lookup

// bodyFormat reads how an ingest body is encoded: NDJSON (Content-Type
// application/x-ndjson) or JSON, gzip-compressed or not (Content-Encoding).
func bodyFormat(r *http.Request) (ndjson, gzipped bool, err error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, perr := mime.ParseMediaType(ct)
		if perr != nil {
			return false, false, errorf(ErrBadRequest, "invalid Content-Type %q", ct)
		}
		switch mt {
		case "application/x-ndjson", "application/jsonl", "application/jsonlines":
			ndjson = true
		case "application/json":
		default:
			return false, false, errorf(ErrBadRequest, "Content-Type %q: want application/json or application/x-ndjson", mt)
		}
	}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		gzipped = true
	default:
		return false, false, errorf(ErrBadRequest, "Content-Encoding %q: only gzip is accepted", enc)
	}
	return ndjson, gzipped, nil
}

func (s *Server) predictionsEnabled() error {
	if s.opts.Predictions == nil {
		return errorf(ErrNotFound, "prediction logging is not enabled on this server")
	}
	return nil
}

func (s *Server) ingestPredictions(c *call) (any, int, error) {
	start := time.Now()
	if err := s.predictionsEnabled(); err != nil {
		return nil, 0, err
	}
	ndjson, gz, err := bodyFormat(c.r)
	if err != nil {
		return nil, 0, err
	}
	in, err := predict.ParseBatch(c.r.Body, ndjson, gz, s.opts.PredictLimits)
	if err != nil {
		return nil, 0, err
	}
	res, err := s.opts.Predictions.Ingest(c.r.Context(), in)
	if err != nil {
		return nil, 0, err
	}
	s.metrics.ObserveIngest(res, time.Since(start))
	return res, http.StatusOK, nil
}

func (s *Server) ingestLabels(c *call) (any, int, error) {
	if err := s.predictionsEnabled(); err != nil {
		return nil, 0, err
	}
	ndjson, gz, err := bodyFormat(c.r)
	if err != nil {
		return nil, 0, err
	}
	in, err := predict.ParseLabels(c.r.Body, ndjson, gz, s.opts.PredictLimits, time.Now())
	if err != nil {
		return nil, 0, err
	}
	res, err := s.opts.Predictions.Label(c.r.Context(), in)
	if err != nil {
		return nil, 0, err
	}
	s.metrics.ObserveLabels(res)
	return res, http.StatusOK, nil
}

func (s *Server) getPrediction(c *call) (any, int, error) {
	if err := s.predictionsEnabled(); err != nil {
		return nil, 0, err
	}
	l, err := s.opts.Predictions.Get(c.r.Context(), c.path("request_id"))
	return l, http.StatusOK, err
}
