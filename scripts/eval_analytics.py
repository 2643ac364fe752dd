"""Scripted evaluation of every analytic plugin that ships one (``evaluation.py``).

Each plugin's ``evaluate(seed)`` runs scenarios made of synthetic tracks or detections,
true cases and near misses (a vehicle stopping just short of a line, a dwell a second too
short, a crowd hovering under its threshold), and counts true and false positives and
misses. These figures are unit tests of the rules on scripted input, never accuracy on
real data: the real-data evaluations are ``eval_count.py`` (the highway clip),
``eval_traffic.py``, ``eval_plates.py``, ``eval_signal.py`` and ``eval_flood_real.py``.

    python scripts/eval_analytics.py --json docs/benchmarks/eval_analytics.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.analytics import registry  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    results: dict[str, dict] = {}
    seen: set[str] = set()
    for p in registry.plugins().values():
        package = p.runtime.partition(":")[0].rsplit(".", 1)[0]
        if package in seen:
            continue
        seen.add(package)
        try:
            module = importlib.import_module(f"{package}.evaluation")
        except ModuleNotFoundError:
            continue
        out = module.evaluate(args.seed)
        results[package.rsplit(".", 1)[1]] = out
    print(f"{'plugin':14} {'scen':>5} {'pos':>4} {'near':>5} {'tp':>4} {'fp':>4} {'fn':>4} "
          f"{'P':>6} {'R':>6}")  # fmt: skip
    for name, r in results.items():
        # a plugin may report one block or one per type (a folder of several plugins)
        blocks = r.get("by_type", {name: r}) if isinstance(r, dict) else {name: r}
        for sub, b in blocks.items():
            print(
                f"{sub:14} {b['scenarios']:5} {b['positives']:4} {b['near_misses']:5} "
                f"{b['tp']:4} {b['fp']:4} {b['fn']:4} {b['precision']:6.3f} {b['recall']:6.3f}"
            )
    if args.json:
        doc = {
            "data": "scripted scenarios (synthetic tracks and detections), not real data",
            "command": "python scripts/eval_analytics.py --json " + args.json,
            "seed": args.seed,
            "plugins": results,
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
