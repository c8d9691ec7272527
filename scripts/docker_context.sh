#!/usr/bin/env bash
# Stage the build-context paths the Dockerfiles copy that are not source files:
#   build/docker/flink-jars/   connector jars ($CANDLEFLOW_CACHE/jars/flink from setup_jars.sh)
#                              + the PostgreSQL JDBC driver (production Iceberg catalog)
#   build/docker/hadoop-jars/  Hadoop client jars for Flink's lib/ (Iceberg catalog in the JM)
# udfs/target/candleflow-udfs.jar comes from scripts/build_udfs.sh. Then, from the repo root:
#   docker build -f docker/job.Dockerfile -t candleflow/job:<version> .
#   docker build -f docker/services.Dockerfile -t candleflow/services:<version> .
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${CANDLEFLOW_CACHE:-$HOME/.cache/candleflow}"
POSTGRES_JDBC_VERSION=42.7.4
# Paths this script produces (tests/deploy/test_dockerfiles.py checks the Dockerfiles
# copy nothing else that is missing from the tree).
OUTPUTS=(build/docker/flink-jars/ build/docker/hadoop-jars/)

scripts/setup_jars.sh
scripts/build_udfs.sh
rm -rf "${OUTPUTS[@]}"
mkdir -p "${OUTPUTS[@]}"
cp "$CACHE"/jars/flink/*.jar build/docker/flink-jars/
mvn -B -q -Dmaven.repo.local="$CACHE/m2" dependency:copy \
  "-Dartifact=org.postgresql:postgresql:$POSTGRES_JDBC_VERSION:jar" \
  -Dtransitive=false -DoutputDirectory=build/docker/flink-jars/ >/dev/null
mv build/docker/flink-jars/hadoop-client-*.jar build/docker/flink-jars/commons-logging-*.jar \
  build/docker/hadoop-jars/
echo "==> docker build context staged: $(ls build/docker/flink-jars | wc -l) connector jars," \
  "$(ls build/docker/hadoop-jars | wc -l) hadoop jars"
