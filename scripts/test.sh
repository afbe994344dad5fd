#!/usr/bin/env bash
# The full test suite: installs what the tests need (idempotent), then runs
# formatting, vet, staticcheck, a CGO_ENABLED=0 build and every test.
# Usage: scripts/test.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
# install-tools.sh installs PostgreSQL, so its tests must run, never skip.
export CUSTODY_TEST_POSTGRES="${CUSTODY_TEST_POSTGRES:-1}"
GOBIN="$(go env GOPATH)/bin"
export PATH="$GOBIN:$PATH"

step() { printf '\n== %s\n' "$*"; }

step "tools"
scripts/install-tools.sh

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed on:"; echo "$unformatted"; exit 1; fi

step "go mod tidy (no diff)"
cp go.mod /tmp/custody-go.mod.bak; cp go.sum /tmp/custody-go.sum.bak
go mod tidy
if ! cmp -s go.mod /tmp/custody-go.mod.bak || ! cmp -s go.sum /tmp/custody-go.sum.bak; then
  echo "go mod tidy changed go.mod/go.sum; commit the tidy result"; diff /tmp/custody-go.mod.bak go.mod || true; exit 1
fi

step "CGO_ENABLED=0 build"
CGO_ENABLED=0 go build -o /dev/null ./cmd/custody

step "go vet"
go vet ./...

step "staticcheck"
staticcheck ./...

step "go test"
go test -race -count=1 ./... 2>&1 | tee /tmp/custody-test.log
