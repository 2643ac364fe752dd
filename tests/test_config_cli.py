from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge.config import EdgeConfig
from edge.inference.registry import ModelError, ModelMissing, Registry
from edgewatch.cli import main
from edgewatch.configfile import ConfigError, load_config
from edgewatch.logs import JsonFormatter, redact_url

ROOT = Path(__file__).resolve().parents[1]
EDGE_OK = """
edge_id: edge-01
site: hue
mqtt: {url: "mqtt://127.0.0.1:1883", username: edge, password: hunter2}
cameras:
  - id: cam-1
    url: rtsp://admin:pw@10.0.0.5/stream1
    analytics: [{type: objects, classes: [car], zone: [[0,0],[1,0],[1,1]]}]
"""


def test_example_configs_pass_check(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("edge.example.yaml", "hub.example.yaml"):
        assert main(["config", "check", str(ROOT / "configs" / name)]) == 0
    assert capsys.readouterr().out.count(": ok (") == 2


def test_broken_config_names_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "edge.yaml"
    f.write_text(
        "edge_id: e1\nsite: hue\nmqtt: {url: 'http://x'}\ncameras:\n"
        "  - {id: c1, url: rtsp://h/s, analytics: [{type: objects, fps: 0,"
        " min_scor: 0.3}]}\n  - {id: c1, url: rtsp://h/t}\n"
    )
    assert main(["config", "check", str(f)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert f"{f}: mqtt.url: scheme must be mqtt:// or mqtts://" in err
    assert f"{f}: cameras.0.analytics.0.fps: Input should be greater than 0" in err
    assert f"{f}: cameras.0.analytics.0.min_scor: unknown key (check its spelling)" in err


def test_duplicate_camera_unknown_class_yaml_error_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dup = tmp_path / "dup.yaml"
    dup.write_text("edge_id: e1\nsite: hue\ncameras: [{id: a, url: x.mp4}, {id: a, url: y.mp4}]\n")
    assert main(["config", "check", str(dup)]) == 2
    assert "duplicate camera id 'a'" in capsys.readouterr().err
    cls = tmp_path / "cls.yaml"
    cls.write_text(
        "edge_id: e1\nsite: hue\ncameras: [{id: a, url: x.mp4,"
        " analytics: [{type: objects, classes: [dragon]}]}]\n"
    )
    assert main(["config", "check", str(cls)]) == 2
    assert f"{cls}: cameras.0.analytics.0.classes: ['dragon'] not in model" in (
        capsys.readouterr().err
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("edge_id: [unclosed\n")
    assert main(["config", "check", str(broken)]) == 2
    assert f"{broken}: line " in capsys.readouterr().err
    assert main(["config", "check", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_env_overrides(tmp_path: Path) -> None:
    f = tmp_path / "edge.yaml"
    f.write_text(EDGE_OK)
    cfg = load_config(
        f,
        EdgeConfig,
        environ={
            "EDGEWATCH_MQTT__PASSWORD": "from-env",
            "EDGEWATCH_CAMERAS__0__URL": "rtsp://cam/other",
            "EDGEWATCH_SPOOL_MAX_MB": "12",
            "EDGEWATCH_MODEL_MIRROR": "/not/a/config/key",
        },
    )
    assert cfg.mqtt.password is not None and cfg.mqtt.password.get_secret_value() == "from-env"
    assert cfg.cameras[0].url == "rtsp://cam/other" and cfg.spool_max_mb == 12
    with pytest.raises(ConfigError) as exc:
        load_config(f, EdgeConfig, environ={"EDGEWATCH_SPOOL_MAX_MB": "lots"})
    assert exc.value.lines() == [
        f"{f}: spool_max_mb: Input should be a valid number, unable to parse string as a number"
    ]
    assert "from-env" not in repr(cfg)  # secrets stay out of reprs and logs


def test_logs_redact_credentials() -> None:
    assert redact_url("rtsp://admin:pw@10.0.0.5:554/s") == "rtsp://***@10.0.0.5:554/s"
    assert (
        redact_url("see rtsps://u@h/x and http://a:b@c") == "see rtsps://***@h/x and http://***@c"
    )
    rec = logging.makeLogRecord(
        {
            "msg": "open %s",
            "args": ("rtsp://a:b@h/s",),
            "levelname": "INFO",
            "password": "hunter2",
            "url": "rtsp://a:b@h/s",
        }
    )
    line = JsonFormatter().format(rec)
    assert "hunter2" not in line and "a:b@" not in line and '"password": "***"' in line


def test_models_pull_verify_and_missing(
    tmp_path: Path, assets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "models"
    reg = Registry(d)
    with pytest.raises(ModelMissing, match="edgewatch models pull yolox_nano"):
        reg.resolve("yolox_nano")
    assert (
        main(["models", "pull", "yolox_nano", "--dir", str(d), "--mirror", str(assets / "models")])
        == 0
    )
    assert main(["models", "verify", "yolox_nano", "--dir", str(d)]) == 0
    (d / "yolox_nano.onnx").write_bytes(b"tampered")
    assert main(["models", "verify", "yolox_nano", "--dir", str(d)]) == 1
    assert "yolox_nano: bad-checksum" in capsys.readouterr().out
    bad_mirror = tmp_path / "mirror"
    bad_mirror.mkdir()
    (bad_mirror / "yolox_nano.onnx").write_bytes(b"not the model")
    with pytest.raises(ModelError, match="does not match the manifest"):
        Registry(tmp_path / "m2").pull("yolox_nano", mirror=bad_mirror)
    assert not (tmp_path / "m2" / "yolox_nano.onnx").exists()
    with pytest.raises(ModelError, match="unknown model id"):
        reg.spec("nope")
    assert main(["models", "list", "--dir", str(d)]) == 0
    assert "openlenda_nano" in capsys.readouterr().out


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["edge", "run"],
        ["hub", "run"],
        ["broker", "run"],
        ["demo"],
        ["config", "check"],
        ["models", "list"],
        ["models", "pull"],
        ["models", "verify"],
    ):
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--help"])
        assert exc.value.code == 0
        assert "usage: edgewatch" in capsys.readouterr().out
