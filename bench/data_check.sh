#!/usr/bin/env bash
# Benchmark: custody data check on a ROWS-row (default 10 million), 10-column
# CSV against the 15-expectation bench/contract.yaml, compared in the same run
# with pandas doing the same checks (bench/pandas_check.py; Debian's
# python3-pandas) and with plain reads of the same file (cat, wc -l).
# Prints every run (RUNS, default 3), rows/s, ratios of the best runs and
# of the medians, and peak memory. The data is generated here, in
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

# RUNS rounds (default 3), custody then pandas in each; every run is
# listed (the machine may be shared) and the ratios use the best run of each
# side, and their medians.
RUNS=${RUNS:-3}
have_pandas=1
"$PY" -c 'import pandas' 2>/dev/null || have_pandas=0
cs=() ccpu=() ps=() pcpu=()
for r in $(seq "$RUNS"); do
  # Both sides start with the file in the page cache: the machine's
  # proactive reclaim (kdamond) evicts parts of it between runs.
  cat "$DIR/bench.csv" > /dev/null
  t0=$(now)
  set +e
  peak "$DIR/custody" data check --contract bench/contract.yaml --out "$DIR/result.json" "$DIR/bench.csv" > /dev/null
  rc=$?
  set -e
  t1=$(now)
  cs+=("$(calc "$t1 - $t0" 3)"); ccpu+=("$(cpu)")
  echo "custody run $r: exit $rc, ${cs[-1]} s wall, ${ccpu[-1]} s CPU, $(calc "$ROWS / ${cs[-1]}" 0) rows/s, peak RSS $(rss_mib) MiB"
  if [ "$have_pandas" = 1 ]; then
    cat "$DIR/bench.csv" > /dev/null
    out=$(peak "$PY" bench/pandas_check.py "$DIR/bench.csv")
    ps+=("${out%% *}"); pcpu+=("$(cpu)")
    echo "pandas run $r:  ${ps[-1]} s wall (timed inside python, excluding interpreter start), ${pcpu[-1]} s CPU (whole process), $(calc "$ROWS / ${ps[-1]}" 0) rows/s, peak RSS $(rss_mib) MiB, failures: ${out##* }"
  fi
done
best() { printf '%s\n' "$@" | sort -g | head -1; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
custody_s=$(best "${cs[@]}")
echo "cat:     $cat_s s   wc -l: $wc_s s   custody's best takes $(calc "$custody_s / $cat_s" 1)x cat's time, $(calc "$custody_s / $wc_s" 1)x wc -l's"
if [ "$have_pandas" = 1 ]; then
  pandas_s=$(best "${ps[@]}")
  echo "ratio:   custody is $(calc "$pandas_s / $custody_s" 1)x faster than pandas in wall time, best run of each (target >= 10x); medians $(calc "$(median "${ps[@]}") / $(median "${cs[@]}")" 1)x; CPU time $(calc "$(best "${pcpu[@]}") / $(best "${ccpu[@]}")" 1)x (best of each)"
else
  echo "pandas:  not installed ($PY; apt-get install python3-pandas): ratio against pandas not measured"
fi
