#!/usr/bin/env bash
# Creates .venv from the locked requirements. Idempotent; downloads cached in ~/.cache/candleflow.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${CANDLEFLOW_CACHE:-$HOME/.cache/candleflow}"
UV_VERSION=0.13.9
UV_HOME="$CACHE/uv-bootstrap"
export UV_CACHE_DIR="$CACHE/uv"
if [ ! -x "$UV_HOME/bin/uv" ]; then
  echo "==> installing uv $UV_VERSION into $UV_HOME (from PyPI)"
  python3.11 -m venv "$UV_HOME" 2>/dev/null || python3 -m venv "$UV_HOME"
  "$UV_HOME/bin/pip" install --quiet "uv==$UV_VERSION" || {
    echo "error: could not install uv from PyPI; check network access to pypi.org and rerun 'make setup'" >&2; exit 1; }
fi
UV="$UV_HOME/bin/uv"
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv (Python 3.11)"
  "$UV" venv --quiet --python 3.11 .venv
fi
stamp=.venv/.lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s requirements.lock "$stamp"; then
  echo "==> installing locked Python dependencies (first time: ~1 min, PyFlink is large)"
  VIRTUAL_ENV="$PWD/.venv" "$UV" pip sync --quiet requirements.lock
  VIRTUAL_ENV="$PWD/.venv" "$UV" pip install --quiet --no-deps -e .
  cp requirements.lock "$stamp"
fi
# The editable install maps the project's top-level packages (pyproject.toml): redo it
# when that list changes, or a package added since would not import outside the checkout.
pkg_stamp=.venv/.pyproject-stamp
if [ ! -f "$pkg_stamp" ] || ! cmp -s pyproject.toml "$pkg_stamp"; then
  VIRTUAL_ENV="$PWD/.venv" "$UV" pip install --quiet --no-deps -e .
  cp pyproject.toml "$pkg_stamp"
fi
