#!/usr/bin/env bash
# promtool, Prometheus' own rule checker and evaluator (tests/deploy/ evaluates every
# PrometheusRule expression of the chart with `promtool test rules`), built from the Go
# module proxy and cached under $CANDLEFLOW_CACHE/bin; idempotent (a version stamp).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${CANDLEFLOW_CACHE:-$HOME/.cache/candleflow}"
BIN="$CACHE/bin"
mkdir -p "$BIN"
# Prometheus v3.x is published to the Go module proxy as v0.3xx.y (v0.316.0 = v3.16.0).
PROMTOOL_VERSION=v0.316.0

command -v go >/dev/null || {
  echo "error: go not found: promtool is built from the Go module proxy (install Go >= 1.25)" >&2
  exit 1
}
if [ -f "$BIN/.promtool" ] && [ "$(cat "$BIN/.promtool")" = "$PROMTOOL_VERSION" ] && [ -x "$BIN/promtool" ]; then
  exit 0
fi
echo "==> building promtool $PROMTOOL_VERSION from the Go module proxy (a few minutes, once)"
GOFLAGS="${GOFLAGS:-} -trimpath" GOBIN="$BIN" \
  go install "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION"
"$BIN/promtool" --version >/dev/null
echo "$PROMTOOL_VERSION" > "$BIN/.promtool"
