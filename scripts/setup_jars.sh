#!/usr/bin/env bash
# Resolves the stack's JVM jars from Maven Central (jvm/runtime/pom.xml, exact versions) into
# $CANDLEFLOW_CACHE/jars/{flink,kafka,registry}. Idempotent: skipped when the stamp matches
# the poms. Maven's own repository lives in $CANDLEFLOW_CACHE/m2, so nothing lands in ~/.m2.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${CANDLEFLOW_CACHE:-$HOME/.cache/candleflow}"
JARS="$CACHE/jars"
M2="$CACHE/m2"
POMS=(jvm/runtime/pom.xml jvm/runtime/flink/pom.xml jvm/runtime/kafka/pom.xml jvm/runtime/registry/pom.xml)
stamp="$JARS/.stamp"
want="$(cat "${POMS[@]}" | sha256sum | cut -d' ' -f1)"

up_to_date() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; }
if up_to_date; then
  echo "==> JVM jars up to date in $JARS"
  exit 0
fi
command -v java >/dev/null || { echo "error: java not found; install a JDK 17 (e.g. apt-get install openjdk-17-jdk-headless)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "error: mvn not found; install Maven (e.g. apt-get install maven)" >&2; exit 1; }

mkdir -p "$JARS" "$M2"
# One resolver at a time (several checkouts or `make` runs may share the cache).
exec 9>"$CACHE/.setup_jars.lock"
flock 9
if up_to_date; then
  echo "==> JVM jars up to date in $JARS (resolved by a concurrent run)"
  exit 0
fi
log="$CACHE/setup_jars.log"
stage="$JARS/.staging"
echo "==> resolving JVM jars from Maven Central into $JARS (first time: ~400 MB, a few minutes)"
echo "    full log: $log"
# Resolve into a staging folder and swap it in at the end: a pom change may drop or bump a
# jar (no stale version may stay on a classpath), and processes of a running stack keep
# finding a complete set of jars meanwhile. Downloads stay cached in $M2.
rm -rf "$stage"
mkdir -p "$stage"
set +e
mvn -B -U -f jvm/runtime/pom.xml -Dmaven.repo.local="$M2" -Djars.dir="$stage" package 2>&1 \
  | tee "$log" \
  | grep --line-buffered -E '^\[INFO\] Downloaded from .*\.(jar|tar\.gz) |Building candleflow|ERROR|BUILD' \
  | sed -u -E 's#^\[INFO\] Downloaded from central: https://[^/]+/maven2/#    got #; s#^\[INFO\] ##'
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
  echo >&2
  echo "error: resolving the JVM jars failed (mvn exit $rc)." >&2
  grep -oE "(Could not (resolve|find|transfer) artifact|Failed to read artifact descriptor for|Could not resolve dependencies for project|Could not get content|IO Error)[^:]*:? ?[^ ]+" "$log" \
    | sort -u | sed 's/^/  /' >&2 || true
  echo "Check network access to Maven Central, then retry: scripts/setup_jars.sh (or make setup-jars);" >&2
  echo "finished downloads are kept in $M2. Full log: $log" >&2
  rm -rf "$stage"
  exit 1
fi
for d in flink kafka registry; do
  [ -n "$(ls -A "$stage/$d" 2>/dev/null)" ] || { echo "error: $stage/$d is empty after resolution; see $log" >&2; exit 1; }
done
for d in flink kafka registry; do
  rm -rf "$JARS/.old-$d"
  [ -e "$JARS/$d" ] && mv "$JARS/$d" "$JARS/.old-$d"
  mv "$stage/$d" "$JARS/$d"
  rm -rf "$JARS/.old-$d"
done
rmdir "$stage"
echo "$want" > "$stamp"
echo "==> JVM jars ready: $(ls "$JARS/flink" | wc -l) flink, $(ls "$JARS/kafka" | wc -l) kafka, registry $(du -sh "$JARS/registry" | cut -f1)"
