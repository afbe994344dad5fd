#!/usr/bin/env bash
# Benchmark of `custody scan` against reading the same bytes (`cat > /dev/null`)
# in the same run. Inputs are generated here, never committed:
#   1. a 1 GiB PyTorch zip checkpoint: the data.pkl of a real torch.save output
#      (internal/scan/testdata/benign/torch_state_dict.pt) and 16 stored
#      storage records of 64 MiB each, the layout torch.save writes;
#   2. a pickle of 2,000,000 random floats (pickle.dumps, protocol 4);
#   3. a directory of 300 small pickles (dicts of lists, protocol 2..5).
# Each timing is the best of $RUNS runs with a warm page cache (the inputs are
# read once before timing), so both sides measure CPU cost, not the disk.
#
# picklescan (github.com/mmaitre314/picklescan) needs PyPI, which this
# environment cannot reach; set PICKLESCAN_SRC to a checkout (its src/ dir on
# PYTHONPATH, stdlib python3) to add its ratio.
#
# Usage: bench/scan.sh [workdir]    (default: a fresh temp dir, removed after)
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
RUNS=${RUNS:-3}
WORK=${1:-$(mktemp -d)}
[ -n "${1:-}" ] || trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"
PY=${PYTHON:-python3}

go build -o "$WORK/custody" ./cmd/custody

"$PY" - "$WORK" internal/scan/testdata/benign/torch_state_dict.pt <<'PYEOF'
import os, pickle, random, sys, zipfile
work, fixture = sys.argv[1], sys.argv[2]
src = zipfile.ZipFile(fixture)
block = random.Random(1).randbytes(1 << 20)
with zipfile.ZipFile(os.path.join(work, "big.pt"), "w", zipfile.ZIP_STORED) as z:
    for name in ("archive/data.pkl", "archive/version"):
        z.writestr(name, src.read(name))
    for i in range(16):
        with z.open("archive/data/%d" % i, "w", force_zip64=True) as w:
            for _ in range(64):
                w.write(block)
rng = random.Random(2)
with open(os.path.join(work, "floats.pkl"), "wb") as f:
    pickle.dump([rng.random() for _ in range(2_000_000)], f, protocol=4)
os.makedirs(os.path.join(work, "small"), exist_ok=True)
for i in range(300):
    obj = {"layer%d" % j: [rng.random() for _ in range(20)] for j in range(10)}
    with open(os.path.join(work, "small", "%03d.pkl" % i), "wb") as f:
        pickle.dump(obj, f, protocol=2 + i % 4)
PYEOF

now() { date +%s.%N; }
best() { # best wall time of RUNS runs of "$@"
  local b="" t0 t1 d
  for _ in $(seq "$RUNS"); do
    t0=$(now); "$@" >/dev/null 2>&1 || true; t1=$(now)
    d=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$b" ] || (( $(echo "$d < $b" | bc -l) )); then b=$d; fi
  done
  echo "$b"
}
catall() { find "$@" -type f -exec cat {} + > /dev/null; }

printf '%-22s %10s %10s %10s %12s %10s\n' input bytes cat_s scan_s scan_MiB/s scan/cat
for input in big.pt floats.pkl small; do
  p="$WORK/$input"
  bytes=$(find "$p" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
  catall "$p" # warm the cache
  c=$(best catall "$p")
  s=$(best "$WORK/custody" scan "$p")
  verdict=$("$WORK/custody" scan "$p" | grep -c ': safe' || true)
  printf '%-22s %10d %10.4f %10.4f %12.1f %10.2f   (%s safe)\n' "$input" "$bytes" "$c" "$s" \
    "$(echo "$bytes / 1048576 / $s" | bc -l)" "$(echo "$s / $c" | bc -l)" "$verdict"
  if [ -n "${PICKLESCAN_SRC:-}" ]; then
    ps=$(best env PYTHONPATH="$PICKLESCAN_SRC" "$PY" -m picklescan --path "$p")
    printf '%-22s picklescan %.4f s, custody/picklescan %.3f\n' "" "$ps" "$(echo "$s / $ps" | bc -l)"
  fi
done
[ -n "${PICKLESCAN_SRC:-}" ] || echo "picklescan: not available here (no PyPI); set PICKLESCAN_SRC to compare"
