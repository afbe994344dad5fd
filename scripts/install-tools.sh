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
if ! command -v openssl >/dev/null; then
  apt-get update -qq && apt-get install -y -qq openssl >/dev/null
fi
