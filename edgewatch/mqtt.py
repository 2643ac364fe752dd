"""MQTT connection settings and a paho client factory shared by edge and hub."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class TlsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = Field(False, description="skip hostname verification (testing only)")


class MqttSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field("mqtt://127.0.0.1:1883", description="mqtt://host:port or mqtts://host:port")
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)
    tls: TlsSettings | None = None
    protocol: Literal["3.1.1", "5"] = "3.1.1"

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError("scheme must be mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError("a host is needed, e.g. mqtt://127.0.0.1:1883")
        if parts.username or parts.password:
            raise ValueError("put credentials in mqtt.username / mqtt.password, not in the URL")
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if self.secure else 1883)

    @property
    def secure(self) -> bool:
        return urlsplit(self.url).scheme in ("mqtts", "ssl") or self.tls is not None


def make_client(settings: MqttSettings, client_id: str, *, clean_session: bool) -> mqtt.Client:
    """A paho client (callback API v2) set up for ``settings``; not yet connected."""
    protocol = mqtt.MQTTv5 if settings.protocol == "5" else mqtt.MQTTv311
    kwargs: dict[str, object] = {
        "callback_api_version": mqtt.CallbackAPIVersion.VERSION2,
        "client_id": client_id,
        "protocol": protocol,
    }
    if protocol == mqtt.MQTTv311:
        kwargs["clean_session"] = clean_session
    client = mqtt.Client(**kwargs)  # type: ignore[arg-type]
    if settings.username:
        pw = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, pw)
    if settings.secure:
        tls = settings.tls or TlsSettings()
        client.tls_set(
            ca_certs=str(tls.ca_file) if tls.ca_file else None,
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(tls.insecure)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    return client


def connect_properties(settings: MqttSettings, clean_session: bool) -> dict[str, object]:
    """Extra ``connect_async`` arguments for MQTT 5 (session kept for a day)."""
    if settings.protocol != "5":
        return {}
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0 if clean_session else 86400
    return {"clean_start": clean_session, "properties": props}
