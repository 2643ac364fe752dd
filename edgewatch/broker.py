"""Running the broker: mosquitto on a broker folder, or an embedded amqtt fallback.

Production and the demo run mosquitto with the accounts, ACLs and TLS of a broker folder
(``edgewatch.brokerauth``). Where no mosquitto can run, ``edgewatch broker run
--embedded`` serves the same folder with amqtt: the same TLS certificate, the same
password file and the same per-account topic grants, and a client id that must equal the
account name (mosquitto replaces it; amqtt cannot, so it refuses a different one).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    return found if Path(found).exists() else None


def run_broker(host: str, port: int, folder: Path, *, embedded: bool = False) -> int:
    """Serve ``folder``'s broker until SIGINT/SIGTERM (mosquitto replaces this process)."""
    from edgewatch.brokerauth import BrokerDir

    bd = BrokerDir(folder)
    if not bd.exists():
        print(f"{folder}: no broker folder; run `edgewatch broker init --dir {folder}` first")
        return 2
    binary = None if embedded else mosquitto_binary()
    if binary is not None:
        conf = bd.path / f"mosquitto-{port}.conf"
        (bd.path / "data").mkdir(exist_ok=True)
        user = "root" if os.geteuid() == 0 else None  # as root: read the 0600 files
        conf.write_text(bd.mosquitto_conf(port, bind=host, user=user))
        print(f"READY mqtts://{host}:{port} (mosquitto)", flush=True)
        os.execv(binary, [binary, "-c", str(conf)])
    return _run_amqtt(bd, host, port)


def amqtt_config(bd, host: str, port: int) -> dict:  # type: ignore[no-untyped-def]
    """amqtt's config for a broker folder: TLS listener, our auth and topic plugins."""
    return {
        "listeners": {
            "default": {
                "type": "tcp",
                "bind": f"{host}:{port}",
                "ssl": True,
                "certfile": str(bd.path / "server.crt"),
                "keyfile": str(bd.path / "server.key"),
            }
        },
        "plugins": {
            "edgewatch.broker.AccountAuthPlugin": {"folder": str(bd.path)},
            "edgewatch.broker.AccountTopicPlugin": {"folder": str(bd.path)},
        },
    }


def _matches(topic: str, pattern: str) -> bool:
    """MQTT topic-filter match of ``topic`` (itself possibly a filter) against a grant."""
    t, p = topic.split("/"), pattern.split("/")
    for i, seg in enumerate(p):
        if seg == "#":
            return True
        if i >= len(t):
            return False
        if seg == "+":
            if t[i] == "#":
                return False
            continue
        if seg != t[i]:
            return False
    return len(t) == len(p)


def _amqtt_plugins():  # type: ignore[no-untyped-def]
    from amqtt.contexts import Action
    from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin

    from edgewatch.brokerauth import BrokerDir, verify_password

    class AccountAuthPlugin(BaseAuthPlugin):
        @dataclass
        class Config:
            folder: str = ""

        async def authenticate(self, *, session) -> bool | None:  # type: ignore[no-untyped-def,override]
            bd = BrokerDir(Path(self.context.config.folder))  # type: ignore[union-attr]
            account = bd.accounts().get(session.username or "")
            ok = (
                account is not None
                and verify_password(session.password or "", account.password_hash)
                and session.client_id == account.username
            )
            if not ok:
                log.warning(
                    "broker refused a client",
                    extra={"username": (session.username or "")[:64], "client": session.client_id},
                )
            return bool(ok)

    class AccountTopicPlugin(BaseTopicPlugin):
        @dataclass
        class Config:
            folder: str = ""

        async def topic_filtering(self, *, session=None, topic=None, action=None) -> bool | None:  # type: ignore[no-untyped-def,override]
            if session is None or not topic:
                return False
            bd = BrokerDir(Path(self.context.config.folder))  # type: ignore[union-attr]
            account = bd.accounts().get(session.username or "")
            if account is None:
                return False
            read, write = account.grants()
            grants = write if action == Action.PUBLISH else read
            return any(_matches(topic, g) for g in grants)

    return AccountAuthPlugin, AccountTopicPlugin


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # amqtt loads plugins by dotted name; build them only when amqtt is asked for them
    if name in ("AccountAuthPlugin", "AccountTopicPlugin"):
        auth, topic = _amqtt_plugins()
        return auth if name == "AccountAuthPlugin" else topic
    raise AttributeError(name)


def _run_amqtt(bd, host: str, port: int) -> int:  # type: ignore[no-untyped-def]
    from amqtt.broker import Broker

    async def main() -> None:
        broker = Broker(amqtt_config(bd, host, port))
        await broker.start()
        log.info("embedded broker listening", extra={"host": host, "port": port})
        print(f"READY mqtts://{host}:{port} (embedded)", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await broker.shutdown()

    asyncio.run(main())
    return 0
