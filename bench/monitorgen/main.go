// Command monitorgen writes the synthetic files of bench/monitor.sh: a
// reference and a current sample of one numeric feature, and predictions
// with outcomes for calibration. Deterministic for a given -seed.
//
//	go run ./bench/monitorgen -rows 10000000 -out DIR
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	rows := flag.Int("rows", 10_000_000, "rows per file")
	out := flag.String("out", ".", "output directory")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	r := rand.New(rand.NewPCG(*seed, 2))
	write := func(name, header string, row func(b []byte) []byte) {
		f, err := os.Create(filepath.Join(*out, name))
		if err != nil {
			log.Fatal(err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		w.WriteString(header + "\n")
		var b []byte
		for i := 0; i < *rows; i++ {
			b = row(b[:0])
			b = append(b, '\n')
			w.Write(b)
		}
		if err := w.Flush(); err != nil {
			log.Fatal(err)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}
	num := func(b []byte, v float64) []byte { return strconv.AppendFloat(b, v, 'g', 10, 64) }
	write("reference.csv", "x", func(b []byte) []byte { return num(b, r.NormFloat64()*2+10) })
	write("current.csv", "x", func(b []byte) []byte { return num(b, r.NormFloat64()*2.1+10.2) })
	write("predictions.csv", "prob,label", func(b []byte) []byte {
		p := 1 / (1 + math.Exp(-r.NormFloat64()*1.5))
		y := 0
		if r.Float64() < math.Min(1, p*1.1) {
			y = 1
		}
		b = strconv.AppendFloat(b, p, 'g', 8, 64)
		return append(b, ',', byte('0'+y))
	})
	fmt.Fprintf(os.Stderr, "wrote %d rows per file to %s\n", *rows, *out)
}
