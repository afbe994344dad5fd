package monitor

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// tol is the agreement required with the reference tools (relative).
const tol = 1e-9

// close reports whether got matches want to a relative tolerance of tol;
// values within 1e-14 of want also match, for results that are zero up to
// rounding.
func close(got, want float64) bool {
	if math.IsNaN(want) || math.IsInf(want, 0) {
		return got == want || (math.IsNaN(got) && math.IsNaN(want))
	}
	d := math.Abs(got - want)
	return d <= tol*math.Abs(want) || d <= 1e-14
}

type expectedFile struct {
	Drift       map[string]map[string]map[string]any `json:"drift"`
	Calibration map[string]map[string]struct {
		Edges    []float64 `json:"edges"`
		Counts   []int64   `json:"counts"`
		ProbTrue []float64 `json:"prob_true"`
		ProbPred []float64 `json:"prob_pred"`
		ECE      float64   `json:"ece"`
		MCE      float64   `json:"mce"`
		Brier    float64   `json:"brier"`
	} `json:"calibration"`
}

func loadExpected(t *testing.T) expectedFile {
	t.Helper()
	data, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var e expectedFile
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// jsonFloat reads a number written by make_fixtures.py (null: NaN).
func jsonFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case nil:
		return math.NaN()
	case string:
		switch x {
		case "+Inf":
			return math.Inf(1)
		case "-Inf":
			return math.Inf(-1)
		}
	}
	panic("unexpected JSON value")
}
