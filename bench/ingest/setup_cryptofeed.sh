#!/usr/bin/env bash
# Install cryptofeed into its own bench venv (never into the project lock): the ingest
# benchmark runs its parsers side by side with ours on the same recorded frames.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="${HERE}/../.venv-cryptofeed"
UV="${UV:-$(command -v uv || echo "${HOME}/.cache/candleflow/uv-bootstrap/bin/uv")}"
if [[ ! -x "${VENV}/bin/python" ]]; then
  "${UV}" venv --quiet --python 3.11 "${VENV}"
fi
# The main venv's packages (confluent-kafka, zstandard, the candleflow code) are reached
# through a .pth file, so both parsers run in one interpreter, in the same process.
"${UV}" pip install --quiet --python "${VENV}/bin/python" "cryptofeed${CRYPTOFEED_VERSION:+==${CRYPTOFEED_VERSION}}" zstandard
echo "cryptofeed installed in ${VENV}"
