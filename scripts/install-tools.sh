#!/usr/bin/env bash
# Installs the tools the tests use, pinned, from the Go module proxy and
# Debian. Idempotent: does nothing for tools already present at that version.
set -euo pipefail
export GOTOOLCHAIN=local
GOBIN="$(go env GOPATH)/bin"

STATICCHECK_VERSION=v0.8.2
if ! "$GOBIN/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
  echo "installing staticcheck $STATICCHECK_VERSION"
  go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
# cosign, for the interop tests (custody's bundles verify with cosign, and
# custody verifies cosign's). Built from the Go module proxy: a few minutes
# the first time, nothing afterwards.
COSIGN_VERSION=v2.6.5
if ! "$GOBIN/cosign" version 2>/dev/null | grep -q "GitVersion: *$COSIGN_VERSION\$"; then
  echo "installing cosign $COSIGN_VERSION"
  go install "github.com/sigstore/cosign/v2/cmd/cosign@$COSIGN_VERSION"
fi
if ! command -v openssl >/dev/null; then
  apt-get update -qq && apt-get install -y -qq openssl >/dev/null
fi
# PostgreSQL server binaries (initdb, pg_ctl): the store and end-to-end tests
# start throwaway clusters with them. With CI=true their absence fails the
# tests instead of skipping them.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  echo "installing postgresql"
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi
# Debian's python3 and its dist-packages: the environment-lock tests compare
# custody's reading of a real site-packages with importlib.metadata.
if [ ! -x /usr/bin/python3 ]; then
  echo "installing python3"
  apt-get update -qq && apt-get install -y -qq python3 >/dev/null
fi
# pathspec (the gitignore matcher DVC uses): internal/dvc's .dvcignore test
# re-runs testdata/dvcignore/gen.py with it as the reference.
if ! /usr/bin/python3 -c 'import pathspec' 2>/dev/null; then
  echo "installing python3-pathspec"
  apt-get update -qq && apt-get install -y -qq python3-pathspec >/dev/null
fi
