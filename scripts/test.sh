#!/usr/bin/env bash
# The test command: set up, lint, and run the whole suite on real parts
# (mosquitto, GStreamer RTSP server, PostgreSQL at 127.0.0.1:5432 when reachable).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=dev,postgres bash scripts/setup.sh
export EDGEWATCH_ASSETS=${EDGEWATCH_ASSETS:-$(cd .. && pwd)/shared/assets}
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -ra "$@"
