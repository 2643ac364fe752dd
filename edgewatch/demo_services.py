"""The demo's stand-ins for what a city has and a laptop does not, run inside the demo:

- :class:`RangerWebhook`: the demo ranger team's webhook endpoint (a loopback
  ``http.server``). It checks the hub's HMAC signature as a real receiver must, prints each
  notification (an incident opened, updated, escalated) and appends it to a JSON-lines
  file, so a user sees what the rangers' system would get.
- :class:`SignalController`: the junction's signal controller, cycling red, green and
  amber and publishing its state (``{"state": ..., "time": ...}``, retained, as controllers
  do) on its own topic with its own broker account (role ``signal``: it may write only
  ``edgewatch/v1/signals/<account>/...``). It is simulated, and says so: no real controller
  is connected.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from edgewatch.mqtt import MqttSettings, make_client


class RangerWebhook:
    """A webhook receiver on 127.0.0.1 (a free port); ``received`` holds the valid bodies."""

    def __init__(self, secret: str, log_file: Path, say: Callable[[str], None]) -> None:
        self.secret = secret.encode()
        self.log_file = log_file
        self.say = say
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = outer._valid(self.headers, body)
                self.send_response(200 if ok else 401)
                self.end_headers()
                if ok:
                    outer._got(self.path, body)

            def log_message(self, *args: object) -> None:  # quiet: the demo prints its own
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _valid(self, headers: Any, body: bytes) -> bool:
        ts = headers.get("X-Edgewatch-Timestamp") or ""
        sig = headers.get("X-Edgewatch-Signature") or ""
        mac = hmac.new(self.secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(sig, f"sha256={mac}")

    def _got(self, path: str, body: bytes) -> None:
        try:
            doc = json.loads(body)
        except ValueError:
            return
        with self.lock:
            self.received.append(doc)
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            with self.log_file.open("a") as f:
                f.write(json.dumps({"path": path, "body": doc}) + "\n")
        self.say(
            f"webhook to team {doc.get('team', path.strip('/'))}: {doc.get('reason', '?')} "
            f"of {doc.get('kind', '?')} incident {doc.get('incident_id', '?')} "
            f"(escalation level {doc.get('escalation_level', 0)}, cameras "
            f"{', '.join(sorted({str(a.get('camera_id')) for a in doc.get('alerts') or []}))})"
        )
        if doc.get("ack_url") and doc.get("state") == "open":
            self.say(f"  acknowledge it (stops the escalation): curl -X POST '{doc['ack_url']}'")


# red 20 s, green 16 s, amber 4 s: a short cycle so a red light comes often in a demo
CYCLE = (("red", 20.0), ("green", 16.0), ("amber", 4.0))


class SignalController(threading.Thread):
    """Publishes the simulated controller's state changes, retained, until stopped."""

    def __init__(self, settings: MqttSettings, account: str, topic: str) -> None:
        super().__init__(daemon=True, name="demo-signal")
        self.settings = settings
        self.account = account
        self.topic = topic
        self.halt = threading.Event()
        self.published = 0

    def run(self) -> None:
        client = make_client(self.settings, self.account, clean_session=True)
        client.connect_async(self.settings.host, self.settings.port, keepalive=30)
        client.loop_start()
        try:
            while not self.halt.is_set():
                for state, seconds in CYCLE:
                    since = datetime.now(UTC).isoformat()
                    doc = {"state": state, "time": since, "simulated": True}
                    client.publish(self.topic, json.dumps(doc), qos=1, retain=True)
                    self.published += 1
                    if self.halt.wait(seconds):
                        break
        finally:
            client.publish(self.topic, b"", qos=1, retain=True)  # no stale red after the demo
            time.sleep(0.3)
            client.loop_stop()
            client.disconnect()

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=5)
