"""The analytics registry: plugins found by the package scan, and what is derived from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge.analytics import registry
from edge.analytics.base import AnalyticConfig, AnalyticPlugin
from edge.config import EdgeConfig
from edgewatch.configfile import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = (
    "objects", "flood", "fire", "burning", "traffic", "line_count", "congestion",
    "sidewalk_encroachment", "illegal_parking", "crowd", "intrusion", "watchlist",
)  # fmt: skip


def _run(*code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "\n".join(code)], capture_output=True, text=True, cwd=ROOT
    )


def test_every_required_analytic_is_registered_with_its_manifest() -> None:
    found = registry.plugins()
    missing = [t for t in REQUIRED if t not in found]
    assert not missing, missing
    for t, p in found.items():
        assert isinstance(p, AnalyticPlugin) and p.type == t
        assert issubclass(p.config, AnalyticConfig)
        # the config's type literal is the plugin's type (the union's discriminator)
        assert p.config.model_fields["type"].annotation.__args__ == (t,)  # type: ignore[union-attr]
        module, _, attr = p.runtime.partition(":")
        assert module.startswith("edge.analytics.plugins.") and attr


def test_analytics_list_prints_every_type_with_kinds_and_needs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "edgewatch.cli", "analytics", "list", "--json"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout  # fmt: skip
    doc = {a["type"]: a for a in json.loads(out)}
    assert set(REQUIRED) <= set(doc)
    assert {k["name"] for k in doc["fire"]["kinds"]} == {"forest_fire", "smoke", "straw_burning"}
    assert next(k for k in doc["fire"]["kinds"] if k["name"] == "forest_fire")["urgent"]
    assert all(k["review"] for k in doc["traffic"]["kinds"])
    assert "plate" in doc["watchlist"]["consumes"]
    text = subprocess.run(
        [sys.executable, "-m", "edgewatch.cli", "analytics", "list"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout  # fmt: skip
    for t in REQUIRED:
        assert f"\n{t} " in "\n" + text, t


def test_the_hub_imports_manifests_only_and_the_edge_no_web_stack() -> None:
    heavy_edge = ("cv2", "av", "onnxruntime", "numpy")
    heavy_hub = ("fastapi", "sqlalchemy", "argon2", "pywebpush", "uvicorn")
    r = _run(
        "import sys, central.app, edge.analytics.registry as r",
        "r.plugins(); r.kinds()",
        f"print([m for m in {heavy_edge!r} if m in sys.modules])",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", f"the hub imported {r.stdout.strip()}"
    r = _run(
        "import sys, edge.worker, edge.config",
        "import edge.analytics.registry as r",
        "[p.build for p in r.plugins().values()]",
        f"print([m for m in {heavy_hub!r} if m in sys.modules])",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", f"the edge imported {r.stdout.strip()}"


def test_a_config_union_member_per_plugin_with_key_paths_in_errors(tmp_path: Path) -> None:
    cfg = EdgeConfig.model_validate(
        {"edge_id": "e1", "site": "s", "cameras": [{"id": "c", "url": "rtsp://x/y",
         "analytics": [{"classes": ["car"]}, {"type": "fire", "motion_gating": True}]}]}
    )  # fmt: skip
    a0, a1 = cfg.cameras[0].analytics
    assert a0.type == "objects" and a1.type == "fire" and a1.motion_gating is True
    bad = tmp_path / "edge.yaml"
    bad.write_text(
        yaml.safe_dump(
            {"edge_id": "e1", "site": "s", "cameras": [{"id": "c", "url": "rtsp://x/y",
             "analytics": [{"type": "crowd", "zone": [[0, 0], [1, 0]]}]}]}
        )  # fmt: skip
    )
    with pytest.raises(ConfigError) as err:
        load_config(bad, EdgeConfig)
    lines = err.value.lines()
    assert any(str(bad) in ln and "cameras.0.analytics.0.zone" in ln for ln in lines), lines
    bad.write_text(
        yaml.safe_dump(
            {"edge_id": "e1", "site": "s", "cameras": [{"id": "c", "url": "rtsp://x/y",
             "analytics": [{"type": "no_such_thing"}]}]}
        )  # fmt: skip
    )
    with pytest.raises(ConfigError) as err:
        load_config(bad, EdgeConfig)
    assert any("cameras.0.analytics.0" in ln for ln in err.value.lines()), err.value.lines()


def test_kind_lists_come_from_the_manifests() -> None:
    kinds = registry.kinds()
    assert kinds["forest_fire"].urgent and kinds["forest_fire"].incident == "fire"
    assert "camera_offline" in registry.kinds_where(roles="ranger")
    assert set(registry.kinds_where(incident="fire")) == {"forest_fire", "smoke", "straw_burning"}
    review = set(registry.kinds_where(review=True))
    assert {"red_light", "wrong_way", "no_stopping"} <= review
    assert {"sidewalk_encroachment", "illegal_parking"} <= review
    assert "flood_level" not in review and "crowd" not in review
