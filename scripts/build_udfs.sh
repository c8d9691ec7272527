#!/usr/bin/env bash
# Build the Java UDF jar (udfs/ -> udfs/target/candleflow-udfs.jar) with Maven.
# Skips the build when the jar is newer than every source file.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
UDFS="$ROOT/udfs"
JAR="$UDFS/target/candleflow-udfs.jar"

if ! command -v mvn >/dev/null 2>&1; then
  echo "build_udfs: Maven (mvn) not found; install it (apt-get install maven) and Java 17" >&2
  exit 1
fi
if ! java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])'; then
  echo "build_udfs: Java 17 or newer is required (java -version)" >&2
  exit 1
fi
if [[ -f "$JAR" ]] && [[ -z "$(find "$UDFS/src" "$UDFS/pom.xml" -newer "$JAR" -print -quit)" ]]; then
  echo "build_udfs: $JAR is up to date"
  exit 0
fi
echo "build_udfs: building $JAR (first run downloads Maven plugins and Flink API jars)..."
if ! mvn -B -q -f "$UDFS/pom.xml" package -DskipTests; then
  echo "build_udfs: Maven build FAILED; rerun 'mvn -f udfs/pom.xml package' for the full log" >&2
  exit 1
fi
echo "build_udfs: built $JAR"
