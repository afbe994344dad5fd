package main

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

// The server's probabilities match scikit-learn's predict_proba on the same
// model (testdata/expected.json, written by make_model.py).
func TestMatchesScikitLearn(t *testing.T) {
	m, err := loadModel("model/model.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Rows          [][]float64 `json:"rows"`
		Probabilities [][]float64 `json:"probabilities"`
		Labels        []string    `json:"labels"`
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&server{m: m})
	defer srv.Close()

	// Single tensor [B, 4] and one tensor per feature give the same answer.
	flat := []float64{}
	cols := make([][]float64, len(m.Features))
	for _, r := range want.Rows {
		flat = append(flat, r...)
		for j := range r {
			cols[j] = append(cols[j], r[j])
		}
	}
	single := map[string]any{"inputs": []map[string]any{{"name": "x", "shape": []int{len(want.Rows), 4}, "datatype": "FP64", "data": flat}}}
	var perFeature []map[string]any
	for j, f := range m.Features {
		perFeature = append(perFeature, map[string]any{"name": f, "shape": []int{len(want.Rows), 1}, "datatype": "FP64", "data": cols[j]})
	}
	for _, body := range []any{single, map[string]any{"inputs": perFeature}} {
		b, _ := json.Marshal(body)
		resp, err := http.Post(srv.URL+"/v2/models/win-probability/infer", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		var got inferResponse
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(got.Outputs) != 2 {
			t.Fatalf("status %d, %d outputs", resp.StatusCode, len(got.Outputs))
		}
		probs := got.Outputs[0].Data.([]any)
		labels := got.Outputs[1].Data.([]any)
		for i := range want.Rows {
			for c := range 2 {
				if d := math.Abs(probs[2*i+c].(float64) - want.Probabilities[i][c]); d > 1e-12 {
					t.Fatalf("row %d class %d: %v, scikit-learn %v", i, c, probs[2*i+c], want.Probabilities[i][c])
				}
			}
			if labels[i] != want.Labels[i] {
				t.Fatalf("row %d label %v, scikit-learn %v", i, labels[i], want.Labels[i])
			}
		}
	}
}

func TestBadRequests(t *testing.T) {
	m, _ := loadModel("model/model.json")
	srv := httptest.NewServer(&server{m: m})
	defer srv.Close()
	for _, body := range []string{`{`, `{"inputs":[{"name":"elo_diff","shape":[1],"data":["x"]}]}`, `{"inputs":[{"name":"elo_diff","shape":[1],"data":[1]}]}`} {
		resp, err := http.Post(srv.URL+"/v2/models/win-probability/infer", "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400", body, resp.StatusCode)
		}
	}
	resp, _ := http.Get(srv.URL + "/v2/health/ready")
	if resp.StatusCode != 200 {
		t.Fatalf("ready: %d", resp.StatusCode)
	}
	resp.Body.Close()
}
