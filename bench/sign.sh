#!/usr/bin/env bash
# Benchmark: what signing and verifying cost on top of hashing. custody sign
# and custody verify --sig hash the model exactly as custody hash does and
# add one signature, so both should stay within 1.05x of custody hash.
#
#   bench/sign.sh [WORKDIR]      (default: a temporary directory, removed after)
#
# Models (generated at run time, page cache warm): a 1 GiB directory of
# 4 x 256 MiB files (files method) and one 1 GiB file (--shard-size).
# Prints wall-clock and CPU (user+sys) seconds, best of RUNS interleaved
# runs, and the ratios to custody hash. On a shared machine trust the CPU
# ratio: wall time swings with other load.
# Env: RUNS (best of, default 5), SHARD (default 128MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
SHARD=${SHARD:-128MiB}
work=${1:-}
if [ -z "$work" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/dir" "$work/file"
bin="$work/custody"
CGO_ENABLED=0 go build -o "$bin" ./cmd/custody

gen() { [ -f "$1" ] && [ "$(stat -c %s "$1")" = "$2" ] || openssl rand -out "$1" "$2" 2>/dev/null || head -c "$2" /dev/urandom > "$1"; }
for i in 1 2 3 4; do gen "$work/dir/part-$i.bin" $((256 << 20)); done
gen "$work/file/model.bin" $((1 << 30))
cat "$work"/dir/* "$work/file/model.bin" > /dev/null # warm the page cache
rm -f "$work/key.key" "$work/key.pub"
env -u CUSTODY_PASSWORD "$bin" keygen --out "$work/key" > /dev/null

# measure CMD...: prints "wall cpu" seconds (cpu = user + sys).
measure() {
  local TIMEFORMAT='%R %U %S' t
  t=$( { time "$@" > /dev/null 2>&1; } 2>&1 )
  awk '{printf "%.4f %.4f", $1, $2 + $3}' <<< "$t"
}
min() { awk -v a="$1" -v b="$2" 'BEGIN{print (a == "" || b < a) ? b : a}'; }

run() { # name model-path [hash flags...]
  local name=$1 model=$2; shift 2
  local sig="$work/$name.sig" hw="" hc="" sw="" sc="" vw="" vc="" w c
  "$bin" sign "$@" --key "$work/key.key" --sig "$sig" "$model" > /dev/null
  # Interleaved, so that load from other processes hits all three alike;
  # best of RUNS for each.
  for _ in $(seq "$RUNS"); do
    read -r w c <<< "$(measure "$bin" hash "$@" "$model")"; hw=$(min "$hw" "$w"); hc=$(min "$hc" "$c")
    read -r w c <<< "$(measure "$bin" sign "$@" --key "$work/key.key" --sig "$sig" "$model")"; sw=$(min "$sw" "$w"); sc=$(min "$sc" "$c")
    read -r w c <<< "$(measure "$bin" verify --key "$work/key.pub" --sig "$sig" "$model")"; vw=$(min "$vw" "$w"); vc=$(min "$vc" "$c")
  done
  awk -v n="$name" -v hw="$hw" -v hc="$hc" -v sw="$sw" -v sc="$sc" -v vw="$vw" -v vc="$vc" 'BEGIN{
    printf "%-20s wall: hash %6.3fs  sign %6.3fs (%.3fx)  verify %6.3fs (%.3fx)\n", n, hw, sw, sw/hw, vw, vw/hw
    printf "%-20s cpu:  hash %6.3fs  sign %6.3fs (%.3fx)  verify %6.3fs (%.3fx)\n", "", hc, sc, sc/hc, vc, vc/hc }'
}

echo "1 GiB models, best of $RUNS, $(nproc) cores"
run "4 x 256 MiB files" "$work/dir"
run "1 GiB file, shards" "$work/file/model.bin" --shard-size "$SHARD"
echo "target: sign and verify <= 1.05x hash"
