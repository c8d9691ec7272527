#!/usr/bin/env bash
# promtool, Prometheus' own rule checker and evaluator (tests/deploy/ evaluates every
# PrometheusRule expression of the chart with `promtool test rules`), built from the Go
# module proxy and cached under $CANDLEFLOW_CACHE/bin; idempotent (a version stamp).
set -euo pipefail
# Prometheus v3.x is published to the Go module proxy as v0.3xx.y (v0.316.0 = v3.16.0).
exec "$(dirname "$0")/go_install.sh" promtool v0.316.0 \
  github.com/prometheus/prometheus/cmd/promtool 1.25 "a few minutes, once"
