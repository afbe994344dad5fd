// Package report renders a monitor's result (watch.Result) as JSON or as
// a self-contained HTML page: inline CSS, server-side SVG (a reliability
// diagram and reference-versus-current drift histograms), no external
// assets and no JavaScript. Every string that comes from users or data
// (model, alias, segment values, feature names, categories) goes through
// html/template's contextual escaping.
//
// Rendering reads only the result, so it costs O(bins + features +
// segments), whatever the number of observations summarised.
package report

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/custody-ml/custody/internal/monitor"
	"github.com/custody-ml/custody/internal/monitor/watch"
)

//go:embed report.html.tmpl
var files embed.FS

// page is parsed on first use, not at every start of the CLI.
var page = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("report.html.tmpl").Funcs(template.FuncMap{
		"num":  num,
		"px":   func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
		"time": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	}).ParseFS(files, "report.html.tmpl"))
})

// JSON writes v (a *watch.Result or a list of them) as indented JSON,
// without HTML escaping (">=" stays readable).
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// HTML writes the result as a self-contained HTML page.
func HTML(w io.Writer, r *watch.Result) error {
	v := view{R: r}
	if r.Calibration != nil && r.Calibration.Rows > 0 {
		v.Reliability = reliability(r.Calibration)
	}
	for i := range r.Drift {
		v.Histograms = append(v.Histograms, histogram(&r.Drift[i]))
	}
	return page().Execute(w, v)
}

func num(v any) string {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case monitor.Float:
		f = float64(x)
	case *monitor.Float:
		if x == nil {
			return "—"
		}
		f = float64(*x)
	case *float64:
		if x == nil {
			return "—"
		}
		f = *x
	default:
		return fmt.Sprint(v)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "—"
	}
	return strconv.FormatFloat(f, 'g', 4, 64)
}

type view struct {
	R           *watch.Result
	Reliability *reliabilityPlot
	Histograms  []histogramPlot
}

// Plot geometry, in SVG user units.
const (
	plotW, plotH = 360.0, 300.0
	padL, padB   = 40.0, 40.0
	padT, padR   = 10.0, 10.0
)

type point struct {
	X, Y, R float64
	Label   string
}

type rect struct {
	X, Y, W, H float64
	Title      string
}

type tick struct {
	X, Y  float64
	Label string
}

type reliabilityPlot struct {
	W, H           float64
	X0, Y0, X1, Y1 float64 // plot area
	Bars           []rect  // observed fraction per bucket
	Points         []point // (mean predicted, fraction positive), radius by count
	Counts         []tick  // count under each bucket
	XTicks         []tick
	YTicks         []tick
}

func reliability(c *watch.CalibrationResult) *reliabilityPlot {
	p := &reliabilityPlot{W: plotW, H: plotH, X0: padL, Y0: padT, X1: plotW - padR, Y1: plotH - padB}
	sx := func(v float64) float64 { return p.X0 + v*(p.X1-p.X0) }
	sy := func(v float64) float64 { return p.Y1 - v*(p.Y1-p.Y0) }
	var maxN int64 = 1
	for _, b := range c.Buckets {
		maxN = max(maxN, b.Count)
	}
	for _, b := range c.Buckets {
		x0, x1 := sx(b.Lower), sx(b.Upper)
		if b.Count > 0 {
			fp := float64(b.FractionPositive)
			p.Bars = append(p.Bars, rect{X: x0 + 1, Y: sy(fp), W: math.Max(x1-x0-2, 0.5), H: sy(0) - sy(fp),
				Title: fmt.Sprintf("[%s, %s]: %d predictions, observed %s, predicted %s", num(b.Lower), num(b.Upper), b.Count, num(fp), num(float64(b.MeanPredicted)))})
			r := 2 + 6*math.Sqrt(float64(b.Count)/float64(maxN))
			p.Points = append(p.Points, point{X: sx(float64(b.MeanPredicted)), Y: sy(fp), R: r})
		}
		p.Counts = append(p.Counts, tick{X: (x0 + x1) / 2, Y: p.Y1 + 26, Label: strconv.FormatInt(b.Count, 10)})
	}
	for _, v := range []float64{0, 0.25, 0.5, 0.75, 1} {
		p.XTicks = append(p.XTicks, tick{X: sx(v), Y: p.Y1 + 12, Label: num(v)})
		p.YTicks = append(p.YTicks, tick{X: p.X0 - 4, Y: sy(v) + 3, Label: num(v)})
	}
	return p
}

type histogramPlot struct {
	D              *watch.FeatureDrift
	W, H           float64
	X0, Y0, X1, Y1 float64
	Ref, Cur       []rect
	Labels         []tick
	Breached       bool
}

// histogram draws reference and current shares side by side per bin.
func histogram(d *watch.FeatureDrift) histogramPlot {
	h := histogramPlot{D: d, W: plotW + 120, H: plotH, X0: padL, Y0: padT, X1: plotW + 120 - padR, Y1: plotH - padB - 20}
	n := len(d.Current)
	if n == 0 || len(d.Reference) != n {
		return h
	}
	const maxBars = 60
	shown := min(n, maxBars)
	share := func(c []int64) []float64 {
		var t int64
		for _, v := range c {
			t += v
		}
		out := make([]float64, len(c))
		for i, v := range c {
			if t > 0 {
				out[i] = float64(v) / float64(t)
			}
		}
		return out
	}
	rs, cs := share(d.Reference), share(d.Current)
	top := 0.0
	for i := 0; i < shown; i++ {
		top = math.Max(top, math.Max(rs[i], cs[i]))
	}
	if top == 0 {
		top = 1
	}
	slot := (h.X1 - h.X0) / float64(shown)
	sy := func(v float64) float64 { return h.Y1 - v/top*(h.Y1-h.Y0) }
	for i := 0; i < shown; i++ {
		x := h.X0 + float64(i)*slot
		label := binLabel(d, i)
		h.Ref = append(h.Ref, rect{X: x + 1, Y: sy(rs[i]), W: math.Max(slot/2-1, 0.5), H: h.Y1 - sy(rs[i]),
			Title: fmt.Sprintf("%s: reference %d (%s)", label, d.Reference[i], num(rs[i]))})
		h.Cur = append(h.Cur, rect{X: x + slot/2, Y: sy(cs[i]), W: math.Max(slot/2-1, 0.5), H: h.Y1 - sy(cs[i]),
			Title: fmt.Sprintf("%s: current %d (%s)", label, d.Current[i], num(cs[i]))})
		if shown <= 16 || i%((shown+15)/16) == 0 {
			if len(label) > 14 {
				label = label[:13] + "…"
			}
			h.Labels = append(h.Labels, tick{X: x + slot/2, Y: h.Y1 + 12, Label: label})
		}
	}
	return h
}

// binLabel names bin i of a drift: a category, or an interval (the first
// and last bins of a numerical feature are the underflow and overflow).
func binLabel(d *watch.FeatureDrift, i int) string {
	if len(d.Categories) > 0 {
		if i < len(d.Categories) {
			return d.Categories[i]
		}
		return ""
	}
	e := d.Edges
	switch {
	case i == 0:
		return "< " + num(e[0])
	case i == len(e):
		return "> " + num(e[len(e)-1])
	}
	if i == len(e)-1 {
		return "[" + num(e[i-1]) + ", " + num(e[i]) + "]" // numpy closes the last bin
	}
	return "[" + num(e[i-1]) + ", " + num(e[i]) + ")"
}
