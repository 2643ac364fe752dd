"""The model registry: ``models/manifest.yaml`` plus a model directory.

``pull`` copies a model from a mirror folder (or downloads it from its official URL
when no mirror is given) and checks its sha256; ``resolve`` finds a model file for the
runtime and, when it is missing or wrong, raises ``ModelMissing`` with a one-line
message saying how to pull it. Nothing here runs implicitly at run time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MANIFEST = PROJECT_ROOT / "models" / "manifest.yaml"
SHIPPED_DIR = PROJECT_ROOT / "models"
FORMATS = ("yolox", "yolov5", "yolov8")


class ModelError(Exception):
    pass


class ModelMissing(ModelError):
    pass


@dataclass(frozen=True)
class ModelSpec:
    id: str
    file: str
    sha256: str
    url: str
    licence: str
    format: str
    classes: tuple[str, ...]
    input_width: int
    input_height: int
    pad_value: float = 114.0
    color: str = "bgr"
    scale: float = 1.0
    strides: tuple[int, ...] = (8, 16, 32)
    center: bool = False  # letterbox centred (Ultralytics) rather than top-left (YOLOX)
    threshold: float = 0.25  # the operating score threshold the model card reports
    shipped: bool = False  # the file is committed in the project's models/ folder
    # made from another model's file by a graph edit (edgewatch.onnx_batch.export) at pull
    # time, not downloaded: the file is a copy of the mirror's, changed, and is not kept here
    made_from: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def manifest_path(explicit: Path | None = None) -> Path:
    if explicit:
        return explicit
    env = os.environ.get("EDGEWATCH_MANIFEST")
    return Path(env) if env else DEFAULT_MANIFEST


def load_manifest(path: Path | None = None) -> dict[str, ModelSpec]:
    path = manifest_path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the model manifest: {exc.strerror}") from exc
    specs: dict[str, ModelSpec] = {}
    for model_id, entry in (doc.get("models") or {}).items():
        try:
            inp = entry.get("input", {})
            fmt = entry.get("format", "yolox")
            if fmt not in FORMATS:
                raise ModelError(
                    f"{path}: models.{model_id}.format: {fmt!r} is not one of {', '.join(FORMATS)}"
                )
            letterbox = inp.get("letterbox", "top_left")
            if letterbox not in ("top_left", "center"):
                raise ModelError(
                    f"{path}: models.{model_id}.input.letterbox: {letterbox!r} is not "
                    "top_left or center"
                )
            sha = str(entry["sha256"]).lower()
            if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
                raise ModelError(f"{path}: models.{model_id}.sha256: not a sha256 hex digest")
            specs[model_id] = ModelSpec(
                id=model_id,
                file=entry["file"],
                sha256=sha,
                url=entry.get("url", ""),
                licence=entry.get("licence", "unknown"),
                format=fmt,
                classes=tuple(entry["classes"]),
                input_width=int(inp.get("width", 416)),
                input_height=int(inp.get("height", 416)),
                pad_value=float(inp.get("pad_value", 114)),
                color=inp.get("color", "bgr"),
                scale=float(inp.get("scale", 1.0)),
                strides=tuple(entry.get("strides", (8, 16, 32))),
                center=letterbox == "center",
                threshold=float(entry.get("threshold", 0.25)),
                shipped=bool(entry.get("shipped", False)),
                made_from=entry.get("made_from"),
                extra={k: v for k, v in entry.items() if k in ("source", "card", "metrics")},
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ModelError(f"{path}: models.{model_id}: missing or bad key {exc}") from exc
    return specs


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_CHECKSUMS: dict[tuple[str, int, int], str] = {}


def default_mirror() -> Path | None:
    env = os.environ.get("EDGEWATCH_MODEL_MIRROR")
    return Path(env) if env else None


class Registry:
    def __init__(self, model_dir: Path, manifest: Path | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.specs = load_manifest(manifest)
        # Models trained here ship beside the manifest (models/ in the project and image).
        self.shipped_dir = manifest_path(manifest).parent

    def spec(self, model_id: str) -> ModelSpec:
        try:
            return self.specs[model_id]
        except KeyError:
            known = ", ".join(sorted(self.specs)) or "none"
            raise ModelError(f"unknown model id {model_id!r} (manifest has: {known})") from None

    def path(self, model_id: str) -> Path:
        """Where the model's file is: the model directory, else (shipped models) ``models/``."""
        spec = self.spec(model_id)
        path = self.model_dir / spec.file
        if not path.is_file() and spec.shipped and (self.shipped_dir / spec.file).is_file():
            return self.shipped_dir / spec.file
        return path

    def status(self, model_id: str) -> str:
        path = self.path(model_id)
        if not path.is_file():
            return "missing"
        return "ok" if sha256_file(path) == self.spec(model_id).sha256 else "bad-checksum"

    def resolve(self, model_id: str) -> Path:
        """The verified file of ``model_id``, or an error saying what is wrong and what to do.

        ``ModelMissing`` when there is no file; ``ModelError`` when its sha256 is not the
        manifest's (a truncated copy, or another model under the same name).
        """
        spec = self.spec(model_id)
        path = self.path(model_id)
        hint = f"run: edgewatch models pull {model_id} --dir {self.model_dir} --mirror DIR"
        if not path.is_file():
            raise ModelMissing(f"model {model_id!r} not found at {path}; {hint}")
        if path.stat().st_size == 0:
            raise ModelMissing(f"model {model_id!r} at {path} is empty; {hint}")
        got = self._checksum(path)
        if got != spec.sha256:
            raise ModelError(
                f"model {model_id!r} at {path}: sha256 {got[:12]}... is not the manifest's "
                f"{spec.sha256[:12]}...; {hint}"
            )
        return path

    def _checksum(self, path: Path) -> str:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in _CHECKSUMS:
            _CHECKSUMS[key] = sha256_file(path)
        return _CHECKSUMS[key]

    def verify(self, model_id: str) -> bool:
        return self.status(model_id) == "ok"

    def pull(self, model_id: str, mirror: Path | None = None, timeout_s: float = 60.0) -> Path:
        spec = self.spec(model_id)
        self.model_dir.mkdir(parents=True, exist_ok=True)
        dest = self.model_dir / spec.file
        if dest.is_file() and sha256_file(dest) == spec.sha256:
            return dest
        fd, tmp_name = tempfile.mkstemp(dir=self.model_dir, prefix=f".{spec.file}.")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if spec.shipped and (self.shipped_dir / spec.file).is_file():
                shutil.copyfile(self.shipped_dir / spec.file, tmp)
            elif spec.made_from:
                source = self.pull(spec.made_from, mirror=mirror, timeout_s=timeout_s)
                try:
                    from edgewatch.onnx_batch import export
                except ImportError as exc:
                    raise ModelMissing(
                        f"model {model_id!r} is made from {spec.made_from!r} with the onnx "
                        f"package ({exc}); pip install onnx, or copy {spec.file} into "
                        f"{self.model_dir}"
                    ) from exc
                export(source, tmp)
            elif mirror is not None:
                src = Path(mirror) / spec.file
                if not src.is_file():
                    raise ModelMissing(f"model {model_id!r}: {src} not found in mirror {mirror}")
                shutil.copyfile(src, tmp)
            else:
                if not spec.url.startswith("https://"):
                    raise ModelMissing(f"model {model_id!r} has no download URL; use --mirror")
                try:
                    with urllib.request.urlopen(spec.url, timeout=timeout_s) as resp:
                        with tmp.open("wb") as out:
                            shutil.copyfileobj(resp, out)
                except OSError as exc:
                    raise ModelMissing(
                        f"model {model_id!r}: download from {spec.url} failed ({exc}); "
                        "use --mirror DIR with a local copy"
                    ) from exc
            got = sha256_file(tmp)
            if got != spec.sha256:
                raise ModelError(
                    f"model {model_id!r}: sha256 {got} does not match the manifest {spec.sha256}"
                )
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest
