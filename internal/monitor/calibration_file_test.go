package monitor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// fastCalibration runs the fast path on CSV data in memory.
func fastCalibration(data []byte, opts CalibrationOptions, workers int) (Calibration, bool) {
	pos, ok := fastPosLabel(opts.PosLabel)
	if !ok {
		return Calibration{}, false
	}
	sc, ok := scanCalibCSV(context.Background(), data, opts.ProbColumn, opts.LabelColumn, pos, workers, 64)
	if !ok {
		return Calibration{}, false
	}
	return sc.calibrate(opts.Bins, opts.Strategy)
}

// checkFastCalibration: whenever the fast path accepts data, the general
// path (streaming reader, CalibrateTable) accepts it too and gives the
// same rows, edges, counts and positives, and sums equal up to the order
// of addition. It reports whether the fast path accepted.
func checkFastCalibration(t testing.TB, data []byte, opts CalibrationOptions, workers int) bool {
	t.Helper()
	got, ok := fastCalibration(data, opts, workers)
	if !ok {
		return false
	}
	tab, err := streamTable(t, data, []string{opts.ProbColumn, opts.LabelColumn})
	if err != nil {
		t.Fatalf("fast path accepted what the reader refuses: %v", err)
	}
	rep, err := CalibrateTable(tab, opts)
	if err != nil {
		t.Fatalf("fast path accepted what CalibrateTable refuses: %v", err)
	}
	if rep.SkippedRows != 0 {
		t.Fatalf("fast path accepted a file with %d skipped rows", rep.SkippedRows)
	}
	sameCalibration(t, got, rep.Overall)
	return true
}

func sameCalibration(t testing.TB, got, want Calibration) {
	t.Helper()
	near := func(a, b Float) bool { return math.Abs(float64(a)-float64(b)) <= 1e-11 }
	if got.Rows != want.Rows || got.Bins != want.Bins || got.Strategy != want.Strategy || len(got.Table) != len(want.Table) ||
		!near(got.ECE, want.ECE) || !near(got.MCE, want.MCE) || !near(got.Brier, want.Brier) ||
		!near(got.ECEEqualWidth, want.ECEEqualWidth) || !near(got.ECEEqualMass, want.ECEEqualMass) {
		t.Fatalf("fast %+v\nwant %+v", got, want)
	}
	for k, b := range got.Table {
		w := want.Table[k]
		if b.Bin != w.Bin || b.Count != w.Count || b.Lower != w.Lower || b.Upper != w.Upper || (b.Gap == nil) != (w.Gap == nil) {
			t.Fatalf("bin %d: fast %+v, want %+v", k, b, w)
		}
		if b.Gap != nil && (*b.FractionPositive != *w.FractionPositive || !near(*b.MeanPredicted, *w.MeanPredicted) || !near(*b.Gap, *w.Gap)) {
			t.Fatalf("bin %d: fast %v %v %v, want %v %v %v", k, *b.FractionPositive, *b.MeanPredicted, *b.Gap, *w.FractionPositive, *w.MeanPredicted, *w.Gap)
		}
	}
}

// predictionsCSV writes n rows of predictions in the given layout.
type csvLayout struct {
	extra    bool   // an extra column before and after
	labelFst bool   // label before score
	crlf     bool   // "\r\n" line ends
	digits   int    // score digits after the point; 0: strconv's shortest form
	labels   string // "01", "float" (0.0/1.0)
	blank    bool   // blank lines here and there
	kind     int    // score distribution, as in TestCalibratePassesMatchSimple
}

func predictionsCSV(r *rand.Rand, n int, l csvLayout) []byte {
	var b bytes.Buffer
	eol := "\n"
	if l.crlf {
		eol = "\r\n"
	}
	row := func(fields ...string) {
		if l.labelFst {
			fields[0], fields[1] = fields[1], fields[0]
		}
		if l.extra {
			fields = append([]string{"x" + strconv.Itoa(r.IntN(100))}, append(fields, []string{"", "t"}[r.IntN(2)])...)
		}
		b.WriteString(strings.Join(fields, ","))
		b.WriteString(eol)
	}
	row("prob", "label")
	for i := 0; i < n; i++ {
		var p float64
		switch {
		case l.kind == 0 && r.IntN(10) > 0:
			p = 0.5
		case l.kind == 1:
			p = float64(r.IntN(11)) / 10
		case l.kind == 2:
			p = math.Pow(r.Float64(), 8)
		case l.kind == 3 && r.IntN(50) == 0:
			p = float64(r.IntN(2))
		default:
			p = r.Float64()
		}
		var ps string
		if l.digits > 0 {
			ps = strconv.FormatFloat(p, 'f', l.digits, 64)
		} else {
			ps = strconv.FormatFloat(p, 'g', -1, 64)
		}
		y := 0
		if r.Float64() < p {
			y = 1
		}
		ys := strconv.Itoa(y)
		if l.labels == "float" {
			ys += ".0"
		}
		row(ps, ys)
		if l.blank && r.IntN(1000) == 0 {
			b.WriteString(eol)
		}
	}
	return b.Bytes()
}

func TestCalibrateFastMatchesGeneral(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for trial := 0; trial < 60; trial++ {
		n := 1 + r.IntN(3000)
		if trial%4 == 0 {
			n = 20000 + r.IntN(20000) // selection in piled buckets
		}
		l := csvLayout{
			extra: trial%3 == 1, labelFst: trial%5 == 2, crlf: trial%4 == 3,
			digits: []int{0, 7, 8, 12, 3}[trial%5], blank: trial%6 == 0, kind: trial % 5,
		}
		if trial%7 == 3 {
			l.labels = "float"
		}
		data := predictionsCSV(r, n, l)
		bins := 1 + r.IntN(30)
		if trial%9 == 0 {
			bins = 1000
		}
		for _, strategy := range []string{StrategyUniform, StrategyQuantile} {
			opts := CalibrationOptions{ProbColumn: "prob", LabelColumn: "label", Bins: bins, Strategy: strategy}
			if trial%8 == 5 {
				opts.PosLabel = "0"
			}
			for _, w := range []int{1, 3} {
				if !checkFastCalibration(t, data, opts, w) {
					t.Fatalf("trial %d (%+v): the fast path refused a plain file", trial, l)
				}
			}
			// The same figures to the last bit whatever the number of
			// workers and whichever worker read which chunk.
			a, _ := fastCalibration(data, opts, 1)
			b, _ := fastCalibration(data, opts, 3)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("trial %d: one worker %+v, three %+v", trial, a, b)
			}
		}
	}
}

// Files the fast path must hand to the general path: each is still
// calibrated (or refused) exactly as before.
func TestCalibrateFastRefuses(t *testing.T) {
	for _, data := range []string{
		"prob,label\n0.5,NA\n0.2,1\n",           // missing label: a skipped row
		"prob,label\n,1\n0.2,1\n",               // missing score
		"prob,label\n1.5,1\n",                   // out of range: the general error
		"prob,label\n-0.0,1\n",                  // -0 is kept as such
		"prob,label\n0.5,2\n",                   // a third label
		"prob,label\n0.5,-1\n0.2,1\n",           // {-1, 1}
		"prob,label\n0.5,-0\n",                  // -0 as a label
		"prob,label\n0.5,1,3\n",                 // too many fields
		"prob,label,x\n0.5,1\n",                 // too few fields
		"\"prob\",label\n0.5,1\n",               // quotes
		"prob,label,x\n0.5,1,\"a,b\"\n",         // quotes in another column
		"prob,label\n0.5,yes\n",                 // text labels
		"prob,label\n",                          // no rows
		"prob,label",                            // no rows
		"prob,label\n0x1p-2,1\n",                // not a plain decimal
		"prob,label\r0.5,1\r",                   // old Mac line ends
		"prob,prob\n0.5,1\n",                    // one column for both
		"prob,label\n0.25,1\n0.125,0\n0.5,1 \n", // a space
	} {
		opts := CalibrationOptions{ProbColumn: "prob", LabelColumn: "label", Bins: 4, Strategy: StrategyQuantile}
		if _, ok := fastCalibration([]byte(data), opts, 1); ok {
			t.Errorf("%q: accepted by the fast path", data)
		}
	}
	// And what it accepts, the general path gives the same.
	for _, data := range []string{
		"prob,label\n0.5,1\n\n0.25,0\r\n0.75,1.0\n1,1e0\n0,0",
		"\ufeffprob,label\r\n0.5,1\r\n0.25,0\r\n\r\n0.125,1\r",
		"a,label,b,prob,c\nx,1,y,0.30000000000000004,z\n,0,,0.1,\n",
		"prob,label\n0.123456789012345,1\n0.1234567890123456,0\n1.0000000000000000,1\n0.5e0,0\n.5,1\n",
	} {
		for _, pos := range []string{"", "1", "0", "7"} {
			opts := CalibrationOptions{ProbColumn: "prob", LabelColumn: "label", Bins: 3, Strategy: StrategyQuantile, PosLabel: pos}
			if !checkFastCalibration(t, []byte(data), opts, 1) {
				t.Errorf("%q: refused by the fast path", data)
			}
		}
	}
}

func TestParseScore(t *testing.T) {
	for _, s := range []string{
		"0.5", "0.2354409", "0.62806468", "0.628064681", "0.123456789012345", "0.1234567890123456",
		"0.12345678901234567", "1.0", "1.00000000", "1.000000001", "0", "1", "0.", "1.", ".5", "0.5e-1",
		"0.99999999999999999", "0.9999999999999999", "1e-300", "0.000001", "00.5", "0.0000000000",
		"0.1234567e1", "0.30000000000000004", "9.0", "0.5E0", "1.5", " 0.5", "0.5 ", "1e-400", "-0.0", "-0.5",
		"nan", "NA", "inf", "0x1p-1", "0.2354409\r", "0.5\r ", "0.000000000000000\r",
	} {
		for _, tail := range []string{"", ",1", "\n", "\r\n", ",1\n0.5,0\n0.25,1\n"} {
			data := []byte(s + tail)
			// The field as the general reader cuts it.
			field := string(data)
			if j := strings.IndexAny(field, ",\n"); j >= 0 {
				if field[j] == '\n' {
					field = strings.TrimSuffix(field[:j], "\r")
				} else {
					field = field[:j]
				}
			} else {
				field = strings.TrimSuffix(field, "\r")
			}
			v, end, ok := parseScore(data, 0)
			want, wok := ParseNumber(field)
			wok = wok && want >= 0 && want <= 1 && !math.Signbit(want) && !IsNA(field)
			if ok {
				if !wok || v != want || end != len(field) {
					t.Errorf("parseScore(%q) = %v, %d, want %v (%v), %d", data, v, end, want, wok, len(field))
				}
			} else if wok {
				t.Errorf("parseScore(%q) refused %v", data, want)
			}
		}
	}
	for x := uint64(0); x < 1<<16; x += 7 {
		var b [8]byte
		for i := range b {
			b[i] = byte(x >> (2 * i) * 31)
		}
		k := 0
		for k < 8 && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		if got := leadingDigits(uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56); got != k {
			t.Fatalf("leadingDigits(%q) = %d, want %d", b[:], got, k)
		}
	}
}

// CalibrateFile gives what ReadTableAs and CalibrateTable give, on the
// fast path and off it (segments, JSON Lines, missing values).
func TestCalibrateFile(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(41, 42))
	plain := predictionsCSV(r, 300000, csvLayout{digits: 8}) // > 1 MiB: parallel
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var jl bytes.Buffer
	for _, line := range strings.Split(strings.TrimSpace(string(plain[:2000])), "\n")[1:] {
		if p, y, ok := strings.Cut(line, ","); ok {
			fmt.Fprintf(&jl, "{\"prob\":%s,\"label\":%s}\n", p, y)
		}
	}
	files := map[string]string{
		"plain":   write("plain.csv", plain),
		"missing": write("missing.csv", append(bytes.Clone(plain), "0.5,NA\n0.25,1\n"...)),
		"jsonl":   write("p.jsonl", jl.Bytes()),
		"segment": write("seg.csv", []byte("prob,label,s\n0.5,1,a\n0.25,0,b\n0.75,1,a\n")),
	}
	for name, path := range files {
		for _, strategy := range []string{StrategyUniform, StrategyQuantile} {
			opts := CalibrationOptions{ProbColumn: "prob", LabelColumn: "label", Strategy: strategy}
			cols := []string{"prob", "label"}
			var text []string
			if name == "segment" {
				opts.SegmentColumn = "s"
				cols, text = append(cols, "s"), []string{"s"}
			}
			got, err := CalibrateFile(t.Context(), path, opts)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			tab, err := ReadTableAs(t.Context(), path, cols, text)
			if err != nil {
				t.Fatal(err)
			}
			want, err := CalibrateTable(tab, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got.Input != want.Input || got.SkippedRows != want.SkippedRows || len(got.Segments) != len(want.Segments) {
				t.Fatalf("%s: %+v, want %+v", name, got, want)
			}
			sameCalibration(t, got.Overall, want.Overall)
			for i := range got.Segments {
				sameCalibration(t, got.Segments[i].Calibration, want.Segments[i].Calibration)
			}
		}
	}
	// Errors come from the general path, with its messages.
	bad := write("bad.csv", []byte("prob,label\n0.5,1\n1.5,0\n"))
	if _, err := CalibrateFile(t.Context(), bad, CalibrationOptions{ProbColumn: "prob", LabelColumn: "label"}); err == nil || !strings.Contains(err.Error(), "outside [0, 1]") {
		t.Fatalf("out of range: %v", err)
	}
	if _, err := CalibrateFile(t.Context(), filepath.Join(dir, "none.csv"), CalibrationOptions{ProbColumn: "prob", LabelColumn: "label"}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := CalibrateFile(ctx, files["plain"], CalibrationOptions{ProbColumn: "prob", LabelColumn: "label"}); err != context.Canceled {
		t.Fatalf("cancelled: %v", err)
	}
}

// FuzzCalibrateCSV: the fast path never panics, and whenever it accepts a
// file the general path gives the same calibration.
func FuzzCalibrateCSV(f *testing.F) {
	for _, s := range []string{
		"prob,label\n0.5,1\n0.25,0\n", "prob,label\r\n0.62806468,0\r\n0.2354409,1\r\n\r\n",
		"label,x,prob\n1,a,0.1\n0,,0.9\n", "prob,label\n0.5,NA\n", "prob,label\n1,1\n0,0\n1e-3,1.0\n",
		"\ufeffprob,label\n0.1,1\n0.1,1\n0.1,0\n0.2,1\n", "prob,label\n0.5,1,\n",
	} {
		f.Add([]byte(s), uint8(3), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, bins uint8, quantile bool) {
		opts := CalibrationOptions{ProbColumn: "prob", LabelColumn: "label", Bins: 1 + int(bins%40), Strategy: StrategyUniform}
		if quantile {
			opts.Strategy = StrategyQuantile
		}
		for _, w := range []int{1, 3} {
			checkFastCalibration(t, data, opts, w)
		}
	})
}
