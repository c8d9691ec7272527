#!/usr/bin/env bash
# grpcurl, a gRPC client that is not Candleflow's (tests/corpus/ calls the server through
# server reflection with it), built from the Go module proxy and cached under
# $CANDLEFLOW_CACHE/bin; idempotent (a version stamp).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${CANDLEFLOW_CACHE:-$HOME/.cache/candleflow}"
BIN="$CACHE/bin"
mkdir -p "$BIN"
GRPCURL_VERSION=v1.9.3

command -v go >/dev/null || {
  echo "error: go not found: grpcurl is built from the Go module proxy (install Go >= 1.24)" >&2
  exit 1
}
if [ -f "$BIN/.grpcurl" ] && [ "$(cat "$BIN/.grpcurl")" = "$GRPCURL_VERSION" ] && [ -x "$BIN/grpcurl" ]; then
  exit 0
fi
echo "==> building grpcurl $GRPCURL_VERSION from the Go module proxy"
GOFLAGS="${GOFLAGS:-} -trimpath" GOBIN="$BIN" \
  go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
echo "$GRPCURL_VERSION" > "$BIN/.grpcurl"
