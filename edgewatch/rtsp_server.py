#!/usr/bin/python3
"""A small RTSP server for tests and the demo, on GStreamer's gst-rtsp-server.

It must run under Debian's ``/usr/bin/python3`` (python3-gi and the GStreamer
introspection data are Debian packages, not wheels):

    /usr/bin/python3 edgewatch/rtsp_server.py --port 8554 --mount cam1=/path/video.mp4

Each mount serves an H.264 MP4 or MPEG-TS (``.ts``) file (``edgewatch`` helpers make them)
to every client from its start, paced in real time, over RTSP/TCP or UDP.
At the end of the file the stream ends (as a camera that drops the session);
make the file as long as the test needs (``edge.ingest.media.make_test_video``).
Prints ``READY <port>`` on stdout once it listens. Stops on SIGTERM or SIGINT.

Debian packages: gir1.2-gst-rtsp-server-1.0 python3-gi python3-gst-1.0
gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def _launch_line(path: str) -> str:
    quoted = path.replace('"', '\\"')
    demux = "tsdemux" if path.endswith(".ts") else "qtdemux"
    return (
        f'( filesrc location="{quoted}" ! {demux} ! h264parse config-interval=-1 '
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def _factory(path: str, shared: bool = False) -> GstRtspServer.RTSPMediaFactory:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(_launch_line(path))
    # Not shared: every client gets the file from its start (tests). Shared: clients join
    # one running stream, mid-GOP, as with a real camera (benchmarks; one pipeline per mount).
    factory.set_shared(shared)
    return factory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--mount",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="serve FILE (H.264 MP4 or .ts) at rtsp://HOST:PORT/NAME; repeatable",
    )
    parser.add_argument(
        "--shared", action="store_true", help="clients of a mount share one running stream"
    )
    parser.add_argument(
        "--copies",
        type=int,
        default=0,
        metavar="N",
        help="also serve each mount as NAME.0 .. NAME.N-1 (fresh shared streams on demand)",
    )
    args = parser.parse_args()
    if not args.mount:
        parser.error("at least one --mount NAME=FILE is needed")

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for spec in args.mount:
        name, _, path = spec.partition("=")
        if not path or not os.path.isfile(path):
            print(f"rtsp_server: no such file for mount {name!r}: {path!r}", file=sys.stderr)
            return 2
        names = [name.strip("/")] + [f"{name.strip('/')}.{j}" for j in range(args.copies)]
        for mount in names:
            mounts.add_factory("/" + mount, _factory(os.path.abspath(path), args.shared))

    if server.attach(None) == 0:
        print(f"rtsp_server: cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
