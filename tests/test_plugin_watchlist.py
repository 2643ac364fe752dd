"""The ``watchlist`` analytic, built through the registry with a small fake camera context:
the list arrives on the subscribed config topic, a plate observation of the traffic
analytic on it gives one urgent alert; near misses, stale and forged lists give nothing."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from edge.analytics import registry
from edge.analytics.base import CameraContext, Observation, Outputs
from edge.analytics.plugins.watchlist import runtime as wl_runtime
from edge.analytics.plugins.watchlist.evaluation import evaluate
from edgewatch import contract

T0 = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
SITE = "hue"


class FakeEdge:
    """What the worker lends: ``subscribe`` keeps ONE callback per topic, as
    ``edge.transport.publisher.Publisher.subscribe`` does; ``send`` plays the broker."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.edge_id = f"edge-{uuid.uuid4().hex[:8]}"  # a fresh topic: lists are per topic
        self.subs: dict[str, Callable[[str, bytes], None]] = {}
        self.state_dir = state_dir

    @property
    def topic(self) -> str:
        return contract.watchlist_topic(SITE, self.edge_id)

    def ctx(self) -> CameraContext:
        ctx = CameraContext(
            camera=None,
            site=SITE,
            edge_id=self.edge_id,
            class_names=lambda model: ("person", "bicycle", "car", "motorcycle"),
            detector=lambda model: None,
            subscribe=self.subs.__setitem__,
            plate_reader=lambda: None,
        )
        if self.state_dir is not None:
            ctx.state_dir = self.state_dir  # type: ignore[attr-defined]
        return ctx

    def build(self, **cfg: Any) -> Any:
        plugin = registry.plugin("watchlist")
        return plugin.build(plugin.config(type="watchlist", **cfg), self.ctx())

    def send(self, payload: bytes, topic: str | None = None) -> None:
        topic = topic or self.topic
        for pattern, callback in list(self.subs.items()):
            if pattern == topic:
                callback(topic, payload)


def listing(version: int, *entries: tuple[str, str | None, int]) -> bytes:
    msg = contract.WatchlistMessage(
        version=version,
        updated_at=T0,
        entries=[contract.WatchlistEntry(plate=p, reason=r, id=i) for p, r, i in entries],
    )
    return msg.model_dump_json().encode()


def read(plate: str | None, at_s: float = 0.0, **data: Any) -> Observation:
    """A plate observation as ``edge.analytics.plugins.traffic.runtime._plates`` makes it."""
    return Observation(
        "plate",
        T0 + timedelta(seconds=at_s),
        {
            "plate": plate,
            "event_id": data.pop("event_id", str(uuid.uuid4())),
            "rule": "red_light",
            "label": "car",
            "box": (0.40, 0.50, 0.62, 0.71),
            "box_px": (512, 360, 794, 511),
            **data,
        },
    )


def alerts(out: Outputs) -> list[Any]:
    return [t for t in out.transitions if t.type == "new"]


STOLEN = ("30A12345", "reported stolen", 7)
OTHER = ("51F31118", None, 8)


# -- the manifest ---------------------------------------------------------------------------


def test_manifest_declares_an_urgent_kind_fed_by_plates() -> None:
    p = registry.plugin("watchlist")
    assert p.consumes == ("plate",) and set(p.needs) == {"mqtt", "plates"}
    (kind,) = p.kinds
    assert (kind.name, kind.severity, kind.urgent) == ("watchlist", "urgent", True)
    assert "watchlist" in registry.kinds_where(urgent=True)
    union = TypeAdapter(registry.config_union())
    cfg = union.validate_python({"type": "watchlist"})
    assert (cfg.name, cfg.cooldown_s, cfg.topic) == ("watchlist", 300.0, None)
    with pytest.raises(ValidationError, match="wildcards"):
        union.validate_python({"type": "watchlist", "topic": "edgewatch/v1/config/#"})
    with pytest.raises(ValidationError):
        union.validate_python({"type": "watchlist", "cooldown_s": -1})


def test_normalize_plate_is_exact_and_refuses_what_it_cannot_keep() -> None:
    assert contract.normalize_plate("30a-123.45") == "30A12345"
    assert contract.normalize_plate(" 59C2 316.01 ") == "59C231601"
    for bad in ("30Á-12345", "３０A12345", "ab1", "1234567890123", "30A\x0012345", "straße1"):
        with pytest.raises(ValueError):
            contract.normalize_plate(bad)


# -- matches ----------------------------------------------------------------------------------


def test_a_listed_plate_read_by_traffic_gives_one_urgent_alert() -> None:
    edge = FakeEdge()
    analytic = edge.build()
    assert list(edge.subs) == [edge.topic] == [f"edgewatch/v1/config/hue/{edge.edge_id}/watchlist"]
    assert analytic.schedule.model is None and analytic.schedule.period_s >= 600
    assert not analytic.observe(read("30A-123.45"))  # no list yet: nothing to match
    edge.send(listing(3, STOLEN, OTHER))
    source = str(uuid.uuid4())
    out = analytic.observe(read("30A-123.45", 1.0, event_id=source))
    assert [t.type for t in out.transitions] == ["new", "end"]
    new, end = out.transitions
    assert new.event_id == end.event_id and (new.seq, end.seq) == (0, 1)
    assert new.kind == end.kind == "watchlist"
    assert new.label == "car" and new.score == 1.0
    assert new.box == (0.40, 0.50, 0.62, 0.71) and new.box_px == (512, 360, 794, 511)
    assert new.start_time == new.frame_time == end.end_time == T0 + timedelta(seconds=1)
    assert new.attributes == {
        "plate": "30A-123.45",
        "plate_list_id": 7,
        "plate_list_reason": "reported stolen",
        "plate_list_version": 3,
        "source_event_id": source,
        "source_rule": "red_light",
    }
    # the hub hides attributes starting with "plate" from roles without evidence: the
    # plate and why it is listed must be among them (the label is the vehicle class)
    assert all(k.startswith("plate") for k in new.attributes if "list" in k or k == "plate")
    assert alerts(analytic.observe(read("51F-311.18", 2.0)))[0].attributes["plate_list_id"] == 8
    assert not analytic.update(None) and not analytic.close(T0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "plate",
    [
        "30A-123.46",  # one digit off
        "30A-I23.45",  # a look-alike letter for a digit
        "30A-123.54",  # two digits transposed
        "30A-1234",  # one character short (an older, valid format)
        "30A-123.456",  # one character long
        "29A-123.45",  # another province
        "30B-123.45",  # another series
        None,  # the reader was not sure
        "",
        "30A-123.45 ✓",  # not a plate the list could hold
    ],
)
def test_near_misses_give_nothing(plate: str | None) -> None:
    edge = FakeEdge()
    analytic = edge.build()
    edge.send(listing(1, STOLEN))
    assert alerts(analytic.observe(read(plate))) == []
    assert alerts(analytic.observe(read("30A-123.45", 1)))  # the list was there


def test_other_observation_kinds_are_ignored() -> None:
    edge = FakeEdge()
    analytic = edge.build()
    edge.send(listing(1, STOLEN))
    assert not analytic.observe(Observation("vehicle", T0, {"plate": "30A-123.45"}))


# -- the list: versions, forgeries ----------------------------------------------------------


def test_an_older_list_is_refused_and_a_removal_takes_effect() -> None:
    edge = FakeEdge()
    analytic = edge.build()
    edge.send(listing(5, STOLEN))
    edge.send(listing(4, STOLEN, OTHER))  # stale: would add OTHER
    assert not analytic.observe(read("51F-311.18"))
    assert alerts(analytic.observe(read("30A-123.45")))
    edge.send(listing(6, OTHER))  # STOLEN taken off
    assert not analytic.observe(read("30A-123.45", 1000))
    assert alerts(analytic.observe(read("51F-311.18", 1000)))
    edge.send(listing(5, STOLEN))  # the stale retained copy again
    assert not analytic.observe(read("30A-123.45", 2000))
    assert analytic.watchlist.version == 6 and analytic.watchlist.refused == 2


def _doc(**changes: Any) -> dict[str, Any]:
    doc = json.loads(listing(9, STOLEN, OTHER))
    doc.update(changes)
    return doc


FORGED = {
    "not JSON": b"{not json",
    "not UTF-8": b'{"version": 9, "\xff": 1}',
    "NaN version": json.dumps(_doc()).replace('"version": 9', '"version": NaN').encode(),
    "unknown field": json.dumps(_doc(origin="edge-b")).encode(),
    "schema version 2": json.dumps(_doc(schema_version=2)).encode(),
    "no version": json.dumps({k: v for k, v in _doc().items() if k != "version"}).encode(),
    "plate not normalized": json.dumps(
        _doc(entries=[{"plate": "30A-123.45", "reason": None, "id": 1}])
    ).encode(),
    "plate listed twice": json.dumps(
        _doc(entries=[{"plate": "30A12345", "id": 1}, {"plate": "30A12345", "id": 2}])
    ).encode(),
    "naive time": json.dumps(_doc(updated_at="2026-12-10T08:00:00")).encode(),
    "reason too long": json.dumps(
        _doc(entries=[{"plate": "30A12345", "reason": "x" * 201, "id": 1}])
    ).encode(),
    "too many entries": json.dumps(
        _doc(entries=[{"plate": f"AB{i:06d}", "id": i + 1} for i in range(10_001)])
    ).encode(),
    "too large": b" " * (contract.WATCHLIST_MAX_BYTES + 1),
}


@pytest.mark.parametrize("name", list(FORGED))
def test_a_malformed_or_forged_list_is_refused_and_logged(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    edge = FakeEdge()
    analytic = edge.build()
    edge.send(listing(1, OTHER))
    with caplog.at_level(logging.WARNING, logger=wl_runtime.__name__):
        edge.send(FORGED[name])
    assert any(r.getMessage().startswith("watch list refused") for r in caplog.records)
    assert "30A12345" not in caplog.text and "30A-123.45" not in caplog.text  # no plates
    assert not analytic.observe(read("30A-123.45"))  # the forged list did not apply
    assert alerts(analytic.observe(read("51F-311.18")))  # the last valid one still does
    assert analytic.watchlist.version == 1


# -- cooldown, cameras, state file ----------------------------------------------------------


def test_one_alert_per_plate_per_cooldown() -> None:
    edge = FakeEdge()
    analytic = edge.build(cooldown_s=300)
    edge.send(listing(1, STOLEN, OTHER))
    assert alerts(analytic.observe(read("30A-123.45", 0)))
    assert not analytic.observe(read("30A 123 45", 60))  # the same car, another violation
    assert alerts(analytic.observe(read("51F-311.18", 61)))  # another plate: its own alert
    assert not analytic.observe(read("30A-123.45", 299.9))
    assert alerts(analytic.observe(read("30A-123.45", 300.0)))
    assert not analytic.observe(read("30A-123.45", 150))  # a clock stepped back: not flooded
    zero = edge.build(cooldown_s=0)  # every sighting
    assert alerts(zero.observe(read("30A-123.45", 0))) and alerts(zero.observe(read("30A-123.45")))


def test_cameras_of_one_edge_share_the_newest_list() -> None:
    # Publisher.subscribe keeps one callback per topic: the second camera's subscription
    # replaces the first's, and still both cameras must follow every change.
    edge = FakeEdge()
    cam1, cam2 = edge.build(), edge.build()
    assert len(edge.subs) == 1
    edge.send(listing(1, STOLEN))
    assert alerts(cam1.observe(read("30A-123.45"))) and alerts(cam2.observe(read("30A-123.45")))
    edge.send(listing(2, OTHER))
    assert not cam1.observe(read("30A-123.45", 900)) and not cam2.observe(read("30A-123.45", 900))


def test_the_list_is_kept_in_the_state_folder(tmp_path: Path) -> None:
    edge = FakeEdge(tmp_path / "state")
    edge.build()
    edge.send(listing(4, STOLEN))
    file = tmp_path / "state" / wl_runtime.STATE_FILE
    assert json.loads(file.read_text())["topic"] == edge.topic
    assert [p.name for p in file.parent.iterdir()] == [file.name]  # no temporary left
    # a restart without the broker: the list comes from the file
    again = wl_runtime.WatchList(edge.topic, file)
    assert again.version == 4 and again.lookup("30A12345") is not None
    # ... an older list is still refused after the restart
    assert not again.apply(listing(3, OTHER)) and again.lookup("51F31118") is None
    # a damaged file or one of another topic is not believed
    file.write_text('{"topic": "x", "message": {}}')
    assert wl_runtime.WatchList(edge.topic, file).version is None
    file.write_bytes(b"\x00garbage")
    assert wl_runtime.WatchList(edge.topic, file).version is None


def test_the_scripted_evaluation_holds() -> None:
    for seed in range(3):
        result = evaluate(seed)
        assert result["fp"] == 0 and result["fn"] == 0, result["notes"]
        assert result["scenarios"] >= 15 and result["near_misses"] >= 10
