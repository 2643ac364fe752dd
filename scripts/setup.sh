#!/usr/bin/env bash
# Set-up shared by the demo and the tests: system packages (when root and missing) and a
# virtualenv in .venv with edgewatch installed in editable mode. Idempotent.
#   EXTRAS=dev,postgres bash scripts/setup.sh   (default: all,postgres; an edge box: edge,plates)
set -euo pipefail
cd "$(dirname "$0")/.."

# nginx + wrk: the public feed's cache in front of the hubs (tests/test_nginx.py,
# scripts/bench_feed.py); the tests run their own nginx, never the system service.
SYSTEM_PACKAGES=(mosquitto gir1.2-gst-rtsp-server-1.0 python3-gi python3-gst-1.0
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad chromium nginx wrk)
missing=()
for p in "${SYSTEM_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages (install them as root): ${missing[*]}" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>/dev/null || true
.venv/bin/python -m pip install -q -e ".[${EXTRAS:-all,postgres}]"
case ",${EXTRAS:-all,postgres}," in
  *,dev,*|*,plates,*)
    # plate OCR; --no-deps: it requires opencv-python, which clobbers the headless build
    .venv/bin/python -m pip install -q --no-deps "rapidocr-onnxruntime==1.4.4" ;;
esac
