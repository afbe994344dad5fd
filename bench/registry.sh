#!/usr/bin/env bash
# Benchmark: the registry server over HTTP on loopback, SQLite and PostgreSQL.
# Registers N signed versions with C concurrent clients (registrations/s),
# then p50/p99 of `model show` under closed-loop load and of alias resolution
# at RATE req/s (open loop). Targets: >= 500 registrations/s, alias p99 < 5 ms
# at 500 req/s.
#
#   bench/registry.sh [-store sqlite|postgres|both] [-n 10000] [-c 16] [-rate 500] [-duration 10s]
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./bench/registry "$@"
