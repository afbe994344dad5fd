package contract

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

// BenchmarkCheckCSV checks a synthetic 10-column CSV against the 15
// expectations of bench/contract.yaml; rows/s are reported. The full-size
// run (10 million rows, with the ratio against pandas) is bench/data_check.sh.
func BenchmarkCheckCSV(b *testing.B) {
	f, err := os.Open("../../bench/contract.yaml")
	if err != nil {
		b.Fatal(err)
	}
	c, err := ParseContract(f, "contract.yaml")
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	const rows = 200_000
	var buf bytes.Buffer
	buf.WriteString("id,ts,user_id,amount,qty,category,country,email,score,flag\n")
	cats := []string{"books", "games", "garden", "grocery", "health", "music", "sports", "toys"}
	for i := range rows {
		fmt.Fprintf(&buf, "%d,%d,%d,%.2f,%d,%s,%s,%s%d@example.com,%.4f,%v\n",
			i+1, 1_700_000_000+i*3, (i*7919)%1_000_000, float64((i*104729)%1_000_000)/100, 1+i%10,
			cats[i%8], "DE", "ana", i%10000, float64(i%10000)/10000, i%2 == 0)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		src, err := NewCSV(bytes.NewReader(data), c.CSV)
		if err != nil {
			b.Fatal(err)
		}
		rep, err := Check(b.Context(), src, c.Expectations, CheckOptions{Workers: benchWorkers})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Rows != rows {
			b.Fatalf("rows = %d", rep.Rows)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// benchWorkers is CheckOptions.Workers for the benchmark; set it to 1 when
// profiling, so the profile is not split across goroutines.
var benchWorkers = 0

// BenchmarkParseBlock measures the parallel CSV path's field splitting of
// one block of bench-like lines.
func BenchmarkParseBlock(b *testing.B) {
	var buf bytes.Buffer
	for i := range 6000 {
		fmt.Fprintf(&buf, "%d,%d,%d,%.2f,%d,%s,%s,%s%d@example.com,%.4f,%v\n",
			i+1, 1_700_000_000+i*3, (i*7919)%1_000_000, float64((i*104729)%1_000_000)/100, 1+i%10,
			"garden", "DE", "ana", i%10000, float64(i%10000)/10000, i%2 == 0)
	}
	c := &csvReader{comma: ',', nullEmpty: true, max: DefaultMaxLineBytes, cols: make([]string, 10)}
	pb := &pbatch{data: buf.Bytes(), start: 2, keep: []int{0, 3, 8}} // the columns bench/contract.yaml aggregates
	b.SetBytes(int64(buf.Len()))
	for range b.N {
		c.parse(pb, 10, 5)
	}
	if pb.n != 6000 {
		b.Fatal(pb.n)
	}
}

// BenchmarkRegexDFA measures the byte DFA on e-mail-like values (the
// benchmark contract's regex).
func BenchmarkRegexDFA(b *testing.B) {
	d := newByteDFA(`^[a-z]+[0-9]+@[a-z]+\.[a-z]+$`)
	vals := make([][]byte, 1024)
	n := 0
	for i := range vals {
		vals[i] = fmt.Appendf(nil, "%s%d@corp.net", []string{"eli", "ana", "dara", "maximilian"}[i%4], i*37%10000)
		n += len(vals[i])
	}
	b.SetBytes(int64(n))
	for range b.N {
		for _, v := range vals {
			if ok, done := d.match(v); !ok || !done {
				b.Fatalf("%s: %v %v", v, ok, done)
			}
		}
	}
}
