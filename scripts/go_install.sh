#!/usr/bin/env bash
# go_install.sh NAME VERSION PACKAGE MIN_GO [NOTE]: a Go tool built from the Go module proxy
# (`go install PACKAGE@VERSION`) into $CANDLEFLOW_CACHE/bin/NAME; idempotent (a version
# stamp, $CANDLEFLOW_CACHE/bin/.NAME). Used by setup_grpcurl.sh and setup_promtool.sh.
set -euo pipefail
NAME="$1" VERSION="$2" PACKAGE="$3" MIN_GO="$4" NOTE="${5:-}"
CACHE="${CANDLEFLOW_CACHE:-$HOME/.cache/candleflow}"
BIN="$CACHE/bin"
mkdir -p "$BIN"

command -v go >/dev/null || {
  echo "error: go not found: $NAME is built from the Go module proxy (install Go >= $MIN_GO)" >&2
  exit 1
}
if [ -f "$BIN/.$NAME" ] && [ "$(cat "$BIN/.$NAME")" = "$VERSION" ] && [ -x "$BIN/$NAME" ]; then
  exit 0
fi
echo "==> building $NAME $VERSION from the Go module proxy${NOTE:+ ($NOTE)}"
GOFLAGS="${GOFLAGS:-} -trimpath" GOBIN="$BIN" go install "$PACKAGE@$VERSION"
"$BIN/$NAME" --version >/dev/null 2>&1 || "$BIN/$NAME" -version >/dev/null 2>&1 || {
  echo "error: $BIN/$NAME does not run" >&2
  exit 1
}
echo "$VERSION" > "$BIN/.$NAME"
