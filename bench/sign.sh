#!/usr/bin/env bash
# Benchmark: what signing and verifying cost on top of hashing. custody sign
# and custody verify --sig hash the model exactly as custody hash does and
# add one signature, so both should stay within 1.05x of custody hash.
#
#   bench/sign.sh [WORKDIR]      (default: a temporary directory, removed after)
#
# Models (generated at run time, page cache warm): a 1 GiB directory of
# 4 x 256 MiB files (files method) and one 1 GiB file (--shard-size).
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
mkdir -p "$work/dir" "$work/file"
bin="$work/custody"
CGO_ENABLED=0 go build -o "$bin" ./cmd/custody

gen() { [ -f "$1" ] && [ "$(stat -c %s "$1")" = "$2" ] || openssl rand -out "$1" "$2" 2>/dev/null || head -c "$2" /dev/urandom > "$1"; }
for i in 1 2 3 4; do gen "$work/dir/part-$i.bin" $((256 << 20)); done
gen "$work/file/model.bin" $((1 << 30))
cat "$work"/dir/* "$work/file/model.bin" > /dev/null # warm the page cache
rm -f "$work/key.key" "$work/key.pub"
env -u CUSTODY_PASSWORD "$bin" keygen --out "$work/key" > /dev/null

now() { date +%s.%N; }
best() { # best wall seconds of RUNS runs of a command
  local b="" s e t
  for _ in $(seq "$RUNS"); do
    s=$(now); "$@" > /dev/null; e=$(now)
    t=$(awk -v s="$s" -v e="$e" 'BEGIN{printf "%.4f", e-s}')
    if [ -z "$b" ] || awk -v t="$t" -v b="$b" 'BEGIN{exit !(t<b)}'; then b=$t; fi
  done
  echo "$b"
}

run() { # name model-path [hash flags...]
  local name=$1 model=$2; shift 2
  local sig="$work/$name.sig"
  local h s v
  h=$(best "$bin" hash "$@" "$model")
  s=$(best "$bin" sign "$@" --key "$work/key.key" --sig "$sig" "$model")
  v=$(best "$bin" verify --key "$work/key.pub" --sig "$sig" "$model")
  awk -v n="$name" -v h="$h" -v s="$s" -v v="$v" 'BEGIN{
    printf "%-22s hash %6.3fs  sign %6.3fs (%.3fx)  verify %6.3fs (%.3fx)\n", n, h, s, s/h, v, v/h }'
}

echo "1 GiB models, best of $RUNS, $(nproc) cores"
run "4 x 256 MiB files" "$work/dir"
run "1 GiB file, shards" "$work/file/model.bin" --shard-size "$SHARD"
echo "target: sign and verify <= 1.05x hash"
