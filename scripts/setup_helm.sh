#!/usr/bin/env bash
# Offline validation tools for helm/, k8s/ and terraform/ (tests/deploy/), all from registries
# this machine reaches, cached under $CANDLEFLOW_CACHE and idempotent (stamps per tool):
#   helm, kubeconform         built from the Go module proxy (go install; ~6 min first time)
#   deploy-venv               kubernetes-validate (Kubernetes JSON schemas) + checkov (PyPI)
#   operator CRD              flink-kubernetes-operator-api jar (Maven Central)
#   prometheus-operator CRDs  its Go module (go mod download)
#   k8s-schemas/              kubeconform schema tree built by scripts/k8s_schemas.py
#   tofu                      only when neither terraform nor tofu is on PATH: OpenTofu built
#                             from its Go module (its go.mod has replace directives, so
#                             `go install pkg@version` refuses it; go build inside the module)
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${CANDLEFLOW_CACHE:-$HOME/.cache/candleflow}"
BIN="$CACHE/bin"
K8S="$CACHE/k8s"
mkdir -p "$BIN" "$K8S"

HELM_VERSION=v3.19.5
KUBECONFORM_VERSION=v0.7.0
KUBERNETES_VALIDATE_VERSION=1.37.0
CHECKOV_VERSION=3.3.30
# The newest flink-kubernetes-operator-api on Maven Central as reached here; its CRD is
# brought to 1.15.0 by scripts/k8s_schemas.py (see the docstring there).
OPERATOR_API_VERSION=1.10.0
PROM_OPERATOR_VERSION=v0.85.0
K8S_VERSION=1.33.0
OPENTOFU_VERSION=v1.10.6

command -v go >/dev/null || {
  echo "error: go not found: helm and kubeconform are built from the Go module proxy (install Go >= 1.24)" >&2
  exit 1
}
export GOFLAGS="${GOFLAGS:-} -trimpath"

stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# helm: the k8s version compiled into a source build is a default (v1.20); tests always pass
# --kube-version, so no ldflags are needed.
if ! stamp_ok "$BIN/.helm" "$HELM_VERSION" || [ ! -x "$BIN/helm" ]; then
  echo "==> building helm $HELM_VERSION from the Go module proxy (first time ~6 min)"
  GOBIN="$BIN" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  echo "$HELM_VERSION" > "$BIN/.helm"
fi
if ! stamp_ok "$BIN/.kubeconform" "$KUBECONFORM_VERSION" || [ ! -x "$BIN/kubeconform" ]; then
  echo "==> building kubeconform $KUBECONFORM_VERSION from the Go module proxy"
  GOBIN="$BIN" go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  echo "$KUBECONFORM_VERSION" > "$BIN/.kubeconform"
fi

# Python tools in their own venv: checkov's dependency tree must not touch .venv's pins.
VENV="$CACHE/deploy-venv"
want="kubernetes-validate==$KUBERNETES_VALIDATE_VERSION checkov==$CHECKOV_VERSION"
if ! stamp_ok "$VENV/.stamp" "$want"; then
  UV="$CACHE/uv-bootstrap/bin/uv"
  [ -x "$UV" ] || scripts/setup_python.sh
  echo "==> installing $want into $VENV"
  export UV_CACHE_DIR="$CACHE/uv"
  [ -x "$VENV/bin/python" ] || "$UV" venv --quiet --python 3.11 "$VENV"
  # shellcheck disable=SC2086
  "$UV" pip install --quiet --python "$VENV/bin/python" $want
  echo "$want" > "$VENV/.stamp"
fi

JAR="$K8S/flink-kubernetes-operator-api-$OPERATOR_API_VERSION.jar"
if [ ! -s "$JAR" ]; then
  echo "==> fetching flink-kubernetes-operator-api $OPERATOR_API_VERSION (Maven Central)"
  mvn -B -q -Dmaven.repo.local="$CACHE/m2" dependency:copy \
    "-Dartifact=org.apache.flink:flink-kubernetes-operator-api:$OPERATOR_API_VERSION:jar" \
    -Dtransitive=false "-DoutputDirectory=$K8S" >"$K8S/mvn.log" 2>&1 \
    || { echo "error: could not fetch the operator API jar; see $K8S/mvn.log" >&2; exit 1; }
fi

PROM_DIR="$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROM_OPERATOR_VERSION" \
  | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
PROM_CRDS="$PROM_DIR/example/prometheus-operator-crd"

SCHEMAS="$CACHE/k8s-schemas"
KV_DIR="$("$VENV/bin/python" -c 'import kubernetes_validate, pathlib; print(pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema")')"
want="$(cat scripts/k8s_schemas.py | sha256sum | cut -d' ' -f1) $K8S_VERSION $OPERATOR_API_VERSION $PROM_OPERATOR_VERSION $KUBERNETES_VALIDATE_VERSION"
if ! stamp_ok "$SCHEMAS/.stamp" "$want"; then
  echo "==> building kubeconform schemas (Kubernetes $K8S_VERSION + operator CRDs)"
  rm -rf "$SCHEMAS"
  "$VENV/bin/python" scripts/k8s_schemas.py --k8s-version "$K8S_VERSION" --kv-dir "$KV_DIR" \
    --operator-jar "$JAR" --prom-crds "$PROM_CRDS" --out "$SCHEMAS"
  echo "$want" > "$SCHEMAS/.stamp"
fi

if command -v terraform >/dev/null || command -v tofu >/dev/null; then
  :
elif [ "${CANDLEFLOW_BUILD_TOFU:-0}" != 1 ]; then
  # Building OpenTofu costs 8-45 min of CPU: too much for every CI run. Without a binary the
  # terraform tests skip fmt/validate with that reason and still run checkov.
  echo "==> no terraform/tofu on PATH: terraform fmt/validate will be skipped (CANDLEFLOW_BUILD_TOFU=1 builds OpenTofu)"
elif ! stamp_ok "$BIN/.tofu" "$OPENTOFU_VERSION" || [ ! -x "$BIN/tofu" ]; then
  echo "==> building OpenTofu $OPENTOFU_VERSION from its Go module (no terraform on PATH; ~8 min)"
  dir="$(go mod download -json "github.com/opentofu/opentofu@$OPENTOFU_VERSION" \
    | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  (cd "$dir" && GOFLAGS="$GOFLAGS -mod=mod" go build -o "$BIN/tofu" ./cmd/tofu)
  echo "$OPENTOFU_VERSION" > "$BIN/.tofu"
fi
echo "==> deploy validation tools ready: $("$BIN/helm" version --short 2>/dev/null | head -1) (helm $HELM_VERSION), kubeconform $KUBECONFORM_VERSION, schemas in $SCHEMAS"
