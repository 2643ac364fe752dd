"""Starting and stopping the helper processes of the demo (and the tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
# Run by the system Python (GStreamer bindings); inside the package so an installed
# (non-editable) edgewatch finds it too.
RTSP_SCRIPT = Path(__file__).resolve().with_name("rtsp_server.py")
RTSP_PACKAGES = (
    "gir1.2-gst-rtsp-server-1.0 python3-gi python3-gst-1.0 "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
)


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def rtsp_server_available() -> str | None:
    """None when GStreamer's RTSP server can run here, else what is missing."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    probe = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0');"
            "from gi.repository import GstRtspServer",
        ],
        capture_output=True,
        timeout=30,
    )
    if probe.returncode != 0:
        return f"GStreamer RTSP server not importable (apt-get install {RTSP_PACKAGES})"
    return None


def start_rtsp_server(
    port: int, mounts: dict[str, Path], log: Path, shared: bool = False, copies: int = 0
) -> subprocess.Popen:
    args = [SYSTEM_PYTHON, str(RTSP_SCRIPT), "--port", str(port)]
    if shared:
        args.append("--shared")
    if copies:
        args += ["--copies", str(copies)]
    for name, path in mounts.items():
        args += ["--mount", f"{name}={path}"]
    return spawn(args, log)


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    fh = log.open("ab")
    return subprocess.Popen(
        args,
        stdout=fh,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )


def edgewatch_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgewatch", *args]


def stop(
    proc: subprocess.Popen | None, timeout: float = 10.0, dump_stacks: bool = False
) -> int | None:
    """SIGTERM, then SIGKILL after ``timeout``; returns the exit code.

    Before the SIGKILL, an ``edgewatch`` child is sent SIGUSR1, on which it writes every
    thread's stack to its log (``faulthandler``), so a process that would not stop says
    where it was.
    """
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        if dump_stacks:
            proc.send_signal(signal.SIGUSR1)
            try:
                return proc.wait(2)
            except subprocess.TimeoutExpired:
                pass
        proc.kill()
        return proc.wait(5)
