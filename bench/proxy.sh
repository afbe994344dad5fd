#!/usr/bin/env bash
# Benchmark: the latency custody proxy adds in front of the demo model server
# (examples/demo-model). Open-loop load at RATE req/s (default 1000) against
# the demo server directly and through `custody proxy`, alternating short phases;
# prints p50/p99 of both and the overhead. The proxy ships every record to a
# real receiver of the ingest wire contract (a separate process) during the
# measurement. -baseline BIN adds a second custody build (e.g. main's) as a
# third target in the same rounds. Target: p99 overhead < 1 ms at 1,000 req/s.
# See docs/proxy.md, "Speed and benchmark".
#
#   bench/proxy.sh [-rate 1000] [-duration 20s] [-rounds 20] [-warmup 2s]
#                  [-baseline CUSTODY-BINARY] [-cpuprofile FILE] [-proxy-procs N]
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./bench/proxyload "$@"
