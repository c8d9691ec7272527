#!/usr/bin/env bash
# grpcurl, a gRPC client that is not Candleflow's (tests/corpus/ calls the server through
# server reflection with it), built from the Go module proxy and cached under
# $CANDLEFLOW_CACHE/bin; idempotent (a version stamp).
set -euo pipefail
exec "$(dirname "$0")/go_install.sh" grpcurl v1.9.3 github.com/fullstorydev/grpcurl/cmd/grpcurl 1.24
