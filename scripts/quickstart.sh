#!/usr/bin/env bash
# Quickstart: build custody and run its main job end to end on a demo model,
# on the embedded default (SQLite + local files):
#   1. pin the model's digest and gate on it (tampering fails, exit 1);
#   2. scan the files without executing them;
#   3. sign the model (OMS / Sigstore bundle) and verify the signature;
#   4. register the signed version in a local registry server, have a second
#      token approve it (two-person rule), promote it to the "production"
#      alias through the default policies and read the alias history;
#   5. start a stand-in model server only on a verified, read-only copy.
#   scripts/quickstart.sh [WORKDIR]     (default: a new temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
mkdir -p bin
CGO_ENABLED=0 go build -buildvcs=auto -o bin/custody ./cmd/custody
CUSTODY="$PWD/bin/custody"
custody() { "$CUSTODY" "$@"; }
work=${1:-$(mktemp -d)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
# say CMD...: print a command as a user would type it (quoted, "custody" for the binary).
say() {
  local out="" a
  for a in "$@"; do
    [ "$a" = "$CUSTODY" ] && a=custody
    case "$a" in *[!A-Za-z0-9_./:@=+-]*) a=$(printf '%q' "$a");; esac
    out+="$a "
  done
  printf '\n\033[1m$ %s\033[0m\n' "${out% }"
}
run() { say "$@"; "$@"; }
expect_fail() { # expect_fail CODE CMD...: run CMD, require exit CODE
  local want=$1; shift
  say "$@"
  set +e; "$@"; local code=$?; set -e
  echo "exit status $code"
  [ "$code" = "$want" ] || { echo "quickstart: expected exit $want from: $*" >&2; exit 1; }
}

echo "custody quickstart in $work ($(custody version))"
model="$work/model"
chmod -R u+w "$work" 2>/dev/null || true
rm -rf "$model" "$work/stage" "$work/registry" "$work/release".* "$work/model.sig"
mkdir -p "$model/tokenizer"
# A tiny but valid safetensors file: 8-byte little-endian header length,
# the JSON header (padded to 8 bytes), then 4 float32 values.
header='{"weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}  '
{ printf '\x40\x00\x00\x00\x00\x00\x00\x00'; printf '%s' "$header"; head -c 16 /dev/urandom; } > "$model/model.safetensors"
printf '{"architecture": "demo", "layers": 4}\n' > "$model/config.json"
printf '{"vocab": ["a", "b"]}\n' > "$model/tokenizer/vocab.json"

# 1. Publish: hash the model; keep the digest and manifest apart from it.
run custody hash "$model"
custody hash --json "$model" > "$work/model.manifest.json"
pin=$(custody hash "$model" | cut -d' ' -f1)
run custody verify "$model" --digest "$pin"
cp "$model/config.json" "$work/config.orig"
printf '{"architecture": "demo", "layers": 4, "backdoor": true}\n' > "$model/config.json"
expect_fail 1 custody verify "$model" --digest-file "$work/model.manifest.json"
expect_fail 1 custody exec --model "$model" --digest "$pin" -- sh -c 'echo SERVER STARTED'
cp "$work/config.orig" "$model/config.json"

# 2. Scan: no pickles that run code, well-formed headers.
run custody scan "$model"

# 3. Sign (an OMS v1.0 Sigstore bundle, kept beside the model) and verify.
run custody keygen --out "$work/release"
run custody sign "$model" --key "$work/release.key" --sig "$work/model.sig"
run custody verify "$model" --key "$work/release.pub" --sig "$work/model.sig"

# 4. Register in the embedded registry (SQLite under $work/registry).
token=$(custody token create --data "$work/registry" --role admin | tail -n 1)
approver=$(custody token create --data "$work/registry" --role approver | tail -n 1)
rm -f "$work/server.addr"
"$CUSTODY" server --data "$work/registry" --trusted-key "$work/release.pub" \
  --listen 127.0.0.1:0 --addr-file "$work/server.addr" 2> "$work/server.log" &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 200); do [ -s "$work/server.addr" ] && break; sleep 0.05; done
export CUSTODY_SERVER="http://$(cat "$work/server.addr")" CUSTODY_TOKEN="$token"
run custody model register demo --version 1 --model "$model" --sig "$work/model.sig" --uri "file://$model" --scan-verdict safe
export CUSTODY_TOKEN="$approver"     # the publisher may not approve its own version
run custody approve demo@1 --comment "quickstart"
run custody promote demo@1 --alias production
export CUSTODY_TOKEN="$token"
run custody model show demo@1
run custody alias history demo production
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; trap - EXIT

# 5. Serve only what was verified: a read-only staged copy of the very bytes hashed.
run custody exec --model "$model" --digest "$pin" --stage "$work/stage" -- \
  sh -c 'echo "model server loading $CUSTODY_MODEL_DIR (sha256 $CUSTODY_MODEL_SHA256)"; ls -l "$CUSTODY_MODEL_DIR"'

echo
echo "quickstart OK"
