#!/usr/bin/env bash
# Benchmark: `custody drift` (all statistics of one numeric feature) and
# `custody calibration` (ECE equal-width and equal-mass, MCE, Brier) in batch
# from CSV files, against numpy/scipy/pandas computing the same statistics
# (bench/monitor_baseline.py) in the same run, on the same files.
#
#   bench/monitor.sh [WORKDIR]      (default: a temporary directory, removed after)
#
# Env: ROWS (rows per file, default 10000000), RUNS (best of, default 2;
# every run is listed, for the spread).
# Needs Debian's /usr/bin/python3 with python3-numpy, -scipy, -pandas.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-10000000}
RUNS=${RUNS:-2}
PY=${PY:-/usr/bin/python3}
work=${1:-}
if [ -z "$work" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
export GOTOOLCHAIN=local
bin="$work/custody"
CGO_ENABLED=0 go build -o "$bin" ./cmd/custody
if [ ! -f "$work/predictions.csv" ] || [ "$(($(wc -l < "$work/predictions.csv") - 1))" != "$ROWS" ]; then
  go run ./bench/monitorgen -rows "$ROWS" -out "$work"
fi
cat "$work"/*.csv > /dev/null # warm the page cache

# The machine may be shared: report wall time and CPU time (user+sys) of
# the best run (by wall time) of each side.
# Every run's "wall/cpu" goes to stderr (the spread); the best is echoed.
best() { # best "wall cpu" of RUNS runs; the last run's stdout in $work/out.json
  local b="" t all=""
  for _ in $(seq "$RUNS"); do
    # Wall time from the clock (GNU time's %e has 10 ms steps, a few per
    # cent of a 0.15 s run), CPU time from GNU time.
    local t0 t1 c
    t0=$(date +%s.%N)
    c=$(/usr/bin/time -f "%U %S" "$@" 2>&1 >"$work/out.json" | tail -1)
    t1=$(date +%s.%N)
    t=$(echo "$t0 $t1 $c" | awk '{printf "%.3f %.3f", $2-$1, $3+$4}')
    all="$all ${t% *}/${t#* }"
    if [ -z "$b" ] || awk -v t="${t% *}" -v b="${b% *}" 'BEGIN{exit !(t<b)}'; then b=$t; fi
  done
  echo "   custody runs (wall/cpu s):$all" >&2
  echo "$b"
}
bestpy() { # best "wall cpu" reported by the baseline on stderr (in-process)
  local b="" t all=""
  for _ in $(seq "$RUNS"); do
    t=$("$PY" bench/monitor_baseline.py "$@" 2>&1 >"$work/py.json" | tail -1)
    all="$all ${t% *}/${t#* }"
    if [ -z "$b" ] || awk -v t="${t% *}" -v b="${b% *}" 'BEGIN{exit !(t<b)}'; then b=$t; fi
  done
  echo "   numpy/scipy runs (wall/cpu s):$all" >&2
  echo "$b"
}

report() { # name "custody_wall custody_cpu" "numpy_wall numpy_cpu"
  awk -v n="$1" -v c="$2" -v p="$3" -v r="$ROWS" 'BEGIN{
    split(c, C, " "); split(p, P, " ")
    printf "%-12s wall: custody %7.3f s  numpy/scipy %7.3f s  ratio %5.1fx | cpu: custody %7.3f s  numpy/scipy %7.3f s  ratio %5.1fx  (%d rows per file)\n", n, C[1], P[1], P[1]/C[1], C[2], P[2], P[2]/C[2], r }'
}

echo "== drift: reference.csv vs current.csv, one numeric column"
cd_s=$(best "$bin" drift --reference "$work/reference.csv" --current "$work/current.csv" --json)
cp "$work/out.json" "$work/drift_custody.json"
py_s=$(bestpy drift "$work/reference.csv" "$work/current.csv")
"$PY" - "$work/drift_custody.json" "$work/py.json" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))["columns"][0]
p = json.load(open(sys.argv[2]))
for k, v in p.items():
    g = c[k]
    rel = abs(g - v) / abs(v) if v else abs(g)
    print(f"   {k:24s} custody {g:.15g}  numpy/scipy {v:.15g}  rel.diff {rel:.1e}")
PYEOF
report drift "$cd_s" "$py_s"

echo "== calibration: predictions.csv, 10 bins"
cc_s=$(best "$bin" calibration --input "$work/predictions.csv" --prob-column prob --label-column label --bins 10 --json)
cp "$work/out.json" "$work/calib_custody.json"
pc_s=$(bestpy calibration "$work/predictions.csv")
"$PY" - "$work/calib_custody.json" "$work/py.json" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))["overall"]
p = json.load(open(sys.argv[2]))
for k, g in [("brier", c["brier"]), ("ece_uniform", c["ece_equal_width"]), ("ece_quantile", c["ece_equal_mass"]), ("mce", c["mce"])]:
    v = p[k]
    print(f"   {k:24s} custody {g:.15g}  numpy/scipy {v:.15g}  rel.diff {abs(g-v)/abs(v):.1e}")
PYEOF
report calibration "$cc_s" "$pc_s"
