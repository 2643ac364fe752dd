"""The MQTT contract between edge workers and the hub: topics and payloads.

``docs/mqtt.md`` describes it for people; ``docs/schemas/*.json`` are generated
from these models (``edgewatch schemas``) and a test keeps them in step.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

SCHEMA_VERSION = 1
ROOT = "edgewatch/v1"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
_ID = re.compile(ID_PATTERN)

EventType = Literal["new", "update", "end"]
CameraState = Literal["online", "offline", "degraded"]


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- strict JSON -------------------------------------------------------------------------
#
# What the contract's JSON may hold, whatever Python's json module would accept: UTF-8
# only, no NaN/Infinity (nor numbers that overflow to them), integers of at most
# MAX_INT_DIGITS digits, at most MAX_DEPTH nested arrays/objects, and no NUL or lone
# surrogate in any string or key (neither SQLite nor PostgreSQL store those alike).

MAX_DEPTH = 32
MAX_INT_DIGITS = 20


class PayloadError(ValueError):
    """A payload that is not strict contract JSON; ``str()`` is a short reason."""


class PayloadTooLarge(PayloadError):
    pass


# A JSON string (skipped whole), or a bracket outside strings.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")


def _refuse_constant(name: str) -> object:
    raise PayloadError(f"{name} is not allowed")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise PayloadError(f"integer longer than {MAX_INT_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > 100:
        raise PayloadError("number longer than 100 characters")
    value = float(text)
    if not math.isfinite(value):
        raise PayloadError("number out of range")
    return value


def _check_depth(text: str, max_depth: int) -> None:
    depth = 0
    for m in _TOKENS.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > max_depth:
                raise PayloadError(f"nested deeper than {max_depth}")
        elif c in "]}":
            depth -= 1


def _check_strings(doc: object) -> None:
    stack = [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _BAD_CHARS.search(v):
                raise PayloadError("NUL or lone surrogate in a string")
        elif isinstance(v, dict):
            for k, x in v.items():
                if _BAD_CHARS.search(k):
                    raise PayloadError("NUL or lone surrogate in a key")
                stack.append(x)
        elif isinstance(v, list):
            stack.extend(v)


def loads(payload: bytes | str, limit: int | None = None, *, max_depth: int = MAX_DEPTH) -> object:
    """Parse a contract JSON payload strictly; raise PayloadError (a ValueError) if it is not.

    ``limit`` bounds the size in bytes (PayloadTooLarge). Nothing here recurses on the
    input, and no exception but PayloadError comes out for any input.
    """
    if limit is not None and len(payload) > limit:
        raise PayloadTooLarge(f"{len(payload)} bytes > limit {limit}")
    if isinstance(payload, bytes | bytearray | memoryview):
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    else:
        text = payload
    _check_depth(text, max_depth)
    try:
        doc = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
        )
    except PayloadError:
        raise
    except json.JSONDecodeError as exc:
        raise PayloadError(f"not JSON: {exc.msg} at {exc.pos}") from None
    except (ValueError, RecursionError) as exc:  # belt and braces
        raise PayloadError(f"not JSON: {type(exc).__name__}") from None
    _check_strings(doc)
    return doc


# -- value types -------------------------------------------------------------------------

INT32_MAX = 2**31 - 1  # the hub stores counters and seq in 32-bit signed columns
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MIN_YEAR, MAX_YEAR = 2000, 2100
LEVEL_MIN_CM, LEVEL_MAX_CM = -10_000.0, 100_000.0
MAX_PERIOD_S = 7 * 86400.0
MAX_ETA_S = 1e9

_NO_NUL = r"^[^\x00]*$"
# A string without NUL (PostgreSQL text cannot hold one).
Text = Annotated[str, StringConstraints(pattern=_NO_NUL)]
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]


def _year_in_range(value: datetime) -> datetime:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"year must be within {MIN_YEAR}..{MAX_YEAR}")
    return value


# Timezone-aware and within MIN_YEAR..MAX_YEAR (stored as UTC by the hub).
Time = Annotated[AwareDatetime, AfterValidator(_year_in_range)]
LevelCm = Annotated[float, Field(ge=LEVEL_MIN_CM, le=LEVEL_MAX_CM)]


def _not_an_int(value: object) -> object:
    # An integer out of the int64 range must not slip through as a float.
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError("integer out of the int64 range")
    return value


AttributeKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_NO_NUL)]
AttributeValue = (
    Annotated[str, StringConstraints(max_length=500, pattern=_NO_NUL)]
    | Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
    | Annotated[float, BeforeValidator(_not_an_int)]
    | bool
    | None
)


class _Payload(BaseModel):
    # Unknown fields are refused so that a typo or a foreign producer is noticed;
    # every float is finite.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Location(_Payload):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class SnapshotRef(_Payload):
    topic: Text = Field(
        max_length=500, description="MQTT topic the JPEG was published on (binary payload)"
    )
    content_type: Literal["image/jpeg"] = "image/jpeg"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=1, le=INT32_MAX)


class EventMessage(_Payload):
    """One step of an event's life: ``new``, then ``update``s, then ``end``."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: UUID = Field(description="stable for the whole life of the event")
    type: EventType
    seq: int = Field(
        ge=0, le=INT32_MAX, description="0 for new, +1 for each later message of this event"
    )
    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="what happened, e.g. object")
    analytic: str = Field(pattern=ID_PATTERN, description="name of the analytic that raised it")
    label: Text | None = Field(None, max_length=64, description="detected class, e.g. car")
    site: str = Field(pattern=ID_PATTERN)
    edge_id: str = Field(pattern=ID_PATTERN)
    camera_id: str = Field(pattern=ID_PATTERN)
    start_time: Time
    end_time: Time | None = None
    frame_time: Time = Field(description="capture time of the frame described")
    score: float = Field(ge=0, le=1, description="top score so far")
    box: tuple[float, float, float, float] | None = Field(
        None, description="x1, y1, x2, y2 of the top-score box, as fractions of width and height"
    )
    zone: Text | None = Field(None, max_length=64)
    location: Location | None = None
    snapshot: SnapshotRef | None = None
    attributes: dict[AttributeKey, AttributeValue] = Field(default_factory=dict)


class Pipeline(_Payload):
    """How a camera's stream is read and analysed (the edge's view of its cost and health)."""

    policy: Text = Field(max_length=32, description="decode policy: snapshot, keyframes, all")
    decoder: Text = Field(max_length=64, description='e.g. "h264 (software)", "h264 (cuda)"')
    decode_fps: float = Field(ge=0, description="frames decoded per second")
    requested_fps: float = Field(ge=0, description="samples per second the analytics ask for")
    analysed_fps: float = Field(ge=0, description="samples per second actually analysed")
    lag_ms: float | None = Field(None, ge=0, description="capture to analysis result, recent mean")
    lag_max_ms: float | None = Field(None, ge=0, description="recent maximum")
    dropped: Count = Field(description="due samples missed because analysis was busy")
    skipped: Count = Field(description="decoded frames replaced before analysis")
    motion_skipped: Count = Field(0, description="samples not inferred: no motion")
    gop_s: float | None = Field(None, ge=0, description="keyframe interval seen")
    width: Count | None = None
    height: Count | None = None
    faults: dict[Annotated[str, StringConstraints(max_length=64, pattern=_NO_NUL)], Count] = Field(
        default_factory=dict,
        description="decode_errors, corrupt_frames, size_changes, timestamp_jumps, long_gop, "
        "stalls, no_frame",
    )


class CameraStatus(_Payload):
    """Retained on ``.../cameras/{camera_id}/status``."""

    schema_version: Literal[1] = SCHEMA_VERSION
    camera_id: str = Field(pattern=ID_PATTERN)
    state: CameraState
    fps: float = Field(ge=0, description="decoded frames per second over the last interval")
    last_frame_time: Time | None = None
    reconnects: Count
    error: Text | None = Field(None, max_length=500, description="last error, credentials removed")
    location: Location | None = None
    updated_at: Time
    pipeline: Pipeline | None = None
    degraded_reason: Text | None = Field(None, max_length=200)
    config_version: str | None = Field(
        None, pattern=r"^[0-9a-f]{16}$", description="the camera configuration it runs"
    )
    config_error: Text | None = Field(
        None, max_length=1000, description="why the wanted configuration was refused"
    )


class LevelRef(_Payload):
    name: str = Field(pattern=ID_PATTERN)
    level_cm: LevelCm


class HotspotReading(_Payload):
    """Retained on ``.../hotspots/{hotspot_id}/reading``: the latest flood reading.

    ``state`` is ``unknown`` (with ``reason``) when the image could not be trusted;
    ``level_state`` is the alarm state, kept through unknown readings. Every reading is
    sent (not only the latest), so the hub keeps the series for charts.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    hotspot_id: str = Field(pattern=ID_PATTERN)
    camera_id: str = Field(pattern=ID_PATTERN)
    analytic: str = Field(pattern=ID_PATTERN)
    setup: Literal["gauge", "virtual_gauge", "road_cover"]
    time: Time = Field(description="capture time of the frame read")
    state: str = Field(pattern=ID_PATTERN, description="unknown, normal or a level name")
    level_state: str = Field(pattern=ID_PATTERN, description="alarm state: normal or a level")
    level_cm: LevelCm | None = Field(None, description="smoothed level (road_cover: depth)")
    raw_cm: LevelCm | None = None
    reason: Text | None = Field(None, max_length=64, description="why unknown")
    trend_cm_per_h: float | None = None
    next_level: Text | None = Field(None, max_length=64)
    eta_s: float | None = Field(
        None, ge=0, le=MAX_ETA_S, description="estimated time to the next level"
    )
    confidence: float | None = Field(None, ge=0, le=1)
    cover: float | None = Field(None, ge=0, le=1, description="road_cover: covered share")
    depth_class: Text | None = Field(None, max_length=32)
    period_s: float = Field(gt=0, le=MAX_PERIOD_S, description="seconds between readings")
    levels: list[LevelRef] = Field(default_factory=list, max_length=32)


ReadingName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$")]
ReadingValue = Annotated[float, Field(ge=-1e12, le=1e12)]


class ReadingMessage(_Payload):
    """On ``.../cameras/{camera_id}/readings/{analytic}``: one measurement of any analytic.

    A count over an interval (``period_s``), an occupancy, a level: named values, each
    ``null`` when it could not be measured, with their units. One topic pattern, one table
    and one API at the hub for every analytic (the flood's levels included).
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    camera_id: str = Field(pattern=ID_PATTERN)
    analytic: str = Field(pattern=ID_PATTERN, description="the analytic's name on the camera")
    analytic_type: str = Field(pattern=ID_PATTERN, description="its type, e.g. line_count")
    time: Time = Field(description="end of the interval, or the capture time read")
    period_s: float | None = Field(None, gt=0, le=MAX_PERIOD_S)
    state: Text | None = Field(None, max_length=32, description="e.g. free, slow, jammed")
    values: dict[ReadingName, ReadingValue | None] = Field(max_length=64)
    units: dict[ReadingName, Annotated[Text, StringConstraints(max_length=16)]] = Field(
        default_factory=dict, max_length=64
    )


# -- watch list (hub -> edges) ------------------------------------------------------------
#
# Plates on a list kept at the hub; each edge gets the whole list, retained, on its own
# config topic (only the hub may write ``edgewatch/v1/config/#``; an edge reads only its
# own), and its ``watchlist`` analytic raises an urgent alert when the traffic analytic
# reads one of them. Plates travel normalized (``normalize_plate``): matching is exact
# equality of that text, never fuzzy, because a wrong hit sends people after a car.

PLATE_PATTERN = r"^[A-Z0-9]{4,12}$"
_PLATE = re.compile(PLATE_PATTERN)
# Characters people and the plate reader write between a plate's parts ("30A-123.45").
_PLATE_SEPARATORS = re.compile(r"[\s.\-_·/]+")
WATCHLIST_MAX_ENTRIES = 10_000
WATCHLIST_MAX_BYTES = 16 * 1024 * 1024  # 10,000 entries with 200-character reasons fit


def normalize_plate(text: str) -> str:
    """``30a-123.45`` -> ``30A12345``: upper case, separators dropped, letters and digits
    kept. Anything else (an accent, a full-width digit) raises ValueError instead of being
    dropped: dropping it would make a different plate."""
    out = _PLATE_SEPARATORS.sub("", text)
    if not out.isascii() or not out.isalnum():  # before upper(): "ß".upper() is "SS"
        raise ValueError("a plate holds letters A-Z and digits only (separators . - space)")
    out = out.upper()
    if not _PLATE.match(out):
        raise ValueError("a plate has 4 to 12 letters and digits")
    return out


class WatchlistEntry(_Payload):
    plate: str = Field(pattern=PLATE_PATTERN, description="normalized: A-Z and 0-9 only")
    reason: Text | None = Field(None, max_length=200, description="why it is on the list")
    id: int = Field(ge=1, le=INT64_MAX, description="the entry's id at the hub")


def _unique_entries(entries: list[WatchlistEntry]) -> list[WatchlistEntry]:
    if len({e.plate for e in entries}) != len(entries):
        raise ValueError("a plate is listed twice")
    if len({e.id for e in entries}) != len(entries):
        raise ValueError("an entry id is used twice")
    return entries


class WatchlistMessage(_Payload):
    """Retained on ``edgewatch/v1/config/{site}/{edge_id}/watchlist``: the whole list.

    ``version`` grows with every change; an edge keeps the newest version it has seen and
    refuses an older one (a stale retained copy, a replay).
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    version: int = Field(ge=0, le=INT64_MAX, description="grows with every change of the list")
    updated_at: Time
    entries: Annotated[list[WatchlistEntry], AfterValidator(_unique_entries)] = Field(
        max_length=WATCHLIST_MAX_ENTRIES
    )


# -- camera set-up from the hub -------------------------------------------------------------


def config_hash(doc: object) -> str:
    """The version of a configuration: its canonical JSON's SHA-256, 16 hex digits. The
    hub computes it on what it sends; the edge checks it on what it got and reports it."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


ConfigVersion = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
MAX_EDGE_CONFIG_BYTES = 4 * 1024 * 1024


class CameraConfigEntry(_Payload):
    camera_id: str = Field(pattern=ID_PATTERN)
    config_version: ConfigVersion = Field(description="config_hash(config)")
    config: dict[str, object] = Field(
        description="the camera's configuration (edge.config.CameraConfig), validated by "
        "the edge with the same models ``config check`` uses"
    )


class EdgeConfigMessage(_Payload):
    """Retained on ``edgewatch/v1/config/{site}/{edge_id}/cameras``: an edge's cameras.

    Written by the hub only and read by that edge only (the broker's ACL). The edge
    applies it live: cameras whose ``config_version`` changed are restarted, the others
    keep running; an entry it cannot validate is refused and the camera keeps its last
    good configuration (reported in its status as ``config_error``)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    version: int = Field(ge=0, le=INT64_MAX, description="increases with every change")
    updated_at: Time
    cameras: list[CameraConfigEntry] = Field(max_length=1024)


def edge_config_topic(site: str, edge_id: str) -> str:
    return f"{ROOT}/config/{site}/{edge_id}/cameras"


class DetectionRef(_Payload):
    box: tuple[float, float, float, float] = Field(description="fractions of width, height")
    label: Text = Field(max_length=64)
    score: float = Field(ge=0, le=1)


class CameraPreview(_Payload):
    """On ``.../cameras/{camera_id}/preview``: what the camera's analytics see now, beside
    the JPEG on ``.../cameras/{camera_id}/frame``: the set-up page draws the rules over it."""

    schema_version: Literal[1] = SCHEMA_VERSION
    camera_id: str = Field(pattern=ID_PATTERN)
    time: Time
    width: int = Field(ge=1, le=16384)
    height: int = Field(ge=1, le=16384)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="of the JPEG on the frame topic")
    config_version: ConfigVersion | None = None
    detections: list[DetectionRef] = Field(default_factory=list, max_length=300)
    readings: dict[
        Annotated[str, StringConstraints(pattern=ID_PATTERN)],
        dict[ReadingName, ReadingValue | None],
    ] = Field(default_factory=dict, max_length=32, description="latest values per analytic")


def camera_frame_topic(site: str, edge_id: str, camera_id: str) -> str:
    return f"{ROOT}/{site}/{edge_id}/cameras/{camera_id}/frame"


def camera_preview_topic(site: str, edge_id: str, camera_id: str) -> str:
    return f"{ROOT}/{site}/{edge_id}/cameras/{camera_id}/preview"


def watchlist_topic(site: str, edge_id: str) -> str:
    return f"{ROOT}/config/{site}/{edge_id}/watchlist"


# -- topics ------------------------------------------------------------------------------


def edge_status_topic(site: str, edge_id: str) -> str:
    return f"{ROOT}/{site}/{edge_id}/status"


def camera_status_topic(site: str, edge_id: str, camera_id: str) -> str:
    return f"{ROOT}/{site}/{edge_id}/cameras/{camera_id}/status"


def events_topic(site: str, edge_id: str) -> str:
    return f"{ROOT}/{site}/{edge_id}/events"


def snapshot_topic(site: str, edge_id: str, event_id: UUID | str) -> str:
    return f"{ROOT}/{site}/{edge_id}/events/{event_id}/snapshot"


def hotspot_topic(site: str, edge_id: str, hotspot_id: str) -> str:
    return f"{ROOT}/{site}/{edge_id}/hotspots/{hotspot_id}/reading"


def reading_topic(site: str, edge_id: str, camera_id: str, analytic: str) -> str:
    return f"{ROOT}/{site}/{edge_id}/cameras/{camera_id}/readings/{analytic}"


# Files of a violation's evidence package (binary payloads, one per message).
EVIDENCE_FILES = {
    "clip.mp4": "video/mp4",
    "before.jpg": "image/jpeg",
    "at.jpg": "image/jpeg",
    "after.jpg": "image/jpeg",
    "vehicle.jpg": "image/jpeg",
    "metadata.json": "application/json",
    "manifest.json": "application/json",
}


def evidence_topic(site: str, edge_id: str, event_id: UUID | str, name: str) -> str:
    return f"{ROOT}/{site}/{edge_id}/events/{event_id}/evidence/{name}"


SUBSCRIPTION = f"{ROOT}/#"


@dataclass(frozen=True)
class Topic:
    kind: Literal[
        "edge_status", "camera_status", "event", "snapshot", "hotspot", "evidence", "reading",
        "frame", "preview",
    ]  # fmt: skip
    site: str
    edge_id: str
    camera_id: str | None = None
    event_id: UUID | None = None
    hotspot_id: str | None = None
    name: str | None = None  # evidence file name; a reading's analytic


def parse_topic(topic: str) -> Topic | None:
    """The meaning of ``topic``, or None when it is not part of the contract."""
    root = ROOT + "/"
    if not topic.startswith(root):
        return None
    parts = topic[len(root) :].split("/")
    if len(parts) < 3 or not (_ID.match(parts[0]) and _ID.match(parts[1])):
        return None
    site, edge_id, rest = parts[0], parts[1], parts[2:]
    if rest == ["status"]:
        return Topic("edge_status", site, edge_id)
    if rest == ["events"]:
        return Topic("event", site, edge_id)
    if len(rest) == 3 and rest[0] == "cameras" and rest[2] == "status" and _ID.match(rest[1]):
        return Topic("camera_status", site, edge_id, camera_id=rest[1])
    if len(rest) == 3 and rest[0] == "cameras" and rest[2] == "frame" and _ID.match(rest[1]):
        return Topic("frame", site, edge_id, camera_id=rest[1])
    if len(rest) == 3 and rest[0] == "cameras" and rest[2] == "preview" and _ID.match(rest[1]):
        return Topic("preview", site, edge_id, camera_id=rest[1])
    if (
        len(rest) == 4
        and rest[0] == "cameras"
        and rest[2] == "readings"
        and _ID.match(rest[1])
        and _ID.match(rest[3])
    ):
        return Topic("reading", site, edge_id, camera_id=rest[1], name=rest[3])
    if len(rest) == 3 and rest[0] == "hotspots" and rest[2] == "reading" and _ID.match(rest[1]):
        return Topic("hotspot", site, edge_id, hotspot_id=rest[1])
    if len(rest) == 3 and rest[0] == "events" and rest[2] == "snapshot":
        try:
            return Topic("snapshot", site, edge_id, event_id=UUID(rest[1]))
        except ValueError:
            return None
    if len(rest) == 4 and rest[0] == "events" and rest[2] == "evidence":
        if rest[3] not in EVIDENCE_FILES:
            return None
        try:
            return Topic("evidence", site, edge_id, event_id=UUID(rest[1]), name=rest[3])
        except ValueError:
            return None
    return None


def json_schemas() -> dict[str, dict]:
    """JSON Schema per JSON payload of the contract, keyed by file stem."""
    return {
        "event": EventMessage.model_json_schema(),
        "camera_status": CameraStatus.model_json_schema(),
        "hotspot_reading": HotspotReading.model_json_schema(),
        "reading": ReadingMessage.model_json_schema(),
        "edge_config": EdgeConfigMessage.model_json_schema(),
        "camera_preview": CameraPreview.model_json_schema(),
        "watchlist": WatchlistMessage.model_json_schema(),
    }
