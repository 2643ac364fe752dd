"""An embedded MQTT 3.1.1 broker (amqtt) for a single machine and the demo.

Production points the edge and the hub at mosquitto (or any MQTT 3.1.1/5 broker)
with persistence enabled; see the README.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket

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


def broker_config(host: str, port: int) -> dict:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


def run_broker(host: str, port: int) -> int:
    """Serve until SIGINT/SIGTERM."""
    from amqtt.broker import Broker

    async def main() -> None:
        broker = Broker(broker_config(host, port))
        await broker.start()
        log.info("embedded broker listening", extra={"host": host, "port": port})
        print(f"READY mqtt://{host}:{port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await broker.shutdown()

    asyncio.run(main())
    return 0
