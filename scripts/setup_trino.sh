#!/usr/bin/env bash
# placeholder: filled in by the owning workstream
set -euo pipefail
echo "setup_trino: nothing to do yet"
