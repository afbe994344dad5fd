#!/usr/bin/env bash
# Benchmark: custody hash against openssl dgst -sha256 (single-threaded, SHA
# instructions) over the same bytes, page cache warm, in the same run.
#
#   bench/hash.sh [WORKDIR]      (default: a temporary directory, removed after)
#
# Models: 4 x 256 MiB files (files method) and one 1 GiB file (--shard-size).
# Prints each throughput, custody's ratio to openssl, and the fraction of
# the machine's limit (cores x single-core SHA-256 speed from openssl speed).
# Env: RUNS (best of, default 3), SHARD (default 128MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SHARD=${SHARD:-128MiB}
work=${1:-}
if [ -z "$work" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/multi"
bin="$work/custody"
CGO_ENABLED=0 go build -o "$bin" ./cmd/custody

gen() { [ -f "$1" ] && [ "$(stat -c %s "$1")" = "$2" ] || openssl rand -out "$1" "$2" 2>/dev/null || head -c "$2" /dev/urandom > "$1"; }
for i in 1 2 3 4; do gen "$work/multi/part-$i.bin" $((256 << 20)); done
gen "$work/single.bin" $((1 << 30))
cat "$work"/multi/* "$work/single.bin" > /dev/null # warm the page cache

now() { date +%s.%N; }
# best SECONDS of RUNS runs of a command
best() {
  local b="" s e t
  for _ in $(seq "$RUNS"); do
    s=$(now); "$@" > /dev/null; e=$(now)
    t=$(awk -v s="$s" -v e="$e" 'BEGIN{printf "%.4f", e-s}')
    if [ -z "$b" ] || awk -v t="$t" -v b="$b" 'BEGIN{exit !(t<b)}'; then b=$t; fi
  done
  echo "$b"
}

cores=$(nproc)
core_bps=$(openssl speed -evp sha256 -bytes 1048576 -seconds 3 2>/dev/null | awk '/^sha256/ {v=$NF; sub(/k$/,"",v); print v*1000}')
limit=$(awk -v c="$core_bps" -v n="$cores" 'BEGIN{print c*n}')

report() { # name bytes custody_s openssl_s
  awk -v name="$1" -v bytes="$2" -v c="$3" -v o="$4" -v lim="$limit" 'BEGIN{
    cm=bytes/c/1e6; om=bytes/o/1e6
    printf "%-26s custody %7.0f MB/s  openssl %7.0f MB/s  ratio %.2fx  limit %.0f MB/s  %.0f%% of limit\n", name, cm, om, cm/om, lim/1e6, 100*cm*1e6/lim }'
}

echo "machine: $cores cores, single-core SHA-256 (openssl speed -evp sha256, 1 MiB blocks) $(awk -v c="$core_bps" 'BEGIN{printf "%.0f", c/1e6}') MB/s"
bytes=$((4 * (256 << 20)))
o=$(best openssl dgst -sha256 "$work"/multi/part-1.bin "$work"/multi/part-2.bin "$work"/multi/part-3.bin "$work"/multi/part-4.bin)
c=$(best "$bin" hash "$work/multi")
report "4 x 256 MiB (files)" "$bytes" "$c" "$o"

bytes=$((1 << 30))
o=$(best openssl dgst -sha256 "$work/single.bin")
c=$(best "$bin" hash --shard-size "$SHARD" "$work/single.bin")
report "1 GiB (shards $SHARD)" "$bytes" "$c" "$o"
