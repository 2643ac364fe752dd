"""Rendered flood scenes with known truth: moved into the package (``edgewatch.demo_flood``)
so that ``edgewatch demo`` can serve them as video; re-exported here for the tests and
``scripts/eval_flood.py``, which keep importing ``tests.flood_scenes``."""

from edgewatch.demo_flood import *  # noqa: F403
from edgewatch.demo_flood import _droplets, _texture  # noqa: F401
