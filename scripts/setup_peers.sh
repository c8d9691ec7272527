#!/usr/bin/env bash
# The peers of bench/peers in their own environment, NOT in the project's lock:
# $CANDLEFLOW_CACHE/peers-venv with pyspark (+ confluent-kafka, fastavro) from
# bench/peers/requirements.txt, and Spark's Kafka source and Avro jars resolved from Maven
# Central by Spark's own resolver (spark.jars.packages) into $CANDLEFLOW_CACHE/peers-ivy.
# Idempotent: skipped when the stamp matches the requirements and the package list.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${CANDLEFLOW_CACHE:-$HOME/.cache/candleflow}"
VENV="$CACHE/peers-venv"
IVY="$CACHE/peers-ivy"
UV="$CACHE/uv-bootstrap/bin/uv"
export UV_CACHE_DIR="$CACHE/uv"
[ -x "$UV" ] || scripts/setup_python.sh  # installs uv
command -v java >/dev/null || { echo "error: java not found; Spark 3.5 needs a JDK 17" >&2; exit 1; }
PACKAGES="$(.venv/bin/python -c 'from bench.peers.spark_env import PACKAGES; print(",".join(PACKAGES))' 2>/dev/null \
  || python3 -c 'import sys; sys.path.insert(0, "."); from bench.peers.spark_env import PACKAGES; print(",".join(PACKAGES))')"
stamp="$VENV/.peers-stamp"
want="$( (cat bench/peers/requirements.txt; echo "$PACKAGES") | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "==> peers environment up to date in $VENV"
  exit 0
fi
exec 9>"$CACHE/.setup_peers.lock"
flock 9
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV (Python 3.11)"
  "$UV" venv --quiet --python 3.11 "$VENV"
fi
echo "==> installing bench/peers/requirements.txt into $VENV (pyspark is ~320 MB)"
VIRTUAL_ENV="$VENV" "$UV" pip install --quiet -r bench/peers/requirements.txt || {
  echo "error: installing the peers failed; check network access to PyPI and rerun 'make setup-peers'" >&2; exit 1; }
echo "==> resolving $PACKAGES from Maven Central into $IVY"
mkdir -p "$IVY"
"$VENV/bin/python" -m bench.peers.spark_env --resolve "$IVY" || {
  echo "error: Spark could not resolve $PACKAGES; check network access to Maven Central and rerun 'make setup-peers'" >&2; exit 1; }
echo "$want" > "$stamp"
echo "==> peers ready: $("$VENV/bin/python" -c 'import pyspark; print("pyspark", pyspark.__version__)'), $(ls "$IVY/jars" | wc -l) jars in $IVY/jars"
