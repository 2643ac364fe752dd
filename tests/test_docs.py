import json
from pathlib import Path

from edgewatch.contract import json_schemas

ROOT = Path(__file__).resolve().parents[1]


def test_published_json_schemas_match_the_code() -> None:
    for name, schema in json_schemas().items():
        path = ROOT / "docs" / "schemas" / f"{name}.schema.json"
        assert path.exists(), f"run: edgewatch schemas  (missing {path})"
        assert json.loads(path.read_text()) == schema, f"{path} is stale: run edgewatch schemas"
        assert f"schemas/{name}.schema.json" in (ROOT / "docs" / "mqtt.md").read_text()
