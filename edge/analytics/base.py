"""The analytic plugin protocol: what a plugin declares, what it is fed, what it returns.

Why a protocol: the worker schedules samples, runs shared detectors and publishes what
comes out; it must not know what a fire or a stop line is. Adding an analytic used to
touch ten places (config union, worker, CLI, the hub's kind lists). Now a plugin is a
folder under ``edge/analytics/plugins/`` whose ``__init__`` declares one or more
``AnalyticPlugin`` manifests (as Roboflow Inference's workflow blocks declare theirs):

- ``config``: the pydantic model of its YAML, with its ``type`` literal. The registry turns
  every plugin's model into the config's discriminated union (as Frigate does with its
  detector plugins), so ``config check`` validates a new analytic with no other change.
- ``kinds``: the event kinds it emits, with how the hub treats each (severity, urgent,
  review queue, which extra roles see it, incident policy). The hub derives its lists
  from these.
- ``needs``: what the worker must hand it (detections of a model, the frame, video
  packets for evidence clips, MQTT subscriptions, plates read by another analytic).
- ``runtime``: ``"module:callable"`` building the runtime object, imported only when an
  edge runs it, so the manifest (pydantic only) is cheap for the hub to import.

The runtime object is fed ``Sample``s at its ``Schedule`` and returns ``Outputs``: event
transitions (``new``/``update``/``end`` with a stable id), readings (any measurement over
time; one topic, one table and one API at the hub), contract messages it publishes itself
and observations for the camera's other analytics (a plate read, for a watch list).
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from edgewatch.contract import ID_PATTERN

if TYPE_CHECKING:  # the runtime's types; the manifest side imports none of them
    from edge.events.evidence import PacketRing
    from edge.inference.detections import Detections
    from edge.transport.spool import Message

Point = tuple[float, float]

Need = Literal["detections", "frame", "packets", "mqtt", "plates", "signal"]
Severity = Literal["urgent", "high", "medium", "info", "system"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def fractions(points: Sequence[Sequence[float]], what: str) -> None:
    for x, y in points:
        if not (0 <= x <= 1 and 0 <= y <= 1):
            raise ValueError(f"{what} points are fractions of width and height (0..1)")


def polygon(points: list[Point] | None, what: str = "zone") -> list[Point] | None:
    """Validate a polygon of fractions (None passes: the whole frame)."""
    if points is None:
        return None
    if len(points) < 3:
        raise ValueError(f"a {what} needs at least 3 points")
    fractions(points, what)
    return points


class AnalyticConfig(Strict):
    """What every analytic's config has; a plugin's model subclasses it with its literal."""

    type: str
    name: str = Field(pattern=ID_PATTERN)
    priority: int = Field(1, ge=1, le=10, description="share of the inference engine (weight)")

    def models_used(self) -> dict[str, list[str]]:
        """Model id -> the classes this analytic needs of it (``config check`` reads it)."""
        model = getattr(self, "model", None)
        if not model:
            return {}
        classes = getattr(self, "classes", None) or []
        return {str(model): list(classes)}

    def model_key(self, model: str) -> str:
        """The config key naming ``model`` (for messages)."""
        return "model"

    def problems(self, classes_of: Callable[[str], Sequence[str]]) -> list[tuple[str, str]]:
        """What ``config check`` finds beyond the schema: (key, message) pairs. The base
        checks each model exists and has the classes asked for; plugins add their own."""
        out: list[tuple[str, str]] = []
        for model, wanted in self.models_used().items():
            try:
                names = classes_of(model)
            except Exception as exc:  # the registry's ModelError, a missing file
                out.append((self.model_key(model), str(exc)))
                continue
            unknown = [c for c in wanted if c not in names]
            if unknown:
                out.append(("classes", f"{unknown} not in model {model!r}"))
        return out


@dataclass(frozen=True)
class KindSpec:
    """An event kind an analytic emits, and how the hub treats it."""

    name: str
    severity: Severity = "info"
    urgent: bool = False  # sounds the alarm on the live page and in notifications
    review: bool = False  # enters the operators' review queue (a violation with evidence)
    roles: tuple[str, ...] = ()  # roles besides admin/operator/viewer that see it
    incident: Literal["fire"] | None = None  # merged into incidents and routed to teams
    description: str = ""


@dataclass(frozen=True)
class Geometry:
    """A drawable part of an analytic's config, for the hub's set-up page.

    ``path`` is dotted into the analytic's config, ``*`` for every item of a list
    (``rules.*.stop_line``); kinds: ``polygon`` (list of [x, y]), ``line`` (two points),
    ``segment`` (an object with ``a`` and ``b``), ``point`` ([x, y]), ``box`` ([x1, y1,
    x2, y2]) and ``vector`` (a direction [dx, dy], drawn as an arrow). Coordinates are
    fractions of the frame, so they survive a change of resolution."""

    path: str
    kind: Literal["polygon", "line", "segment", "point", "box", "vector"]
    label: str
    optional: bool = False


@dataclass(frozen=True)
class AnalyticPlugin:
    """One analytic type's manifest."""

    type: str
    config: type[AnalyticConfig]
    kinds: tuple[KindSpec, ...]
    runtime: str  # "module:callable"; callable(cfg, ctx) -> the runtime object
    summary: str
    needs: tuple[Need, ...] = ("detections",)
    readings: tuple[str, ...] = ()  # names of the values its readings carry (documentation)
    consumes: tuple[str, ...] = ()  # observation kinds it is fed (e.g. "plate")
    geometry: tuple[Geometry, ...] = ()  # what the set-up page draws

    def build(self, cfg: AnalyticConfig, ctx: CameraContext) -> Analytic:
        module, _, attr = self.runtime.partition(":")
        factory = getattr(importlib.import_module(module), attr)
        return factory(cfg, ctx)  # type: ignore[no-any-return]


# -- what flows at run time ----------------------------------------------------------------


@dataclass
class Transition:
    """One step of an event's lifecycle, with a stable id across its steps."""

    type: Literal["new", "update", "end"]
    event_id: uuid.UUID
    seq: int
    label: str
    start_time: datetime
    frame_time: datetime
    score: float
    box: tuple[float, float, float, float]  # fractions of width/height
    box_px: tuple[int, int, int, int]
    end_time: datetime | None = None
    snapshot: bool = False  # this message comes with a new snapshot of the frame
    kind: str | None = None  # the event kind; the analytic's default when None
    zone: str | None = None  # the zone it happened in; the analytic's default when None
    attributes: dict[str, str | int | float | bool | None] = field(default_factory=dict)


class Held(Protocol):
    """What a rule holds for one open event: its id and step, and the last box seen."""

    event_id: uuid.UUID | None
    seq: int
    score: float
    box: tuple[float, float, float, float]
    box_px: tuple[int, int, int, int]


def held_transition(
    held: Held,
    step: Literal["new", "update", "end"],
    now: datetime,
    *,
    label: str,
    start: float,
    last: float,
    kind: str,
    zone: str,
    attributes: dict[str, str | int | float | bool | None],
    reason: str | None = None,
    snapshot: bool = False,
) -> Transition:
    """A step of a held event (``start`` and ``last``, the last sighting, in epoch s):
    the score clamped to [0, 1], an end time on ``end``, the reason among the attributes."""
    assert held.event_id is not None
    if reason is not None:
        attributes["reason"] = reason
    return Transition(
        type=step,
        event_id=held.event_id,
        seq=held.seq,
        label=label,
        start_time=datetime.fromtimestamp(start, UTC),
        frame_time=now,
        score=round(min(1.0, max(0.0, held.score)), 4),
        box=held.box,
        box_px=held.box_px,
        end_time=datetime.fromtimestamp(last, UTC) if step == "end" else None,
        snapshot=snapshot,
        kind=kind,
        zone=zone,
        attributes=attributes,
    )


@dataclass
class Reading:
    """A measurement over time (a count, an occupancy, a level): published on the
    camera's readings topic, stored in one table at the hub, charted on the dashboard."""

    time: datetime
    values: dict[str, float | None]
    units: dict[str, str] = field(default_factory=dict)
    period_s: float | None = None  # the interval it covers (counts), or between readings
    state: str | None = None  # a named state when the analytic has one (free/slow/jammed)


@dataclass
class Observation:
    """Something one analytic saw that another on the same camera may use."""

    kind: str  # e.g. "plate"
    time: datetime
    data: dict[str, Any]


@dataclass
class Outputs:
    transitions: list[Transition] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)  # published as they are
    observations: list[Observation] = field(default_factory=list)

    def __iadd__(self, other: Outputs) -> Outputs:
        self.transitions += other.transitions
        self.readings += other.readings
        self.messages += other.messages
        self.observations += other.observations
        return self

    def __bool__(self) -> bool:
        return bool(self.transitions or self.readings or self.messages or self.observations)


@dataclass
class Schedule:
    """How the worker runs an analytic: how often, on which model's detections."""

    period_s: float
    model: str | None = None  # detections of this model (the box's shared fair engine)
    min_score: float = 0.25
    priority: float = 1.0
    motion_gating: bool = False  # skip inference when nothing moved in motion_zone
    motion_threshold: float = 0.01
    motion_zone: list[Point] | None = None  # None: the whole frame
    packets_s: float = 0.0  # keep this much of the camera's video for evidence clips
    packets_mb: float = 0.0
    full_frame: bool = False  # the analytic decodes whole frames (flood): no thumbnail


@dataclass
class Sample:
    """One analysed frame: the frame, its time, and the detections of the model asked for."""

    frame: Any  # edge.ingest.reader.Frame: bgr(), time, mono, width, height
    time: datetime
    wh: tuple[int, int]
    detections: Detections | None = None
    mono: float = 0.0

    def bgr(self) -> Any:
        return self.frame.bgr()


@dataclass
class CameraContext:
    """What the worker lends an analytic of one camera."""

    camera: Any  # edge.config.CameraConfig
    site: str
    edge_id: str
    class_names: Callable[[str], tuple[str, ...]]
    detector: Callable[[str], Any]  # a dedicated detector for a model (multi-label use)
    subscribe: Callable[[str, Callable[[str, bytes], None]], None]
    plate_reader: Callable[[], Any]  # the box's plate reader, or None (logged why)
    ring: PacketRing | None = None  # the camera's recent video, when an analytic asked
    frame_wh: tuple[int, int] = (0, 0)
    state_dir: Path | None = None  # where an analytic may keep state across restarts


class Analytic:
    """Base of runtime objects: defaults for the optional hooks, kind/zone stamping."""

    schedule: Schedule
    kind: str = "object"  # the default kind of its transitions
    zone: str = "frame"  # the default zone name of its transitions

    def update(self, sample: Sample) -> Outputs:
        raise NotImplementedError

    def tick(self, now: datetime) -> Outputs:
        """Called about once a second, frames or not (dead stream, due evidence)."""
        return Outputs()

    def observe(self, obs: Observation) -> Outputs:
        """An observation by another analytic of the camera (see ``consumes``)."""
        return Outputs()

    def close(self, now: datetime) -> Outputs:
        """The worker stops: end what is open so no event stays open at the hub."""
        return Outputs()

    def out(self, transitions: list[Transition], **more: Any) -> Outputs:
        for t in transitions:
            t.kind = t.kind or self.kind
            t.zone = t.zone or self.zone
        return Outputs(transitions=transitions, **more)
