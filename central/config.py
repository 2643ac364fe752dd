"""The hub's declarative config (YAML, validated by pydantic).

The kind lists (fire kinds a team may take, urgent kinds, the review queue's kinds) are
derived from the analytics registry: each analytic declares the kinds it emits and how
the hub treats them, so a new analytic needs no edit here.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import zlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.analytics import registry
from edgewatch.mqtt import MqttSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HttpSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For "
        "and X-Forwarded-Proto are believed; default none: the client address is the peer's, "
        "whatever a request's headers claim",
    )
    docs: bool = Field(
        True,
        description="serve the API documentation (/docs, Swagger UI from the installed "
        "swagger-ui-bundle package, never a CDN) and /openapi.json",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            try:
                out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (e.g. 10.0.0.5, 10.0.0.0/24)"
                ) from None
        return out


class Limits(_Strict):
    max_event_bytes: int = Field(64 * 1024, ge=1024, description="largest event JSON accepted")
    max_status_bytes: int = Field(16 * 1024, ge=256)
    max_snapshot_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_evidence_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="largest evidence file (a clip) accepted"
    )
    max_clock_skew_s: float = Field(
        60.0,
        gt=0,
        le=86400,
        description="a reading or status timed further ahead of hub time is refused (or "
        "clamped, for statuses), and the edge is flagged",
    )
    max_seq_step: int = Field(
        10000, ge=1, description="an event's seq may grow by at most this much per message"
    )
    max_cameras_per_edge: int = Field(
        256, ge=1, description="cameras one edge may report; statuses of further ones are refused"
    )
    max_offline_alerts_per_min: int = Field(
        120,
        ge=1,
        description="camera_offline alerts the watchdog opens per minute; the rest wait",
    )
    orphan_snapshot_ttl_s: float = Field(
        600.0,
        gt=0,
        description="snapshots and evidence files of events the hub never got are deleted then",
    )
    readings_retention_days: float = Field(
        90.0,
        gt=0,
        description="readings (counts, occupancy, levels) older than this are deleted",
    )
    max_reading_series_per_edge: int = Field(
        4096,
        ge=1,
        description="(camera, analytic) pairs one edge may send readings for; readings of "
        "further ones are refused (too_many_series)",
    )


# Kinds merged into fire incidents and routed to teams (forest_fire, straw_burning, smoke).
FIRE_KINDS = registry.kinds_where(incident="fire")

DEFAULT_PUSH_HOSTS = (
    "fcm.googleapis.com",  # Chrome, Edge on Android, most Chromium browsers
    "updates.push.services.mozilla.com",  # Firefox
    "*.notify.windows.com",  # Edge on Windows (WNS)
    "web.push.apple.com",  # Safari
    "*.push.apple.com",
)
# a DNS name whose last label starts with a letter (so never an IPv4 or IPv6 address),
# optionally "*." in front (any name under it) and ":PORT" behind
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
PUSH_HOST_RE = re.compile(
    rf"(\*\.)?(?:{_LABEL}\.)*[a-z](?:[a-z0-9-]{{0,61}}[a-z0-9])?(:[0-9]{{1,5}})?"
)


class Channel(_Strict):
    """Where a team's notifications go."""

    type: Literal["webhook", "mqtt", "webpush"]
    url: str | None = Field(None, description="webhook: the URL to POST the JSON to")
    secret: str | None = Field(
        None, description="webhook: HMAC-SHA256 key (prefer EDGEWATCH_* env or secret_file)"
    )
    secret_file: Path | None = Field(None, description="webhook: file holding the HMAC key")
    topic: str | None = Field(None, description="mqtt: default edgewatch/v1/teams/{team}/incidents")

    @model_validator(mode="after")
    def _complete(self) -> Channel:
        if self.type == "webhook":
            if not self.url or not self.url.startswith(("http://", "https://")):
                raise ValueError("url: a webhook needs an http(s) URL")
            if not (self.secret or self.secret_file):
                raise ValueError("secret: a webhook needs an HMAC secret (or secret_file)")
        return self

    def hmac_key(self) -> bytes:
        if self.secret_file is not None:
            return self.secret_file.read_text(encoding="utf-8").strip().encode()
        return (self.secret or "").encode()


class Team(_Strict):
    """Rangers, an environment team or the operations centre: an area, kinds, channels."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str = ""
    kinds: list[str] = Field(default_factory=lambda: ["forest_fire", "smoke"])
    area: list[tuple[float, float]] | None = Field(
        None, description="polygon of (lon, lat); none: everywhere"
    )
    channels: list[Channel] = Field(default_factory=list)
    ack_timeout_s: float = Field(300.0, gt=0, description="escalate when nobody acks by then")
    escalate_to: str | None = Field(None, description="next team id (default: the ops team)")
    digest_s: float | None = Field(
        None, gt=0, description="batch this team's notifications into a digest every N s"
    )
    cooldown_s: float = Field(
        300.0, ge=0, description="min time between notifications about one incident"
    )
    enrol_token: str | None = Field(
        None, description="lets a ranger's browser subscribe to Web Push for this team"
    )

    @model_validator(mode="after")
    def _topics(self) -> Team:
        # a team topic must be one only the hub writes and only this team's account reads
        prefix = f"edgewatch/v1/teams/{self.id}/"
        for i, ch in enumerate(self.channels):
            if ch.type == "mqtt" and ch.topic is not None and not ch.topic.startswith(prefix):
                raise ValueError(
                    f"channels.{i}.topic: must start with {prefix} (the broker lets only the "
                    "hub write there and only this team's account read it)"
                )
        return self

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        bad = [k for k in value if k not in FIRE_KINDS]
        if bad:
            raise ValueError(f"unknown kinds {bad}; known: {', '.join(FIRE_KINDS)}")
        return value

    @field_validator("area")
    @classmethod
    def _area(cls, value: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        if value is not None and len(value) < 3:
            raise ValueError("an area needs at least 3 points (lon, lat)")
        return value


class IncidentSettings(_Strict):
    merge_distance_m: float = Field(
        5000.0, gt=0, description="cameras closer than this may see the same plume"
    )
    merge_window_s: float = Field(900.0, gt=0, description="alerts this close in time may merge")
    max_range_m: float = Field(20000.0, gt=0, description="how far a camera can see a plume")
    ops_team: str | None = Field(None, description="escalation of last resort (the IOC)")
    secret: str | None = Field(
        None,
        description="signs ack links in notifications (or EDGEWATCH_INCIDENTS__SECRET); when "
        "unset, a random key is generated once and kept in the database (table hub_secrets), "
        "so links survive restarts and are shared by hubs on one database",
    )
    ack_link_ttl_s: int = Field(
        3600,
        ge=60,
        le=7 * 86400,
        description="an ack link in a notification works this long, and only once",
    )
    retry_initial_s: float = Field(1.0, gt=0)
    retry_max_s: float = Field(60.0, gt=0)
    max_attempts: int = Field(30, ge=1)
    public_url: str = Field("http://127.0.0.1:8000", description="base of links sent out")
    delivery_timeout_s: float = Field(
        5.0, gt=0, le=60, description="a webhook or push service silent this long has failed"
    )
    max_parallel_deliveries: int = Field(
        64,
        ge=1,
        le=1024,
        description="deliveries in flight at once, at most one per target (webhook URL, push "
        "endpoint, MQTT topic), so a hung target holds up only its own queue",
    )
    breaker_failures: int = Field(
        3, ge=1, description="consecutive failures of one target that open its circuit"
    )
    breaker_open_s: float = Field(
        30.0,
        gt=0,
        description="an open circuit defers the target's deliveries this long, then lets one "
        "attempt through; each failed probe doubles it, up to breaker_max_open_s",
    )
    breaker_max_open_s: float = Field(300.0, gt=0)


class PushSettings(_Strict):
    vapid_key_file: Path = Field(
        Path("var/vapid_private.pem"), description="created on first start when missing"
    )
    subject: str = Field("mailto:ioc@example.org", description="VAPID contact (mailto: or URL)")
    ttl_s: int = Field(3600, ge=0)
    allowed_hosts: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PUSH_HOSTS),
        description="push services a browser subscription may point at: a host name, or "
        "*.DOMAIN for any name under DOMAIN; port 443 unless written HOST:PORT. Endpoints must "
        "be https; IP addresses are never accepted",
    )
    max_subscriptions_per_team: int = Field(
        50,
        ge=1,
        le=10000,
        description="further subscriptions to a team are refused (409) until push services "
        "report old ones gone (they are dropped then) or an operator removes some",
    )
    ca_file: Path | None = Field(
        None, description="CA bundle to verify push services with (default: the system's)"
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        out = []
        for entry in value:
            e = entry.strip().lower().rstrip(".")
            if not PUSH_HOST_RE.fullmatch(e):
                raise ValueError(
                    f"allowed_hosts: {entry!r} is not HOST, *.DOMAIN or either with :PORT "
                    "(no IP addresses, no bare *)"
                )
            out.append(e)
        return out


class AuthSettings(_Strict):
    """Accounts, sessions and bearer tokens (users live in the database: ``edgewatch user``)."""

    session_ttl_s: int = Field(12 * 3600, ge=60, description="browser session lifetime")
    token_ttl_s: int = Field(12 * 3600, ge=60, description="bearer token lifetime (OAuth2 flow)")
    idle_timeout_s: int = Field(
        4 * 3600, ge=60, description="a browser session unused this long ends"
    )
    cookie_secure: Literal["auto", "always", "never"] = Field(
        "auto", description="Secure cookie flag; auto: when the request came over https"
    )
    login_max_failures: int = Field(
        5, ge=1, description="failed logins per user name or client before a lock-out"
    )
    login_window_s: float = Field(300.0, gt=0, description="window the failures are counted in")
    login_global_max_failures: int = Field(
        100,
        ge=1,
        description="failed logins of all names and clients together within login_window_s "
        "before every login is refused for a while: bounds a password spray spread over "
        "many addresses",
    )
    stream_recheck_s: float = Field(
        10.0,
        gt=0,
        le=30,
        description="an open live stream re-checks its session this often (and at once "
        "on a logout or account change in this hub): it ends when the session did",
    )


class AlertSettings(_Strict):
    """How the dashboard treats events: which are urgent, which need review, camera outages."""

    urgent: list[str] = Field(
        # the kinds the analytics declare urgent, and the top flood level
        default_factory=lambda: [*registry.kinds_where(urgent=True), "flood_level:III"],
        description="kind or kind:label that sound an alarm on the live page",
    )
    review_kinds: list[str] = Field(
        default_factory=lambda: list(registry.kinds_where(review=True)),
        description="event kinds that enter the traffic review queue",
    )
    camera_offline_grace_s: float = Field(
        120.0, ge=0, description="a camera offline this long raises a camera_offline alert"
    )

    def is_urgent(self, kind: str, label: str | None) -> bool:
        return kind in self.urgent or f"{kind}:{label}" in self.urgent


# the host part goes into the Content-Security-Policy: a DNS name or an address, a port,
# nothing else (no quote, semicolon or space could end the directive)
TILE_URL_RE = re.compile(
    r"^https?://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?/\S*$"
)


class MapSettings(_Strict):
    """The maps of the dashboard and the public flood page (docs/maps.md).

    With no ``tile_url`` the maps draw only the bundled outline of the Hue area (land,
    lagoons, sea), which needs no network; a deployment with a tile server names it here,
    and the Content-Security-Policy then lets pages load images from that origin only.
    """

    tile_url: str | None = Field(
        None,
        description="raster tiles, e.g. https://tiles.example.org/{z}/{x}/{y}.png (http or "
        "https, with {z}, {x} and {y}; {s} for subdomains is not supported); none: the "
        "bundled outline only, no network needed",
    )
    attribution: str = Field(
        "",
        max_length=300,
        description="the tiles' credit shown on the map (plain text), e.g. "
        "'© OpenStreetMap contributors'",
    )
    center: tuple[float, float] = Field(
        (16.4637, 107.5909), description="[lat, lon] the maps open on (default: Hue)"
    )
    zoom: int = Field(12, ge=1, le=19, description="the zoom level the maps open on")

    @field_validator("tile_url")
    @classmethod
    def _tile_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not TILE_URL_RE.match(value) or any(p not in value for p in ("{z}", "{x}", "{y}")):
            raise ValueError(
                f"{value!r} is not an http(s) tile URL with {{z}}, {{x}} and {{y}} "
                "(e.g. https://tiles.example.org/{z}/{x}/{y}.png)"
            )
        if "{s}" in value:
            raise ValueError("{s} (subdomains) is not supported: name one host")
        return value

    @field_validator("center")
    @classmethod
    def _center(cls, value: tuple[float, float]) -> tuple[float, float]:
        lat, lon = value
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError("center is [lat, lon]: lat within -90..90, lon within -180..180")
        return value

    def tile_origin(self) -> str | None:
        """``scheme://host[:port]`` of the tile server (what the CSP's img-src allows)."""
        if not self.tile_url:
            return None
        scheme, rest = self.tile_url.split("://", 1)
        return f"{scheme}://{rest.split('/', 1)[0]}"


# The advisory lock the ingest leader holds (see central/leader.py): a constant, so every
# hub on one database competes for the same one; advisory locks are per database.
DEFAULT_LOCK_KEY = zlib.crc32(b"edgewatch-hub-leader") & 0x7FFFFFFF


def _default_hub_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"[:64]


class ClusterSettings(_Strict):
    """Several hubs on one PostgreSQL database (docs/cluster.md): one leads ingest and the
    single-writer jobs, every one serves the API and the dashboards."""

    enabled: bool | None = Field(
        None,
        description="run as one of several hubs on one database (leader election by a "
        "PostgreSQL advisory lock, live streams fanned out by LISTEN/NOTIFY); default: on "
        "with PostgreSQL, off with SQLite; needs PostgreSQL",
    )
    hub_id: str = Field(
        default_factory=_default_hub_id,
        pattern=r"^[A-Za-z0-9._:-]{1,64}$",
        description="this hub's name in logs, /api/v1/cluster and notices; default hostname-pid",
    )
    lock_key: int = Field(
        DEFAULT_LOCK_KEY,
        ge=1,
        le=2**31 - 1,
        description="the pg_try_advisory_lock key the leader holds; the same on every hub "
        "of one deployment",
    )
    poll_s: float = Field(
        1.0,
        ge=0.1,
        le=10.0,
        description="how often a standby tries the lock and the leader checks its connection",
    )


class HubConfig(_Strict):
    database_url: str = Field(
        "sqlite:///var/hub.sqlite3",
        description="SQLAlchemy URL: sqlite:///FILE or postgresql+psycopg://USER@HOST/DB",
    )
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    mqtt_client_id: str = Field(
        "edgewatch-hub", description="fixed, so the broker keeps the hub's session"
    )
    http: HttpSettings = Field(default_factory=HttpSettings)
    limits: Limits = Field(default_factory=Limits)
    hotspots_file: Path | None = Field(
        None, description="GeoJSON of the flood hotspots served at /api/v1/hotspots"
    )
    teams: list[Team] = Field(default_factory=list)
    incidents: IncidentSettings = Field(default_factory=IncidentSettings)
    push: PushSettings = Field(default_factory=PushSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    map: MapSettings = Field(default_factory=MapSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _teams(self) -> HubConfig:
        ids = [t.id for t in self.teams]
        if len(set(ids)) != len(ids):
            raise ValueError("teams: ids must be unique")
        for t in self.teams:
            if t.escalate_to is not None and t.escalate_to not in ids:
                raise ValueError(f"teams: {t.id}.escalate_to {t.escalate_to!r} is not a team id")
        ops = self.incidents.ops_team
        if ops is not None and ops not in ids:
            raise ValueError(f"incidents.ops_team: {ops!r} is not a team id")
        if self.cluster.enabled and not self.database_url.startswith("postgresql"):
            raise ValueError(
                "cluster.enabled: true needs PostgreSQL (database_url is SQLite, which "
                "serves one hub only); set database_url to postgresql+psycopg://... or "
                "remove cluster.enabled"
            )
        return self

    @property
    def clustered(self) -> bool:
        """Whether this hub runs as one of several (leader election, cross-hub fan-out)."""
        if self.cluster.enabled is None:
            return self.database_url.startswith("postgresql")
        return self.cluster.enabled

    def team(self, team_id: str) -> Team | None:
        return next((t for t in self.teams if t.id == team_id), None)

    @field_validator("database_url")
    @classmethod
    def _db(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql")):
            raise ValueError("use sqlite:///FILE or postgresql+psycopg://...")
        return value


WEAK_ENROL_TOKENS = frozenset({"change-me", "changeme", "secret", "password"})
MIN_ENROL_TOKEN = 16


def security_warnings(cfg: HubConfig) -> list[str]:
    """Settings that work but are unsafe outside a demo, one readable line each."""
    out: list[str] = []
    if cfg.teams and not cfg.incidents.secret:
        out.append(
            "incidents.secret: not set; ack links are signed with a key the hub generated and "
            "stored in its database (anyone with a database copy can forge links, and a new "
            "database invalidates them); set it (or EDGEWATCH_INCIDENTS__SECRET) to a long "
            "random string kept outside the database"
        )
    elif cfg.incidents.secret and len(cfg.incidents.secret) < MIN_ENROL_TOKEN:
        out.append(
            f"incidents.secret: shorter than {MIN_ENROL_TOKEN} characters; ack links can be "
            "forged by guessing it, use a long random string"
        )
    for i, team in enumerate(cfg.teams):
        token = team.enrol_token
        if token is None:
            continue
        if token.lower() in WEAK_ENROL_TOKENS:
            out.append(
                f"teams.{i}.enrol_token ({team.id}): {token!r} is a placeholder; anyone who "
                "guesses it can subscribe to the team's alerts, set a long random token"
            )
        elif len(token) < MIN_ENROL_TOKEN:
            out.append(
                f"teams.{i}.enrol_token ({team.id}): shorter than {MIN_ENROL_TOKEN} characters; "
                "set a long random token"
            )
    return out
