#!/usr/bin/env bash
# The main job on a fresh machine: set up, then run the whole pipeline until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=all,postgres bash scripts/setup.sh
export EDGEWATCH_ASSETS=${EDGEWATCH_ASSETS:-$(cd .. && pwd)/shared/assets}
exec .venv/bin/edgewatch demo "$@"
