"""The analytics registry: plugins found by a package scan, and what is derived from them.

Every package under ``edge.analytics.plugins`` declaring ``PLUGINS`` (a tuple of
``AnalyticPlugin``) is an analytic; so is any ``edgewatch.analytics`` entry point of an
installed distribution (an analytic shipped apart from edgewatch). From them come the
config's discriminated union, ``edgewatch analytics list`` and the hub's kind lists
(urgent, review, rangers', incidents). Importing this module imports manifests only:
pydantic models and declarations, never numpy, OpenCV or onnxruntime.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from functools import cache
from importlib import metadata
from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag

from edge.analytics.base import AnalyticPlugin, KindSpec

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "edgewatch.analytics"
DEFAULT_TYPE = "objects"  # an analytic without ``type:`` (configs from the first release)

# Kinds the hub itself raises (not an analytic's): the camera watchdog.
HUB_KINDS = (
    KindSpec(
        "camera_offline",
        severity="system",
        roles=("ranger",),
        description="a camera sent no frames for longer than the grace time",
    ),
)


def _from_package() -> list[AnalyticPlugin]:
    import edge.analytics.plugins as pkg

    out: list[AnalyticPlugin] = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        out += list(getattr(module, "PLUGINS", ()))
    return out


def _from_entry_points() -> list[AnalyticPlugin]:
    out: list[AnalyticPlugin] = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            found = ep.load()
        except Exception as exc:  # a broken third-party plugin must not stop the box
            log.error(
                "analytic plugin failed to load", extra={"entry_point": ep.name, "error": str(exc)}
            )
            continue
        out += list(found if isinstance(found, tuple | list) else [found])
    return out


@cache
def plugins() -> dict[str, AnalyticPlugin]:
    """Every analytic type, by its ``type`` literal."""
    found: dict[str, AnalyticPlugin] = {}
    for p in _from_package() + _from_entry_points():
        if p.type in found:
            raise RuntimeError(f"analytic type {p.type!r} is declared twice")
        found[p.type] = p
    return found


def plugin(type_: str) -> AnalyticPlugin:
    try:
        return plugins()[type_]
    except KeyError:
        raise KeyError(f"unknown analytic type {type_!r}; known: {', '.join(plugins())}") from None


def plugin_for(cfg: Any) -> AnalyticPlugin:
    return plugin(str(cfg.type))


def _analytic_type(value: object) -> str:
    if isinstance(value, dict):
        return str(value.get("type", DEFAULT_TYPE))
    return str(getattr(value, "type", DEFAULT_TYPE))


def config_union() -> Any:
    """The discriminated union of every plugin's config model (for ``analytics:``)."""
    members = tuple(Annotated[p.config, Tag(t)] for t, p in plugins().items())
    return Annotated[Union[members], Discriminator(_analytic_type)]  # noqa: UP007


@cache
def kinds() -> dict[str, KindSpec]:
    """Every event kind, by name: the analytics' and the hub's own."""
    out: dict[str, KindSpec] = {}
    for p in plugins().values():
        for k in p.kinds:
            out.setdefault(k.name, k)
    for k in HUB_KINDS:
        out.setdefault(k.name, k)
    return out


def kinds_where(**match: Any) -> tuple[str, ...]:
    """Kind names whose spec has each given attribute value (``roles`` matches by member)."""
    out = []
    for name, spec in kinds().items():
        ok = True
        for key, want in match.items():
            have = getattr(spec, key)
            ok = ok and ((want in have) if key == "roles" else have == want)
        if ok:
            out.append(name)
    return tuple(out)
