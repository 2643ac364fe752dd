"""The in-process hub the hub-side tests share: a TestClient on ``create_app`` with its
users, the hub's MQTT consumer on a fresh hub account, and a logged-in MQTT peer that
records what the hub sends (retained config topics) and can publish as an edge."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from central.app import create_app
from central.config import HubConfig
from edgewatch import contract
from tests.helpers import Mosquitto, ensure_user, wait_for

M = TypeVar("M", bound=BaseModel)


class Peer:
    """A logged-in paho client that records what it is sent (topic, payload, retained)."""

    def __init__(self, client: mqtt.Client) -> None:
        self.client = client
        self.got: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subacks: dict[int, Any] = {}
        client.on_message = self._message
        client.on_subscribe = lambda c, u, mid, codes, p: self._subacks.__setitem__(mid, codes)

    def _message(self, client: mqtt.Client, userdata: Any, m: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.got.append((m.topic, m.payload, bool(m.retain)))

    def sub(self, topic: str) -> None:
        _, mid = self.client.subscribe(topic, qos=1)
        wait_for(lambda: self._subacks.get(mid), 10, what=f"SUBACK for {topic}")

    def messages(self, topic: str, model: type[M]) -> list[M]:
        """Every message received on ``topic``, parsed as strictly as the edge parses it."""
        with self._lock:
            got = [p for t, p, _ in self.got if t == topic]
        return [model.model_validate(contract.loads(p)) for p in got]

    def topics(self) -> list[str]:
        with self._lock:
            return [t for t, _, _ in self.got]

    def pub(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def bearer(client: TestClient, user: str, password: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": user, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def live_cfg(broker: Mosquitto, db_url: str, prefix: str) -> HubConfig:
    """A hub config whose consumer logs in on its own, fresh hub account."""
    hub_id = f"{prefix}-{uuid.uuid4().hex[:6]}"
    return HubConfig(database_url=db_url, mqtt=broker.mqtt(hub_id, "hub"), mqtt_client_id=hub_id)


@contextmanager
def hub_app(
    cfg: HubConfig, consume: bool, users: dict[str, tuple[str, str]]
) -> Iterator[tuple[TestClient, FastAPI]]:
    """The hub's app running (lifespan started) with ``users`` (name -> (role, password))."""
    for user, (role, password) in users.items():
        ensure_user(cfg.database_url, user, role, password)
    app = create_app(cfg, consume=consume)
    with TestClient(app) as client:
        yield client, app
