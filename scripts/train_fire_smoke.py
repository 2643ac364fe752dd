#!/usr/bin/env python
"""Fine-tune YOLOX-Nano (COCO weights) into the fire/smoke detector the product ships.

    pip install -e .[train]            # torch (CPU build: torch==2.13.0) and onnx
    python scripts/train_fire_smoke.py --data ../shared/assets/datasets/fire_smoke_ccby4 \
        --weights ../shared/assets/models/yolox_nano.onnx --out models/fire_smoke_nano.onnx

A thin wrapper: the training itself is ``scripts/train_yolo.py`` (one trainer for every
detector the project ships, so they share network, loss, augmentation and export). This
keeps the command in the fire/smoke model card working: ``--data DIR`` means
``--train DIR/train --valid DIR/valid`` and the classes default to ``fire,smoke`` (the
dataset's ``default`` class boxes whole frames with no fire: learnt as background). Every
other option is passed through (see ``train_yolo.py --help``). The test split is never read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def translate(argv: list[str]) -> list[str]:
    """This script's arguments as ``train_yolo.py`` arguments."""
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared/assets/datasets/fire_smoke_ccby4"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "models/fire_smoke_nano.onnx")
    ap.add_argument("--classes", default="fire,smoke")
    known, rest = ap.parse_known_args(argv)
    return [
        "--train", str(known.data / "train"),
        "--valid", str(known.data / "valid"),
        "--classes", known.classes,
        "--out", str(known.out),
        *rest,
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    import train_yolo

    return train_yolo.main(translate(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    raise SystemExit(main())
