#!/usr/bin/env bash
# Quickstart: build custody and run its main job end to end on a demo model,
# on the embedded default (SQLite + local files):
#   1. pin the model's digest and gate on it (tampering fails, exit 1);
#   2. scan the files without executing them;
#   3. sign the model (OMS / Sigstore bundle) and verify the signature;
#   4. register the signed version in a local registry server, have a second
#      token approve it (two-person rule), promote it to the "production"
#      alias through the default policies and read the alias history;
#   5. start a stand-in model server only on a verified, read-only copy;
#   6. production monitoring (issue #8): a retrained v2 is promoted and served
#      by a watched, verified process; predictions and late labels flow in;
#      the calibration report; v2 drifts and breaches ECE two hours in a row;
#      the monitor rolls production back to v1 through the rollback policy, a
#      signed webhook alert arrives, the serving process restarts on v1, and
#      the transparency log proves each step.
#   scripts/quickstart.sh [WORKDIR]     (default: a new temporary directory)
# Needs python3 (standard library only) for the demo data and the alert
# receiver, and curl.
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
rm -rf "$model" "$work/stage" "$work/registry" "$work/release".* "$work/model.sig" "$work/model2" "$work/model2.sig" \
  "$work/serve-stage" "$work/monitor" "$work/served" "$work/alerts.jsonl"
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

# 6. Production monitoring: the whole story of issue #8 on the same registry.
#    A reference profile (the validation set's scores and outcomes) and a
#    monitor: 1 h windows, ECE >= 0.1 in 2 windows in a row rolls production
#    back, alerts go to a webhook signed with a secret from the environment.
mkdir -p "$work/monitor"
python3 - "$work/monitor" <<'PY'
import random, sys
random.seed(7)
with open(sys.argv[1] + "/validation.csv", "w") as f:
    f.write("amount,score,label\n")
    for i in range(2000):
        p = (i % 10) / 10 + 0.05
        f.write("%.3f,%.2f,%d\n" % (random.lognormvariate(3, 1), p, random.random() < p))
PY
run custody monitor profile --input "$work/monitor/validation.csv" --column amount \
  --label-column label --prob-column score --out "$work/monitor/reference.json"
# A tiny webhook receiver (python3's http.server): one JSON line per alert.
cat > "$work/monitor/receiver.py" <<'PY'
import http.server, json, sys
out, portfile = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(out, "a") as f:
            f.write(json.dumps({"signature": self.headers["X-Custody-Signature"], "body": body.decode()}) + "\n")
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(portfile, "w").write(str(s.server_port))
s.serve_forever()
PY
rm -f "$work/monitor/port"
python3 "$work/monitor/receiver.py" "$work/alerts.jsonl" "$work/monitor/port" &
receiver_pid=$!
cleanup() { kill ${watch_pid:-} ${server_pid:-} "$receiver_pid" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 200); do [ -s "$work/monitor/port" ] && break; sleep 0.05; done
cat > "$work/monitor/monitors.yaml" <<YAML
monitors:
  - name: demo-prod
    model: demo
    alias: production
    reference: reference.json
    window: 1h
    min_rows: 100
    metrics: {ece: 0.1}
    consecutive: 2
    rollback: true
    rollback_on: [ece]
    alerts:
      - url: http://127.0.0.1:$(cat "$work/monitor/port")/alerts
        secret_env: CUSTODY_ALERT_SECRET
YAML
run cat "$work/monitor/monitors.yaml"
export CUSTODY_ALERT_SECRET="quickstart-$RANDOM$RANDOM"
deployer=$(custody token create --data "$work/registry" --role deployer --name web | tail -n 1)
rm -f "$work/server.addr"
say custody server --data "$work/registry" --trusted-key "$work/release.pub" --monitors "$work/monitor/monitors.yaml" '&'
"$CUSTODY" server --data "$work/registry" --trusted-key "$work/release.pub" --monitors "$work/monitor/monitors.yaml" \
  --listen 127.0.0.1:0 --addr-file "$work/server.addr" 2> "$work/server.log" &
server_pid=$!
for _ in $(seq 200); do [ -s "$work/server.addr" ] && break; sleep 0.05; done
export CUSTODY_SERVER="http://$(cat "$work/server.addr")" CUSTODY_LOG_KEY="$work/registry/log.key.pub"

# A retrained v2, signed, registered, approved by the second token, promoted.
cp -R "$model" "$work/model2"
chmod -R u+w "$work/model2"
head -c 16 /dev/urandom | dd of="$work/model2/model.safetensors" bs=1 seek=72 conv=notrunc 2>/dev/null
run custody sign "$work/model2" --key "$work/release.key" --sig "$work/model2.sig"
export CUSTODY_TOKEN="$token"
run custody model register demo --version 2 --model "$work/model2" --sig "$work/model2.sig" --uri "file://$work/model2" --scan-verdict safe
v2=$(custody hash "$work/model2" | cut -d' ' -f1)
export CUSTODY_TOKEN="$approver"
run custody approve demo@2 --comment "retrained"
run custody promote demo@2 --alias production

# A verified start that follows the alias: the stand-in server runs on a
# staged, verified copy of production and restarts when the alias moves.
cat > "$work/serve.sh" <<SH
echo "\$CUSTODY_MODEL_VERSION" > "$work/served.tmp"; mv "$work/served.tmp" "$work/served"
echo "model server: demo@\$CUSTODY_MODEL_ALIAS = version \$CUSTODY_MODEL_VERSION (sha256 \$CUSTODY_MODEL_SHA256)" >&2
trap 'exit 0' INT TERM
while true; do sleep 0.2; done
SH
say custody exec --model demo@production --log-key "$CUSTODY_LOG_KEY" --trusted-key "$work/release.pub" --watch -- sh serve.sh '&'
CUSTODY_TOKEN="$deployer" "$CUSTODY" exec --model demo@production --log-key "$CUSTODY_LOG_KEY" --trusted-key "$work/release.pub" \
  --stage "$work/serve-stage" --watch --poll 200ms -- sh "$work/serve.sh" 2> "$work/exec.log" &
watch_pid=$!
wait_served() {
  for _ in $(seq 300); do [ "$(cat "$work/served" 2>/dev/null)" = "$1" ] && return 0; sleep 0.1; done
  echo "quickstart: the serving process is not on version $1" >&2; cat "$work/exec.log" >&2; exit 1
}
wait_served 2
cat "$work/exec.log"

# Predictions from v2 over four past hours (a proxy would send them as they
# are served), then their outcomes, later. v2 is calibrated for two hours,
# then drifts: the outcomes turn against its scores.
python3 - "$work/monitor" "$v2" <<'PY'
import json, random, sys, time
d, digest = sys.argv[1], sys.argv[2]
random.seed(11)
base = (int(time.time()) // 3600 - 5) * 3600
with open(d + "/predictions.ndjson", "w") as p, open(d + "/labels.ndjson", "w") as l:
    for w in range(4):
        for j in range(400):
            rid = "req-%d-%03d" % (w, j)
            score = (j % 10) / 10 + 0.05
            ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + w * 3600 + j * 9))
            p.write(json.dumps({"ts": ts, "request_id": rid, "model": "demo", "model_sha256": digest,
                                "features": {"amount": round(random.lognormvariate(3, 1), 3)}, "prediction": score}) + "\n")
            q = score if w < 2 else 1 - score
            l.write(json.dumps({"request_id": rid, "label": int(random.random() < q)}) + "\n")
fmt = "%Y-%m-%dT%H:%M:%SZ"
open(d + "/window", "w").write(time.strftime(fmt, time.gmtime(base)) + ".." + time.strftime(fmt, time.gmtime(base + 3600)))
PY
export CUSTODY_TOKEN="$token"
run custody predictions ingest "$work/monitor/predictions.ndjson"
run custody predictions label "$work/monitor/labels.ndjson"
run custody predictions get req-0-007

# The calibration report of the first (healthy) hour, from the server's
# summaries; the HTML page (reliability diagram, drift histograms) is
# served at /monitors/demo-prod/report.html to a bearer token.
export CUSTODY_TOKEN="$approver"
run custody monitor report demo-prod --window "$(cat "$work/monitor/window")"
curl -sf -H "Authorization: Bearer $CUSTODY_TOKEN" "$CUSTODY_SERVER/monitors/demo-prod/report.html" -o "$work/report.html"
echo "HTML report of the newest hour: $work/report.html"

# The server's schedule evaluates due windows every minute; run it now.
# Hours 3 and 4 breach ECE: the monitor rolls production back to v1
# (exit 1: thresholds breached).
expect_fail 1 custody monitor evaluate demo-prod
run custody alias history demo production
wait_served 1
echo "the serving process restarted on version $(cat "$work/served"):"
tail -n 3 "$work/exec.log"

# The alerts, each verified against the shared secret.
for _ in $(seq 100); do grep -q 'rollback' "$work/alerts.jsonl" 2>/dev/null && break; sleep 0.1; done
say python3 verify-alerts.py "$work/alerts.jsonl"
python3 - "$work/alerts.jsonl" <<'PY'
import hashlib, hmac, json, os, sys, time
secret = os.environ["CUSTODY_ALERT_SECRET"].encode()
events = []
for line in open(sys.argv[1]):
    a = json.loads(line)
    parts = dict(p.split("=", 1) for p in a["signature"].split(","))
    want = hmac.new(secret, parts["t"].encode() + b"." + a["body"].encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(want, parts["v1"]) and abs(time.time() - int(parts["t"])) < 300, "bad signature"
    body = json.loads(a["body"])
    events.append(body["event"])
    print("alert %-8s %s window %s  signature ok  %s" % (body["event"], body["monitor"], body["window_start"], body.get("reason", "")))
assert "rollback" in events, "no rollback alert"
PY

# The log proves each step: the audit replays it over the registry, and the
# newest entries, each proved against the signed checkpoint, are the
# monitor's results, its rollback decision, v2 marked bad and the alias move.
run custody log audit --server "$CUSTODY_SERVER" --log-key "$CUSTODY_LOG_KEY"
size=$(custody log checkpoint --log-key "$CUSTODY_LOG_KEY" | sed -n 2p)
say custody log prove INDEX --log-key "$CUSTODY_LOG_KEY"
for i in $(seq $((size - 8)) $((size - 1))); do
  custody log prove "$i" --log-key "$CUSTODY_LOG_KEY" > "$work/entry.json"
  python3 - "$i" "$work/entry.json" <<'PY'
import json, sys
for line in open(sys.argv[2]):
    line = line.strip()
    if line.startswith("{"):
        e = json.loads(line)
        print("entry %s: %-15s %-24s by %s" % (sys.argv[1], e["type"], e["subject"], e["actor"]))
        break
PY
done
cleanup; wait 2>/dev/null || true; trap - EXIT

echo
echo "quickstart OK"
