#!/usr/bin/env bash
# placeholder: filled in by the owning workstream
set -euo pipefail
echo "build_udfs: nothing to do yet"
