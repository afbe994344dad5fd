package monitor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// The file benchmarks read the files of bench/monitor.sh (kept with
// `bench/monitor.sh DIR`) from $MONITOR_BENCH_DIR; they are skipped
// without it. For profiles:
//
//	MONITOR_BENCH_DIR=/tmp/mb go test -run=^$ -bench=File -cpuprofile=cpu.out ./internal/monitor
func benchDir(b *testing.B) string {
	dir := os.Getenv("MONITOR_BENCH_DIR")
	if dir == "" {
		b.Skip("MONITOR_BENCH_DIR not set")
	}
	return dir
}

func BenchmarkFileCalibration(b *testing.B) {
	path := filepath.Join(benchDir(b), "predictions.csv")
	for b.Loop() {
		t, err := ReadTableAs(context.Background(), path, []string{"prob", "label"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := CalibrateTable(t, CalibrationOptions{ProbColumn: "prob", LabelColumn: "label"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFileCalibrate is CalibrateFile, the path of `custody
// calibration`.
func BenchmarkFileCalibrate(b *testing.B) {
	path := filepath.Join(benchDir(b), "predictions.csv")
	for b.Loop() {
		if _, err := CalibrateFile(context.Background(), path, CalibrationOptions{ProbColumn: "prob", LabelColumn: "label"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFileDrift(b *testing.B) {
	dir := benchDir(b)
	for b.Loop() {
		ref, err := ReadTable(context.Background(), filepath.Join(dir, "reference.csv"), nil)
		if err != nil {
			b.Fatal(err)
		}
		cur, err := ReadTable(context.Background(), filepath.Join(dir, "current.csv"), nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := CompareTables(ref, cur, DriftOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFileParse is the CSV parse of predictions.csv alone, from
// memory, on one core.
func BenchmarkFileParse(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(benchDir(b), "predictions.csv"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, ok, err := parseCSVBatch(context.Background(), data, nil, nil, 1); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkFileCalibScan is the first pass of the calibration fast path
// over predictions.csv in memory, on one core.
func BenchmarkFileCalibScan(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(benchDir(b), "predictions.csv"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, ok := scanCalibCSV(context.Background(), data, "prob", "label", [2]uint64{0, 1}, 1, 1<<20); !ok {
			b.Fatal("refused")
		}
	}
}
