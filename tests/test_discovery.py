"""ONVIF discovery on real parts: WS-Discovery over multicast, SOAP over HTTP, the CLI.

A WSDiscovery publisher in this process announces a camera whose device service is a small
HTTP server started here. The server answers GetSystemDateAndTime, GetCapabilities,
GetProfiles and GetStreamUri, and checks every WS-Security UsernameToken as a camera does:
the PasswordDigest, a fresh nonce, and a Created time within 5 minutes of *its* clock, which
runs 2 hours ahead (so a client that does not take the camera's time is refused).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from wsdiscovery.publishing import ThreadedWSPublishing
from wsdiscovery.qname import QName
from wsdiscovery.scope import Scope
from wsdiscovery.util import _getNetworkAddrs

from edge import discovery
from edge.config import CameraConfig, EdgeConfig
from edge.discovery import NS_DEVICE, NS_MEDIA, NS_SCHEMA, NS_SOAP12, NS_WSSE, NS_WSU
from edgewatch.configfile import apply_env_overrides

ROOT = Path(__file__).resolve().parents[1]
USER, PASSWORD = "admin", "s3cret-Pa55"
CAMERA_SKEW_S = 2 * 3600.0
MAX_CLOCK_DIFF_S = 300.0


def _envelope(body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<env:Envelope xmlns:env="{NS_SOAP12}" xmlns:tds="{NS_DEVICE}" xmlns:trt="{NS_MEDIA}"'
        f' xmlns:tt="{NS_SCHEMA}" xmlns:ter="http://www.onvif.org/ver10/error">'
        f"<env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


NOT_AUTHORIZED = _envelope(
    "<env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode>"
    "<env:Value>ter:NotAuthorized</env:Value></env:Subcode></env:Code>"
    '<env:Reason><env:Text xml:lang="en">Sender not Authorized</env:Text></env:Reason>'
    "</env:Fault>"
)
PROFILES = [
    ("Profile_1", "mainStream", 1920, 1080, "/Streaming/Channels/101"),
    ("Profile_2", "subStream", 640, 360, "/Streaming/Channels/102"),
]


@dataclass
class FakeCamera:
    """The camera's state: what it accepts and what it saw."""

    port: int = 0
    auth_fail_status: int = 400  # 400 + ter:NotAuthorized (ONVIF), or 401 as some cameras do
    nonces: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (operation, auth verdict)

    def clock(self) -> float:
        return time.time() + CAMERA_SKEW_S

    def check_token(self, root: ET.Element) -> str:
        token = root.find(f".//{{{NS_WSSE}}}UsernameToken")
        if token is None:
            return "no token"
        pw = token.find(f"{{{NS_WSSE}}}Password")
        nonce_el = token.find(f"{{{NS_WSSE}}}Nonce")
        created_el = token.find(f"{{{NS_WSU}}}Created")
        if pw is None or nonce_el is None or created_el is None:
            return "incomplete token"
        if not (pw.get("Type") or "").endswith("#PasswordDigest"):
            return "not a digest"
        if token.findtext(f"{{{NS_WSSE}}}Username") != USER:
            return "unknown user"
        created = created_el.text or ""
        when = dt.datetime.fromisoformat(created).timestamp()
        if abs(when - self.clock()) > MAX_CLOCK_DIFF_S:
            return "created out of the camera's clock window"
        if nonce_el.text in self.nonces:
            return "replayed nonce"
        self.nonces.add(nonce_el.text or "")
        nonce = base64.b64decode(nonce_el.text or "")
        expected = base64.b64encode(
            hashlib.sha1(nonce + created.encode() + PASSWORD.encode()).digest()
        ).decode()
        return "ok" if pw.text == expected else "wrong digest"

    def answer(self, path: str, root: ET.Element) -> tuple[int, bytes]:
        body = root.find(f"{{{NS_SOAP12}}}Body")
        op = body[0].tag.rsplit("}", 1)[-1] if body is not None and len(body) else "?"
        if op == "GetSystemDateAndTime":  # no credentials needed, as ONVIF says
            self.calls.append((op, "-"))
            t = time.gmtime(self.clock())
            return 200, _envelope(
                "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
                "<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false"
                "</tt:DaylightSavings><tt:UTCDateTime>"
                f"<tt:Time><tt:Hour>{t.tm_hour}</tt:Hour><tt:Minute>{t.tm_min}</tt:Minute>"
                f"<tt:Second>{t.tm_sec}</tt:Second></tt:Time>"
                f"<tt:Date><tt:Year>{t.tm_year}</tt:Year><tt:Month>{t.tm_mon}</tt:Month>"
                f"<tt:Day>{t.tm_mday}</tt:Day></tt:Date>"
                "</tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
            )
        verdict = self.check_token(root)
        self.calls.append((op, verdict))
        if verdict != "ok":
            if self.auth_fail_status == 401:
                return 401, b""
            return 400, NOT_AUTHORIZED
        base = f"http://127.0.0.1:{self.port}"
        if path == "/onvif/device_service" and op == "GetCapabilities":
            return 200, _envelope(
                "<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Media>"
                f"<tt:XAddr>{base}/onvif/Media</tt:XAddr>"
                "<tt:StreamingCapabilities><tt:RTP_TCP>true</tt:RTP_TCP>"
                "</tt:StreamingCapabilities></tt:Media></tds:Capabilities>"
                "</tds:GetCapabilitiesResponse>"
            )
        if path == "/onvif/Media" and op == "GetProfiles":
            profiles = "".join(
                f'<trt:Profiles token="{tok}" fixed="true"><tt:Name>{name}</tt:Name>'
                '<tt:VideoEncoderConfiguration token="venc"><tt:Name>v</tt:Name>'
                "<tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding>"
                f"<tt:Resolution><tt:Width>{w}</tt:Width><tt:Height>{h}</tt:Height>"
                "</tt:Resolution></tt:VideoEncoderConfiguration></trt:Profiles>"
                for tok, name, w, h, _ in PROFILES
            )
            return 200, _envelope(f"<trt:GetProfilesResponse>{profiles}</trt:GetProfilesResponse>")
        if path == "/onvif/Media" and op == "GetStreamUri":
            token = root.findtext(f".//{{{NS_MEDIA}}}ProfileToken")
            setup = root.find(f".//{{{NS_MEDIA}}}StreamSetup")
            assert setup is not None
            assert setup.findtext(f"{{{NS_SCHEMA}}}Stream") == "RTP-Unicast"
            assert setup.findtext(f".//{{{NS_SCHEMA}}}Protocol") == "RTSP"
            paths = {tok: p for tok, _, _, _, p in PROFILES}
            # Some cameras put the credentials in the URI: the client must strip them.
            userinfo = f"{USER}:{PASSWORD}@" if token == "Profile_2" else ""
            return 200, _envelope(
                "<trt:GetStreamUriResponse><trt:MediaUri>"
                f"<tt:Uri>rtsp://{userinfo}127.0.0.1:8554{paths[token or '']}</tt:Uri>"
                "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
                "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot>"
                "<tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>"
            )
        return 400, _envelope(
            "<env:Fault><env:Code><env:Value>env:Receiver</env:Value><env:Subcode>"
            "<env:Value>ter:ActionNotSupported</env:Value></env:Subcode></env:Code>"
            "<env:Reason><env:Text>no such action</env:Text></env:Reason></env:Fault>"
        )


def _serve(camera: FakeCamera) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            assert self.headers["Content-Type"].startswith("application/soap+xml")
            status, body = camera.answer(self.path, ET.fromstring(data))
            self.send_response(status)
            self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    camera.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Publisher(discovery.IPv4Only, ThreadedWSPublishing):
    pass


@dataclass
class Announced:
    camera: FakeCamera
    xaddr: str
    tag: str


@pytest.fixture(scope="module")
def announced() -> Iterator[Announced]:
    if not _getNetworkAddrs(socket.AF_INET):
        pytest.skip("no non-loopback IPv4 interface to send WS-Discovery multicast on")
    camera = FakeCamera()
    server = _serve(camera)
    xaddr = f"http://127.0.0.1:{camera.port}/onvif/device_service"
    tag = uuid.uuid4().hex[:8]
    pub = Publisher()
    pub.start()
    pub.publishService(
        types=[QName(*discovery.NVT_TYPE)],
        scopes=[
            Scope("onvif://www.onvif.org/type/video_encoder"),
            Scope(f"onvif://www.onvif.org/name/Gate%20Cam%20{tag}"),
            Scope("onvif://www.onvif.org/hardware/EW-CAM-1"),
            Scope("onvif://www.onvif.org/location/country/vietnam"),
            Scope("onvif://www.onvif.org/location/city/hue"),
        ],
        xAddrs=[xaddr],
    )
    yield Announced(camera, xaddr, tag)
    pub.stop()  # ThreadedNetworking.stop: ends its threads
    server.shutdown()
    server.server_close()


def test_discover_finds_the_announced_camera_with_its_scopes(announced: Announced) -> None:
    devices = discovery.discover(timeout_s=2.5)
    ours = [d for d in devices if announced.xaddr in d.xaddrs]
    assert len(ours) == 1, devices
    dev = ours[0]
    assert dev.url == announced.xaddr
    assert dev.host == "127.0.0.1"
    assert dev.name == f"Gate Cam {announced.tag}"
    assert dev.hardware == "EW-CAM-1"
    assert dev.location == "country/vietnam, city/hue"
    assert dev.epr.startswith("urn:uuid:")


def test_stream_uris_with_the_right_password(announced: Announced) -> None:
    profiles = discovery.stream_uris(announced.xaddr, USER, PASSWORD, timeout_s=5)
    assert [(p.token, p.name, p.resolution, p.encoding) for p in profiles] == [
        ("Profile_1", "mainStream", "1920x1080", "H264"),
        ("Profile_2", "subStream", "640x360", "H264"),
    ]
    assert [p.uri for p in profiles] == [
        "rtsp://127.0.0.1:8554/Streaming/Channels/101",
        "rtsp://127.0.0.1:8554/Streaming/Channels/102",  # the camera's credentials stripped
    ]
    # every authenticated call passed the camera's digest, nonce and clock checks
    verdicts = announced.camera.calls[-5:]
    assert [op for op, _ in verdicts] == [
        "GetSystemDateAndTime",
        "GetCapabilities",
        "GetProfiles",
        "GetStreamUri",
        "GetStreamUri",
    ]
    assert {v for _, v in verdicts[1:]} == {"ok"}


@pytest.mark.parametrize("status", [400, 401])
def test_a_wrong_password_is_a_clear_not_authorized(announced: Announced, status: int) -> None:
    announced.camera.auth_fail_status = status
    try:
        with pytest.raises(discovery.NotAuthorized, match="user name or password refused"):
            discovery.stream_uris(announced.xaddr, USER, "wrong", timeout_s=5)
    finally:
        announced.camera.auth_fail_status = 400
    assert announced.camera.calls[-1] == ("GetCapabilities", "wrong digest")


def test_unreachable_and_not_onvif_are_told_apart() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(discovery.Unreachable, match="cannot reach"):
        discovery.stream_uris(f"127.0.0.1:{closed}", USER, PASSWORD, timeout_s=2)

    class Web(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = b"<html><body>router login</body></html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Web)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        with pytest.raises(discovery.NotOnvif, match="not a SOAP envelope"):
            discovery.stream_uris(f"127.0.0.1:{web.server_address[1]}", USER, PASSWORD)
    finally:
        web.shutdown()
        web.server_close()


def test_answers_with_a_dtd_are_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>'
    )
    with pytest.raises(ValueError):
        discovery.parse_xml(bomb)
    assert discovery.parse_xml(b"<x>1</x>").text == "1"


def test_cli_lists_the_camera_and_its_streams_without_the_password(
    announced: Announced,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "edgewatch.cli", "edge", "discover", "--timeout", "3"]
        + ["--user", USER, "--password-stdin"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env=env,
    )
    out = proc.stdout
    assert PASSWORD not in out + proc.stderr
    assert f"Gate Cam {announced.tag}" in out, out + proc.stderr
    assert announced.xaddr in out and "EW-CAM-1" in out
    assert "rtsp://127.0.0.1:8554/Streaming/Channels/101" in out
    assert "1920x1080" in out and "Profile_2" in out
    assert f"  - id: gate-cam-{announced.tag}" in out
    assert "    url: rtsp://127.0.0.1:8554/Streaming/Channels/101" in out
    assert "admin:${EDGEWATCH_CAMERA_PASSWORD}@127.0.0.1:8554/Streaming/Channels/101" in out
    assert proc.returncode == 0 or "error:" in out, out + proc.stderr  # other cameras may fail
    assert "Traceback" not in proc.stderr, proc.stderr

    # The snippet is a valid cameras: list, and the env line (the README's override scheme)
    # puts the credentials back in once the password variable is set.
    lines = out.splitlines()
    start = lines.index("cameras:")
    block = []
    for line in lines[start:]:
        if line.startswith("#"):
            break
        block.append(line)
    cameras = yaml.safe_load("\n".join(block))["cameras"]
    ours = [c for c in cameras if c["id"] == f"gate-cam-{announced.tag}"]
    assert len(ours) == 1
    CameraConfig.model_validate(ours[0])
    index = cameras.index(ours[0])
    export = next(x for x in lines if x.startswith(f"export EDGEWATCH_CAMERAS__{index}__URL="))
    name, _, value = export.removeprefix("export ").partition("=")
    value = value.strip('"').replace("${EDGEWATCH_CAMERA_PASSWORD}", PASSWORD)
    cfg = apply_env_overrides({"cameras": cameras}, EdgeConfig, {name: value})
    assert cfg["cameras"][index]["url"] == (
        f"rtsp://{USER}:{PASSWORD}@127.0.0.1:8554/Streaming/Channels/101"
    )


def test_without_the_package_the_cli_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgewatch.cli import main

    monkeypatch.setitem(sys.modules, "wsdiscovery.discovery", None)  # import -> ImportError
    assert main(["edge", "discover", "--timeout", "0.1"]) == 1
    assert "pip install 'edgewatch[discovery]'" in capsys.readouterr().err
