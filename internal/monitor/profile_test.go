package monitor

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/custody-ml/custody/internal/monitor/stats"
)

// A profile compared with its own source shows no drift; its binned counts
// over the reference are numpy.histogram's; and a profile survives JSON.
func TestProfileRoundTrip(t *testing.T) {
	ref, err := ReadTable(t.Context(), "testdata/drift/basic_ref.csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := BuildProfile(ref, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Profile
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	self, err := CompareProfile(&back, ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(self) != len(ref.Columns) {
		t.Fatalf("%d columns compared, want %d", len(self), len(ref.Columns))
	}
	for _, d := range self {
		if d.PSI != 0 || d.JensenShannon != 0 || d.ReferenceMissingShare != d.CurrentMissingShare {
			t.Errorf("%s: self-comparison psi=%v js=%v missing %v/%v", d.Column, d.PSI, d.JensenShannon, d.ReferenceMissingShare, d.CurrentMissingShare)
		}
	}
	x := p.Columns[0]
	if x.Column != "x" || x.Kind != Numerical {
		t.Fatalf("first column %+v", x)
	}
	vals := finiteSorted(ref.Column("x").Floats())
	want := stats.HistogramSorted(vals, x.Binned.Edges)
	got := x.Binned.Counts[1 : len(x.Binned.Counts)-1]
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("bins %v, histogram %v", got, want)
		}
	}
	if m, _ := stats.MeanStd(vals); math.Abs(float64(*x.Mean)-m) > 1e-12 {
		t.Fatalf("mean %v, want %v", *x.Mean, m)
	}
	// A shifted window drifts.
	cur, err := ReadTable(t.Context(), "testdata/drift/basic_cur.csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := CompareProfile(p, cur)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Column == "shifted" && !(d.PSI > 1) {
			t.Errorf("shifted column: psi %v, expected a large drift", d.PSI)
		}
	}
}
