// Command gencsv writes the benchmark's synthetic CSV: N rows of 10 columns
// (id, ts, user_id, amount, qty, category, country, email, score, flag),
// deterministic for a given seed. Used by bench/data_check.sh; the data is
// generated at benchmark time and never committed.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
)

func main() {
	rows := flag.Int("rows", 10_000_000, "number of data rows")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	r := rand.New(rand.NewPCG(*seed, 2))
	cats := []string{"books", "games", "garden", "grocery", "health", "music", "sports", "toys"}
	countries := []string{"DE", "FR", "GB", "IT", "JP", "NL", "US", "ES"}
	names := []string{"ana", "bo", "chen", "dara", "eli", "fatima", "gus", "hana"}
	domains := []string{"example.com", "mail.org", "corp.net", "uni.edu"}
	w.WriteString("id,ts,user_id,amount,qty,category,country,email,score,flag\n")
	var b []byte
	for i := range *rows {
		b = b[:0]
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, 1_700_000_000+int64(i)*3, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(r.IntN(1_000_000)), 10)
		b = append(b, ',')
		b = strconv.AppendFloat(b, float64(r.IntN(1_000_000))/100, 'f', 2, 64)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(1+r.IntN(10)), 10)
		b = append(b, ',')
		b = append(b, cats[r.IntN(len(cats))]...)
		b = append(b, ',')
		b = append(b, countries[r.IntN(len(countries))]...)
		b = append(b, ',')
		b = append(b, names[r.IntN(len(names))]...)
		b = strconv.AppendInt(b, int64(r.IntN(10000)), 10)
		b = append(b, '@')
		b = append(b, domains[r.IntN(len(domains))]...)
		b = append(b, ',')
		b = strconv.AppendFloat(b, r.Float64(), 'f', 4, 64)
		b = append(b, ',')
		if r.IntN(2) == 0 {
			b = append(b, "true"...)
		} else {
			b = append(b, "false"...)
		}
		b = append(b, '\n')
		w.Write(b)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
