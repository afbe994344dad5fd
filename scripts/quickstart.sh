#!/usr/bin/env bash
# Quickstart: build custody and run its main job end to end on a demo model:
# pin a model's digest, verify it, watch tampering fail the gate, and start a
# "model server" only on a verified, read-only staged copy.
#   scripts/quickstart.sh [WORKDIR]     (default: a new temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
mkdir -p bin
CGO_ENABLED=0 go build -buildvcs=auto -o bin/custody ./cmd/custody
custody() { "$PWD/bin/custody" "$@"; }
work=${1:-$(mktemp -d)}
mkdir -p "$work"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

echo "custody quickstart in $work ($(bin/custody version))"
model="$work/model"
chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$model" "$work/stage"
mkdir -p "$model/tokenizer"
head -c 3000000 /dev/urandom > "$model/weights.bin"
printf '{"architecture": "demo", "layers": 4}\n' > "$model/config.json"
printf '{"vocab": ["a", "b"]}\n' > "$model/tokenizer/vocab.json"

# 1. Publish: hash the model and keep the manifest apart from the artifact.
run custody hash "$model"
custody hash --json "$model" > "$work/model.manifest.json"
pin=$(custody hash "$model" | cut -d' ' -f1)
echo "pinned digest: $pin (manifest in $work/model.manifest.json)"

# 2. The CI / start-up gate.
run custody verify "$model" --digest "$pin"

# 3. Tampering fails the gate with exit 1 and says what changed.
cp "$model/config.json" "$work/config.orig"
printf '{"architecture": "demo", "layers": 4, "backdoor": true}\n' > "$model/config.json"
say custody verify "$model" --digest-file "$work/model.manifest.json"
set +e; custody verify "$model" --digest-file "$work/model.manifest.json"; code=$?; set -e
echo "exit status $code (1 = does not match)"
[ "$code" = 1 ] || { echo "quickstart: tampering was not detected" >&2; exit 1; }
say custody exec --model "$model" --digest "$pin" -- sh -c 'echo SERVER STARTED'
set +e; custody exec --model "$model" --digest "$pin" -- sh -c 'echo SERVER STARTED'; code=$?; set -e
echo "exit status $code: the server was never started"
cp "$work/config.orig" "$model/config.json"

# 4. Serve only what was verified: a read-only staged copy of the very bytes hashed.
run custody exec --model "$model" --digest "$pin" --stage "$work/stage" -- \
  sh -c 'echo "model server loading $CUSTODY_MODEL_DIR (sha256 $CUSTODY_MODEL_SHA256)"; ls -l "$CUSTODY_MODEL_DIR"'

echo
echo "quickstart OK"
