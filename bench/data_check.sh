#!/usr/bin/env bash
# Benchmark: custody data check on a ROWS-row (default 10 million), 10-column
# CSV against the 15-expectation bench/contract.yaml, compared in the same run
# with pandas doing the same checks (bench/pandas_check.py; Debian's
# python3-pandas) and with plain reads of the same file (cat, wc -l).
# Prints rows/s, ratios and peak memory. The data is generated here, in
# $BENCH_DIR (default a temporary directory), and deleted afterwards.
#
# Usage: bench/data_check.sh [ROWS]      (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
ROWS=${1:-10000000}
DIR=${BENCH_DIR:-$(mktemp -d)}
trap 'rm -f "$DIR/bench.csv" "$DIR/custody" "$DIR/gencsv"' EXIT
PY=${PYTHON:-/usr/bin/python3}

go build -o "$DIR/custody" ./cmd/custody
go build -o "$DIR/gencsv" ./bench/gencsv
"$DIR/gencsv" -rows "$ROWS" > "$DIR/bench.csv"
size=$(stat -c %s "$DIR/bench.csv")
echo "data: $ROWS rows, 10 columns, $size bytes; $(nproc) CPUs, load average $(cut -d" " -f1-3 /proc/loadavg)"

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
# peak runs a command under GNU time: "$DIR/rss" gets "maxrss_kb user_s sys_s".
peak() {
  if [ -x /usr/bin/time ]; then /usr/bin/time -f '%M %U %S' -o "$DIR/rss" "$@"
  else echo "0 0 0" > "$DIR/rss"; "$@"; fi   # Debian package "time" measures CPU and memory
}
cpu() { awk '{ printf "%.2f", $2 + $3 }' "$DIR/rss"; }
rss_mib() { awk '{ printf "%d", $1 / 1024 }' "$DIR/rss"; }

cat "$DIR/bench.csv" > /dev/null   # warm the page cache
t0=$(now); cat "$DIR/bench.csv" > /dev/null; t1=$(now)
cat_s=$(calc "$t1 - $t0" 3)
t0=$(now); wc -l < "$DIR/bench.csv" > /dev/null; t1=$(now)
wc_s=$(calc "$t1 - $t0" 3)

t0=$(now)
set +e
peak "$DIR/custody" data check --contract bench/contract.yaml --out "$DIR/result.json" "$DIR/bench.csv" > /dev/null
rc=$?
set -e
t1=$(now)
custody_s=$(calc "$t1 - $t0" 3)
custody_cpu=$(cpu)
echo "custody: exit $rc, $custody_s s wall, $custody_cpu s CPU, $(calc "$ROWS / $custody_s" 0) rows/s, peak RSS $(rss_mib) MiB"
echo "cat:     $cat_s s   wc -l: $wc_s s   custody takes $(calc "$custody_s / $cat_s" 1)x cat's time, $(calc "$custody_s / $wc_s" 1)x wc -l's"

if "$PY" -c 'import pandas' 2>/dev/null; then
  out=$(peak "$PY" bench/pandas_check.py "$DIR/bench.csv")
  pandas_cpu=$(cpu)
  pandas_s=${out%% *}
  echo "pandas:  $pandas_s s wall (timed inside python, excluding interpreter start), $pandas_cpu s CPU (whole process), $(calc "$ROWS / $pandas_s" 0) rows/s, peak RSS $(rss_mib) MiB, failures: ${out##* }"
  echo "ratio:   custody is $(calc "$pandas_s / $custody_s" 1)x faster than pandas in wall time (target >= 10x), $(calc "$pandas_cpu / $custody_cpu" 1)x in CPU time"
else
  echo "pandas:  not installed ($PY; apt-get install python3-pandas): ratio against pandas not measured"
fi
