// Command demo-model is a small KServe v2 (Open Inference Protocol) model
// server for the custody quickstart and benchmarks: it loads a binary
// logistic-regression model from a JSON file and serves
//
//	POST /v2/models/{name}/infer  (also /v2/models/{name}/versions/{v}/infer)
//	GET  /v2/health/ready, /v2/health/live, /v2/models/{name}
//
// The model file is model.json in $CUSTODY_MODEL_DIR when started through
// `custody exec` (which verified those bytes), else the --model flag.
//
// Inputs are either one tensor per feature (named after the feature, shape
// [B] or [B,1]) or a single tensor of shape [B, len(features)] in the model's
// feature order. Outputs: "probabilities" (FP64, [B, 2], in class order) and
// "label" (BYTES, [B]).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Model is the JSON model file.
type Model struct {
	Name     string    `json:"name"`
	Features []string  `json:"features"`
	Weights  []float64 `json:"weights"`
	Bias     float64   `json:"bias"`
	Classes  []string  `json:"classes"` // [negative, positive]
}

func loadModel(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Model
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.Name == "" || len(m.Features) == 0 || len(m.Weights) != len(m.Features) || len(m.Classes) != 2 {
		return nil, fmt.Errorf("%s: want a name, n features, n weights and 2 classes", path)
	}
	return &m, nil
}

// predict returns P(classes[1]) for one row.
func (m *Model) predict(x []float64) float64 {
	z := m.Bias
	for i, w := range m.Weights {
		z += w * x[i]
	}
	return 1 / (1 + math.Exp(-z))
}

type tensor struct {
	Name     string          `json:"name"`
	Shape    []int           `json:"shape"`
	Datatype string          `json:"datatype"`
	Data     json.RawMessage `json:"data,omitempty"`
}

type inferRequest struct {
	ID     string   `json:"id,omitempty"`
	Inputs []tensor `json:"inputs"`
}

type outTensor struct {
	Name     string `json:"name"`
	Shape    []int  `json:"shape"`
	Datatype string `json:"datatype"`
	Data     any    `json:"data"`
}

type inferResponse struct {
	ModelName string      `json:"model_name"`
	ID        string      `json:"id,omitempty"`
	Outputs   []outTensor `json:"outputs"`
}

// numbers flattens (possibly nested) numeric tensor data.
func numbers(raw json.RawMessage) ([]float64, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var out []float64
	var walk func(any) error
	walk = func(v any) error {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				if err := walk(e); err != nil {
					return err
				}
			}
		case float64:
			out = append(out, x)
		case bool:
			out = append(out, map[bool]float64{false: 0, true: 1}[x])
		default:
			return errors.New("tensor data must be numbers")
		}
		return nil
	}
	return out, walk(v)
}

// rows turns the request's inputs into feature rows.
func (m *Model) rows(req *inferRequest) ([][]float64, error) {
	nf := len(m.Features)
	if len(req.Inputs) == 1 && len(req.Inputs[0].Shape) == 2 && req.Inputs[0].Shape[1] == nf {
		vals, err := numbers(req.Inputs[0].Data)
		if err != nil {
			return nil, err
		}
		b := req.Inputs[0].Shape[0]
		if len(vals) != b*nf {
			return nil, fmt.Errorf("input %q: %d values for shape %v", req.Inputs[0].Name, len(vals), req.Inputs[0].Shape)
		}
		out := make([][]float64, b)
		for r := range b {
			out[r] = vals[r*nf : (r+1)*nf]
		}
		return out, nil
	}
	byName := map[string][]float64{}
	b := -1
	for _, in := range req.Inputs {
		vals, err := numbers(in.Data)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Name, err)
		}
		if b >= 0 && len(vals) != b {
			return nil, fmt.Errorf("input %q: %d rows, others have %d", in.Name, len(vals), b)
		}
		b = len(vals)
		byName[in.Name] = vals
	}
	out := make([][]float64, max(b, 0))
	for r := range out {
		out[r] = make([]float64, nf)
		for j, f := range m.Features {
			col, ok := byName[f]
			if !ok {
				return nil, fmt.Errorf("missing input %q", f)
			}
			out[r][j] = col[r]
		}
	}
	return out, nil
}

type server struct{ m *Model }

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/v2/health/ready" || path == "/v2/health/live":
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPost && strings.HasPrefix(path, "/v2/models/") && strings.HasSuffix(path, "/infer"):
		s.infer(w, r)
	case r.Method == http.MethodGet && path == "/v2/models/"+s.m.Name:
		writeJSON(w, 200, map[string]any{"name": s.m.Name, "platform": "custody-demo-logreg",
			"inputs": []map[string]any{{"name": "features", "datatype": "FP64", "shape": []int{-1, len(s.m.Features)}}}})
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
	}
}

func (s *server) infer(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v2/models/"), "/infer")
	if i := strings.Index(name, "/versions/"); i >= 0 {
		name = name[:i]
	}
	if name != s.m.Name {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("model %q not found", name)})
		return
	}
	var req inferRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad request body: " + err.Error()})
		return
	}
	rows, err := s.m.rows(&req)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	probs := make([]float64, 0, 2*len(rows))
	labels := make([]string, 0, len(rows))
	for _, x := range rows {
		p := s.m.predict(x)
		probs = append(probs, 1-p, p)
		labels = append(labels, s.m.Classes[map[bool]int{false: 0, true: 1}[p >= 0.5]])
	}
	writeJSON(w, http.StatusOK, inferResponse{ModelName: s.m.Name, ID: req.ID, Outputs: []outTensor{
		{Name: "probabilities", Shape: []int{len(rows), 2}, Datatype: "FP64", Data: probs},
		{Name: "label", Shape: []int{len(rows)}, Datatype: "BYTES", Data: labels},
	}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	modelFlag := flag.String("model", "", "model JSON file (default $CUSTODY_MODEL_DIR/model.json)")
	flag.Parse()
	path := *modelFlag
	if dir := os.Getenv("CUSTODY_MODEL_DIR"); dir != "" {
		path = filepath.Join(dir, "model.json")
	}
	if path == "" {
		log.Fatal("no model: start through custody exec or pass --model FILE")
	}
	m, err := loadModel(path)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving model %q from %s on %s", m.Name, path, ln.Addr())
	srv := &http.Server{Handler: &server{m: m}, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}
