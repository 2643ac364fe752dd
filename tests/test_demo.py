"""``edgewatch demo``: the main job, as a user runs it, until SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from edgewatch import procs
from edgewatch.broker import free_port
from tests.helpers import wait_for


@pytest.mark.e2e
@pytest.mark.parametrize("rtsp", [True, False], ids=["rtsp", "file-fallback"])
def test_demo_shows_an_event_with_snapshot_then_stops_cleanly(
    tmp_path: Path, assets: Path, rtsp: bool
) -> None:
    http = free_port()
    args = [
        "demo",
        "--assets",
        str(assets),
        "--workdir",
        str(tmp_path / "demo"),
        "--http-port",
        str(http),
        "--mqtt-port",
        str(free_port()),
    ]
    proc = subprocess.Popen(
        procs.edgewatch_cmd(*args, *([] if rtsp else ["--no-rtsp"])),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    t0 = time.monotonic()

    def events() -> list[dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/api/v1/events", timeout=5) as r:
                return [e for e in json.load(r)["items"] if e["snapshot_url"]]
        except OSError:
            return []

    try:
        found = wait_for(events, 60, interval=1.0, what="a demo event with a snapshot")
        took = time.monotonic() - t0
        url = f"http://127.0.0.1:{http}{found[0]['snapshot_url']}"
        with urllib.request.urlopen(url, timeout=5) as r:
            assert r.read(3) == b"\xff\xd8\xff"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert f"events:  http://127.0.0.1:{http}/api/v1/events" in out
    assert ("camera:  rtsp://" in out) == rtsp
    for name in ("edge worker", "hub", "broker"):
        assert f"{name} stopped" in out
    print(f"\ndemo ({'rtsp' if rtsp else 'file'}): first event with snapshot after {took:.1f} s")
