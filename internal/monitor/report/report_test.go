package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/monitor"
	"github.com/custody-ml/custody/internal/monitor/report"
	"github.com/custody-ml/custody/internal/monitor/summary"
	"github.com/custody-ml/custody/internal/monitor/watch"
)

const hostile = `<script>alert("x")</script>&"'`

// profile builds a reference profile of a normal feature x and a
// categorical feature whose values include a hostile string.
func profile(t testing.TB, feature string) *monitor.Profile {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, 20000)
	for i := range xs {
		xs[i] = r.NormFloat64()
	}
	edges := monitor.ProfileEdges(xs)
	b, _ := summary.NewBinned(edges)
	sk, _ := summary.NewSketch(monitor.DefaultSketchAlpha)
	for _, x := range xs {
		b.Add(x)
		sk.Add(x)
	}
	mean, std := monitor.Float(0), monitor.Float(1)
	cats := summary.NewCategories()
	cats.Counts[hostile] = 5000
	cats.Counts["plain"] = 15000
	return &monitor.Profile{Version: 1, Rows: 20000, Columns: []monitor.ColumnProfile{
		{Column: "x", Kind: monitor.Numerical, Rows: 20000, Mean: &mean, Std: &std, Binned: b, Sketch: sk},
		{Column: feature, Kind: monitor.Categorical, Rows: 20000, Categories: cats},
	}}
}

// engine returns an engine whose window at t0 holds n predictions with
// labels, folded into summaries through the public ingest API.
func engine(t testing.TB, n int, model, segValue, feature string) (*watch.Engine, time.Time) {
	t.Helper()
	ece, psi := 0.05, 0.1
	m := watch.Monitor{Name: "m", Model: model, Reference: "r.json", Window: watch.Duration(time.Hour), Segments: []string{"seg"},
		MinRows: 10, Metrics: watch.Metrics{ECE: &ece, Drift: []watch.DriftRule{{PSI: &psi}}}}
	store, err := watch.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := watch.New(m, profile(t, feature), watch.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(3, 4))
	ctx := context.Background()
	feats := map[string]any{}
	seg := map[string]string{}
	segs := []string{segValue, "b", "c"}
	for i := 0; i < n; i++ {
		q := r.Float64()
		s := min(1, q+0.2)
		feats["x"] = r.NormFloat64() + 0.5
		if r.IntN(3) == 0 {
			feats[feature] = hostile
		} else {
			feats[feature] = "plain"
		}
		seg["seg"] = segs[i%3]
		p := watch.Prediction{TS: t0.Add(time.Duration(float64(time.Hour) * float64(i) / float64(n+1))), Model: model, Features: feats, Score: &s, Segment: seg}
		if _, err := e.ObservePrediction(ctx, p); err != nil {
			t.Fatal(err)
		}
		y := "0"
		if r.Float64() < q {
			y = "1"
		}
		if _, err := e.ObserveLabel(ctx, watch.Label{Prediction: p, Label: y}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return e, t0
}

func TestHTMLEscapesHostileNames(t *testing.T) {
	e, t0 := engine(t, 3000, "model"+hostile, "seg"+hostile, "feat"+hostile)
	res, err := e.Evaluate(t.Context(), t0)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := report.HTML(&buf, res); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if strings.Contains(page, "<script") || strings.Contains(page, `alert("x")`) {
		t.Fatalf("unescaped hostile string in the page")
	}
	if !strings.Contains(page, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Fatalf("escaped hostile string missing")
	}
	for _, want := range []string{"<svg", "reliability diagram", "drift histogram", `class="breach"`, "ECE"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Self-contained: no external reference of any kind.
	for _, bad := range []string{"src=", "href=", "@import", "url(", "<link"} {
		if strings.Contains(page, bad) {
			t.Errorf("page references an external asset (%q)", bad)
		}
	}
	var js bytes.Buffer
	if err := report.JSON(&js, res); err != nil {
		t.Fatal(err)
	}
	var back watch.Result
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Model != "model"+hostile {
		t.Fatalf("JSON round trip: %v %q", err, back.Model)
	}
}

// BenchmarkReport times a report (evaluation from the stored summaries,
// then JSON and HTML rendering) over a window summarising 10 thousand or
// 10 million predictions with labels. Folding the observations happens
// before the timer starts; the report's cost is O(bins), so both sizes
// take the same time.
func BenchmarkReport(b *testing.B) {
	for _, n := range []int{10_000, 10_000_000} {
		if n > 1_000_000 && testing.Short() {
			continue
		}
		e, t0 := engine(b, n, "model", "a", "color")
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			for b.Loop() {
				res, err := e.Report(b.Context(), t0, t0.Add(time.Hour))
				if err != nil {
					b.Fatal(err)
				}
				if res.Predictions != int64(n) {
					b.Fatalf("%d predictions", res.Predictions)
				}
				var buf bytes.Buffer
				if err := report.JSON(&buf, res); err != nil {
					b.Fatal(err)
				}
				if err := report.HTML(&buf, res); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
