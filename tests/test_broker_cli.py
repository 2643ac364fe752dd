"""The broker set-up as an operator runs it: ``broker init``, ``edge enrol``, ``broker run``,
``edge revoke``, on mosquitto and on the embedded fallback (same accounts, same grants)."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml

from edgewatch import procs
from edgewatch.broker import free_port
from edgewatch.mqtt import MqttSettings, make_client
from tests.helpers import connect_code, wait_for


def cli(*args: str) -> str:
    out = subprocess.run(
        procs.edgewatch_cmd(*args), capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout


def snippet(text: str) -> MqttSettings:
    """The ``mqtt:`` block the enrol command printed (the lines that are YAML)."""
    lines = text.splitlines()
    start = lines.index("mqtt:")
    block = [lines[start]]
    for x in lines[start + 1 :]:
        if not x.startswith(" "):
            break
        block.append(x)
    return MqttSettings.model_validate(yaml.safe_load("\n".join(block))["mqtt"])


def connected(settings: MqttSettings, client_id: str) -> mqtt.Client:
    c = make_client(settings, client_id, clean_session=True)
    ok = threading.Event()
    c.on_connect = lambda *a: ok.set() if not a[3].is_failure else None
    c.connect(settings.host, settings.port, keepalive=10)
    c.loop_start()
    assert ok.wait(10), f"{client_id} could not connect"
    return c


@pytest.mark.e2e
@pytest.mark.parametrize("embedded", [False, True], ids=["mosquitto", "embedded"])
def test_init_enrol_run_revoke(tmp_path: Path, embedded: bool) -> None:
    folder, port = tmp_path / "broker", free_port()
    url = f"mqtts://127.0.0.1:{port}"
    init = cli("broker", "init", "--dir", str(folder), "--port", str(port))
    hub = snippet(init)
    assert hub.username == "hub" and hub.password is not None
    edge = snippet(cli("edge", "enrol", "e1", "--site", "s1", "--dir", str(folder), "--url", url))
    other = snippet(cli("edge", "enrol", "e2", "--site", "s1", "--dir", str(folder), "--url", url))
    # no secret is stored in clear anywhere in the folder
    for f in folder.iterdir():
        if f.is_file():
            assert edge.password.get_secret_value() not in f.read_text(errors="replace")  # type: ignore[union-attr]
    args = ["broker", "run", "--dir", str(folder), "--port", str(port)]
    proc = procs.spawn(procs.edgewatch_cmd(*args, *(["--embedded"] if embedded else [])),
                       tmp_path / "broker.log")  # fmt: skip
    try:
        assert procs.wait_port(port, timeout=15), (tmp_path / "broker.log").read_text()
        assert connect_code(MqttSettings(url=url, tls={"ca_file": hub.tls.ca_file}), "x") != 0  # type: ignore[union-attr]
        assert connect_code(MqttSettings(url=f"mqtt://127.0.0.1:{port}"), "x") != 0
        wrong = edge.model_copy(update={"password": other.password})
        assert connect_code(wrong, "e1") != 0
        got: list[str] = []
        sub = connected(hub, "hub")
        sub.on_message = lambda c, u, m: got.append(m.topic)
        sub.subscribe("edgewatch/v1/#", qos=1)
        time.sleep(0.5)
        pub = connected(edge, "e1")
        for topic in (
            "edgewatch/v1/s1/e2/status",  # another edge's topic
            "edgewatch/v1/teams/rangers/incidents",  # only the hub writes team topics
            "edgewatch/v1/config/s1/e1/edge",  # only the hub writes configs
            "edgewatch/v1/s1/e1/status",  # its own: allowed, and sent last
        ):
            pub.publish(topic, b"online", qos=1).wait_for_publish(5)
        wait_for(lambda: "edgewatch/v1/s1/e1/status" in got, 10, what="the edge's own message")
        assert got == ["edgewatch/v1/s1/e1/status"]
        pub.disconnect()
        pub.loop_stop()

        out = cli("edge", "revoke", "e1", "--dir", str(folder))
        assert "revoked e1" in out
        if not embedded:
            assert "told to reload" in out  # the pid file let it SIGHUP mosquitto
        wait_for(lambda: connect_code(edge, "e1") not in (0, -1), 10, what="e1 refused")
        assert connect_code(other, "e2") == 0  # the other edge is untouched
        sub.disconnect()
        sub.loop_stop()
    finally:
        procs.stop(proc)
