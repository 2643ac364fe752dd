"""Loading declarative YAML configs into pydantic models, with clear errors.

A broken config never starts anything: ``ConfigError`` carries one line per
problem, each ``FILE: key.path: message``, which the CLI prints before exiting 2.
Environment variables ``EDGEWATCH_<KEY>[__<SUBKEY>...]`` override file values
(``EDGEWATCH_MQTT__PASSWORD=...``); only names that match a field are applied.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
ENV_PREFIX = "EDGEWATCH_"


class ConfigError(Exception):
    def __init__(self, path: str | Path, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{self.path}: {p}" for p in self.problems]


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def format_validation_error(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        # Drop the tag pydantic adds for union members ("objects", "function-after").
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        # ... and the analytic type tag (whatever plugin it names):
        # cameras.0.analytics.1.flood.line -> ...analytics.1.line
        loc = tuple(
            p
            for i, p in enumerate(loc)
            if not (isinstance(p, str) and i >= 2 and loc[i - 2] == "analytics")
        )
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling)"
        out.append(f"{_loc(loc)}: {msg}")
    return out


def _coerce(raw: str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _set_path(data: dict[str, Any], keys: list[str], value: Any) -> None:
    node: Any = data
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(node, list):
            idx = int(key)
            if last:
                node[idx] = value
            else:
                node = node[idx]
            continue
        if last:
            node[key] = value
        else:
            if not isinstance(node.get(key), dict | list):
                node[key] = {}
            node = node[key]


def apply_env_overrides(
    data: dict[str, Any], model: type[BaseModel], environ: Mapping[str, str]
) -> dict[str, Any]:
    fields = set(model.model_fields)
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__")]
        if keys[0] not in fields:
            continue
        try:
            _set_path(data, keys, _coerce(raw))
        except (IndexError, ValueError, TypeError) as exc:
            raise ConfigError(f"${name}", [f"cannot apply override: {exc}"]) from exc
    return data


def load_config(path: str | Path, model: type[M], environ: Mapping[str, str] | None = None) -> M:
    """Read ``path`` (YAML), apply env overrides and validate into ``model``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [f"cannot read: {exc.strerror or exc}"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        raise ConfigError(path, [f"{where}: {getattr(exc, 'problem', exc)}"]) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, ["(top level): must be a mapping of keys to values"])
    data = apply_env_overrides(data, model, os.environ if environ is None else environ)
    return validate_config(data, model, path)


def validate_config(data: dict[str, Any], model: type[M], path: str | Path = "<config>") -> M:
    try:
        cfg = model.model_validate(data, context={"config_dir": Path(path).parent})
    except ValidationError as exc:
        raise ConfigError(path, format_validation_error(exc)) from exc
    return cfg
