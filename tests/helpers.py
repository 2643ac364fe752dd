"""Real parts for the tests: mosquitto, GStreamer RTSP server, hub and edge processes."""

from __future__ import annotations

import getpass
import json
import shutil
import signal
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml

from edgewatch import procs
from edgewatch.broker import free_port
from edgewatch.brokerauth import BrokerDir, Role
from edgewatch.mqtt import MqttSettings, make_client


def wait_for(pred: Callable[[], Any], timeout: float, interval: float = 0.2, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or pred}; last={last!r}")


def read_alert_stream(
    resp: Any, on_hello: Callable[[], Any], on_alert: Callable[[dict], Any]
) -> None:
    """Read a hub's live stream (``/api/v1/alerts/stream``, Server-Sent Events) until it
    ends: ``on_hello()`` at its hello, ``on_alert(doc)`` for each alert."""
    event = None
    for raw in resp:
        line = raw.decode().strip()
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
            if event == "hello":
                on_hello()
        elif line.startswith("data:") and event == "alert":
            on_alert(json.loads(line[5:]))


class Mosquitto:
    """A private mosquitto on a free port, secured as the documented deployment is.

    TLS only (a CA made per session), no anonymous clients, one account per hub, edge,
    team and test client with the ACLs of ``edgewatch.brokerauth``, the client id bound
    to the account, and persistence that tests can stop and start.
    """

    def __init__(self, workdir: Path, persistence: bool = True) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto binary not found: apt-get install mosquitto")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        self.auth = BrokerDir(workdir / "auth")
        self.auth.init(["127.0.0.1", "localhost"])
        self._passwords: dict[str, str] = {}
        text = self.auth.mosquitto_conf(
            self.port,
            data_dir=workdir / "data",
            log_file=workdir / "mosquitto.log",
            # mosquitto started as root drops to user "mosquitto", which cannot read
            # pytest's private temp dirs: persistence and the log would fail silently.
            user=getpass.getuser(),
        ).replace("autosave_interval 5", "autosave_interval 1")
        if not persistence:
            text = text.replace("persistence true", "persistence false")
        self.conf.write_text(text)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.port}"

    def mqtt(
        self,
        username: str,
        role: Role = "edge",
        *,
        site: str | None = None,
        read: list[str] | None = None,
        write: list[str] | None = None,
    ) -> dict[str, Any]:
        """The ``mqtt:`` config of ``username`` (an account made, or re-made, as needed)."""
        have = self.auth.accounts().get(username)
        same = have is not None and (have.role, have.site, have.read, have.write) == (
            role,
            site,
            list(read or []),
            list(write or []),
        )
        if not same or username not in self._passwords:
            self._passwords[username] = self.auth.add(
                username, role, site=site, read=read, write=write, replace=True
            )
            self.reload(username)
        return self.auth.client_settings(
            username, self._passwords[username], "127.0.0.1", self.port
        )

    def settings(self, username: str, role: Role = "edge", **kw: Any) -> MqttSettings:
        return MqttSettings.model_validate(self.mqtt(username, role, **kw))

    def client(
        self, username: str, role: Role = "edge", *, connect: bool = True, **kw: Any
    ) -> mqtt.Client:
        """A paho client logged in as ``username``, connected, its loop running."""
        cfg = self.settings(username, role, **kw)
        c = make_client(cfg, username, clean_session=True)
        if connect:
            connected = threading.Event()
            c.on_connect = lambda *a: connected.set() if not a[3].is_failure else None
            c.connect(cfg.host, cfg.port, keepalive=30)
            c.loop_start()
            if not connected.wait(10):
                c.loop_stop()
                raise RuntimeError(f"{username} could not connect to the test broker")
        return c

    def reload(self, username: str | None = None) -> None:
        """SIGHUP: mosquitto re-reads passwd and acl; wait until ``username`` logs in."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGHUP)
        if username is None:
            time.sleep(0.3)
            return
        cfg = MqttSettings.model_validate(
            self.auth.client_settings(username, self._passwords[username], "127.0.0.1", self.port)
        )
        wait_for(lambda: connect_code(cfg) == 0, 10, what=f"broker accepting {username}")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not procs.wait_port(self.port, timeout=10):
            raise RuntimeError(f"mosquitto did not start on {self.port}")
        if not (self.workdir / "mosquitto.log").exists():
            raise RuntimeError("mosquitto cannot write its log; persistence would be lost too")

    def stop(self) -> None:
        procs.stop(self.proc)
        self.proc = None


def connect_code(settings: MqttSettings, client_id: str = "probe", timeout: float = 5) -> int:
    """The broker's CONNACK code for these settings (0 accepted); -1 on no answer."""
    result: list[int] = []
    done = threading.Event()
    c = make_client(settings, client_id, clean_session=True)

    def on_connect(client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        result.append(int(reason_code.value))
        done.set()

    c.on_connect = on_connect
    c.on_connect_fail = lambda *a: done.set()
    try:
        c.connect(settings.host, settings.port, keepalive=10)
    except (OSError, ssl.SSLError):
        return -1
    c.loop_start()
    done.wait(timeout)
    c.disconnect()
    c.loop_stop()
    return result[0] if result else -1


class RtspServer:
    def __init__(self, workdir: Path, mounts: dict[str, Path]) -> None:
        missing = procs.rtsp_server_available()
        if missing:
            raise RuntimeError(missing)
        self.workdir = workdir
        self.mounts = mounts
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def url(self, mount: str, userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"rtsp://{at}127.0.0.1:{self.port}/{mount}"

    def start(self) -> None:
        self.proc = procs.start_rtsp_server(self.port, self.mounts, self.workdir / "rtsp.log")
        if not procs.wait_port(self.port, timeout=15):
            raise RuntimeError(f"RTSP server did not start; see {self.workdir / 'rtsp.log'}")

    def stop(self) -> None:
        procs.stop(self.proc)
        self.proc = None


class Process:
    """An ``edgewatch`` subcommand run as a child process, with its log kept."""

    def __init__(self, workdir: Path, name: str, args: list[str], config: dict) -> None:
        self.workdir = workdir
        self.name = name
        self.config_path = workdir / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.args = args + ["-c", str(self.config_path)]
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = procs.spawn(procs.edgewatch_cmd(*self.args), self.log)

    def stop(self) -> int | None:
        code = procs.stop(self.proc, timeout=15, dump_stacks=True)
        self.proc = None
        if code not in (0, None):
            # shown by pytest with a failing test: where each thread was when it was killed
            text = self.log_text()
            first = text.find("hread 0x")  # "Thread 0x..." or "Current thread 0x..."
            start = text.rfind("\n", 0, first) + 1 if first >= 0 else max(0, len(text) - 4000)
            print(f"--- {self.name} exited {code}; its log from the stack dump ---")
            print(text[start:])
        return code

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


ADMIN = ("admin", "admin-password-for-tests")


def ensure_user(db_url: str, username: str, role: str, password: str) -> None:
    """Create (or reset) an account directly in the hub's database."""
    from sqlalchemy import select

    from central import auth
    from central.storage.db import make_engine, migrate, session_factory
    from central.storage.models import UserRow

    engine = make_engine(db_url)
    try:
        migrate(engine)
        with session_factory(engine).begin() as session:
            row = session.scalar(select(UserRow).where(UserRow.username == username))
            if row is None:
                auth.add_user(session, username, role, password)
            else:
                auth.set_password(session, username, password)
                row.role = role
    finally:
        engine.dispose()


def bearer_token(base: str, username: str, password: str) -> str:
    """OAuth2 password flow, as an API client does it."""
    data = urllib.parse.urlencode({"username": username, "password": password}).encode()
    req = urllib.request.Request(f"{base}/api/v1/auth/token", data=data, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["access_token"]


class Hub(Process):
    def __init__(
        self,
        workdir: Path,
        db_url: str,
        broker: Mosquitto | dict[str, Any],
        client_id: str,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.port = free_port()
        extra = dict(extra or {})
        if "incidents" in extra:  # links in notifications point at this hub
            extra["incidents"] = {
                "public_url": f"http://127.0.0.1:{self.port}",
                **extra["incidents"],
            }
        super().__init__(
            workdir,
            "hub",
            ["hub", "run"],
            {
                "database_url": db_url,
                # the hub's own account; its client id is its account name
                "mqtt": broker.mqtt(client_id, "hub") if isinstance(broker, Mosquitto) else broker,
                "mqtt_client_id": client_id,
                "http": {"host": "127.0.0.1", "port": self.port},
                **(extra or {}),
            },
        )
        self.db_url = db_url
        self.token: str | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _auth(self) -> dict[str, str]:
        if self.token is None:
            ensure_user(self.db_url, *ADMIN[:1], "admin", ADMIN[1])
            self.token = bearer_token(self.base, *ADMIN)
        return {"Authorization": f"Bearer {self.token}"}

    def put(self, path: str, body: dict) -> Any:
        """PUT as the admin; an error status raises with the hub's answer."""
        code, doc = self.post(path, body, method="PUT")
        if code >= 400:
            raise AssertionError(f"PUT {path}: {code} {doc}")
        return doc

    def post(
        self, path: str, body: dict | None = None, auth: bool = True, method: str = "POST"
    ) -> tuple[int, Any]:
        data = json.dumps(body or {}).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **(self._auth() if auth else {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def start(self) -> None:
        super().start()
        if not procs.wait_port(self.port, timeout=30):
            raise RuntimeError(f"hub did not start:\n{self.log_text()[-3000:]}")
        wait_for(lambda: self.get("/healthz")["mqtt"], 15, what="hub connected to broker")

    def get(self, path: str, auth: bool = True) -> Any:
        headers = self._auth() if auth and path != "/healthz" else {}
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers)
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
            return json.loads(body) if r.headers.get_content_type() == "application/json" else body

    def all_events(self, **params: str) -> list[dict]:
        items: list[dict] = []
        offset = 0
        while True:
            query = "&".join(
                f"{k}={v}" for k, v in {**params, "limit": "500", "offset": str(offset)}.items()
            )
            page = self.get(f"/api/v1/events?{query}")
            items += page["items"]
            offset += len(page["items"])
            if offset >= page["total"] or not page["items"]:
                return items

    def metric(self, name: str, labels: str = "") -> float:
        text = self.get("/metrics").decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#") and labels in line:
                metric_name = line.split("{")[0].split(" ")[0]
                if metric_name in (name, name + "_total"):
                    total += float(line.rsplit(" ", 1)[1])
        return total
