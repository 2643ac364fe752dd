"""The ``edgewatch`` command line."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from edgewatch.configfile import ConfigError, load_config
from edgewatch.logs import setup_logging

EXIT_CONFIG = 2


def _die(lines: list[str], code: int = EXIT_CONFIG) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    return code


def _stop_event() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


# -- edge ------------------------------------------------------------------------------------


def cmd_edge_run(args: argparse.Namespace) -> int:
    from edge.config import EdgeConfig
    from edge.inference.registry import ModelError

    try:
        cfg = load_config(args.config, EdgeConfig)
    except ConfigError as exc:
        return _die(exc.lines())
    setup_logging(cfg.log_level)
    from edge.worker import EdgeWorker

    try:
        worker = EdgeWorker(cfg)
    except (ModelError, ValueError) as exc:
        return _die([f"{args.config}: {exc}"])
    worker.run_until(_stop_event())
    return 0


def cmd_edge_health(args: argparse.Namespace) -> int:
    """Ask a running worker (its /metrics) whether it is alive: exit 0 healthy, 1 not."""
    import time
    import urllib.request

    try:
        with urllib.request.urlopen(args.url, timeout=args.timeout) as r:
            text = r.read().decode()
    except OSError as exc:
        print(f"unhealthy: worker not answering at {args.url}: {exc}")
        return 1
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and " " in line:
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    beat = values.get("edgewatch_worker_heartbeat_timestamp_seconds")
    if beat is None:
        print("unhealthy: no heartbeat metric (is this an edgewatch worker?)")
        return 1
    age = time.time() - beat
    if age > args.max_age:
        print(f"unhealthy: the worker's status loop last ran {age:.0f}s ago")
        return 1
    # A thread that keeps dying (edge.supervisor restarts it) is not a healthy worker.
    failing = [
        name.partition('thread="')[2].rstrip('"}')
        for name, value in values.items()
        if name.startswith("edgewatch_worker_thread_failing{") and value >= 1
    ]
    if failing or values.get("edgewatch_worker_threads_failing", 0) >= 1:
        deaths = {
            t: int(values.get(f'edgewatch_worker_thread_deaths_total{{thread="{t}"}}', 0))
            for t in failing
        }
        listed = ", ".join(f"{t} ({n} deaths)" for t, n in deaths.items()) or "?"
        print(f"unhealthy: worker threads keep dying: {listed}")
        return 1
    print(f"healthy: heartbeat {age:.1f}s ago")
    return 0


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]], indent: str = "") -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _camera_password(args: argparse.Namespace) -> str | None:
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        print("no terminal to ask for the password: pipe it with --password-stdin", file=sys.stderr)
        return None
    return getpass.getpass(f"password of {args.user}: ")


def _camera_id(name: str, used: set[str]) -> str:
    import re

    base = re.sub(r"[^a-z0-9_.\-]+", "-", name.lower()).strip("-._")[:56] or "camera"
    cid, n = base, 2
    while cid in used:
        cid, n = f"{base}-{n}", n + 1
    used.add(cid)
    return cid


def cmd_edge_discover(args: argparse.Namespace) -> int:
    """List the ONVIF cameras on this box's networks; with credentials, their RTSP URIs."""
    import urllib.parse

    from edge import discovery

    if args.password_stdin and not args.user:
        return _die(["--password-stdin needs --user"])
    password = None
    if args.user:
        password = _camera_password(args)
        if password is None:
            return 1
    try:
        devices = discovery.discover(args.timeout)
    except discovery.DiscoveryUnavailable as exc:
        return _die([f"error: {exc}"], 1)
    if not devices:
        print(
            f"no ONVIF camera answered in {args.timeout:g} s"
            " (a probe reaches only this box's own subnets)"
        )
        return 0
    print(f"{len(devices)} ONVIF camera(s):")
    _print_table(
        ("host", "name", "hardware", "location", "device service"),
        [
            (d.host or "?", d.name or "-", d.hardware or "-", d.location or "-", d.url or "-")
            for d in devices
        ],
    )
    if password is None:
        print("\nstream URLs: add --user NAME --password-stdin (the password read from stdin)")
        return 0
    failed = 0
    chosen: list[tuple[discovery.Device, discovery.Profile]] = []
    for d in devices:
        print(f"\n{d.host} ({d.name or 'no name'}):")
        if not d.url:
            print("  error: it gave no device service address")
            failed += 1
            continue
        try:
            profiles = discovery.stream_uris(d.url, args.user, password, args.http_timeout)
        except discovery.OnvifError as exc:
            print(f"  error: {exc}")
            failed += 1
            continue
        _print_table(
            ("profile", "name", "resolution", "encoding", "stream"),
            [
                (
                    p.token,
                    p.name or "-",
                    p.resolution or "-",
                    p.encoding or "-",
                    p.uri or f"(none: {p.error})",
                )
                for p in profiles
            ],
            indent="  ",
        )
        main = next((p for p in profiles if p.uri), None)
        if main is not None:
            chosen.append((d, main))
    if chosen:
        user = urllib.parse.quote(args.user, safe="")
        used: set[str] = set()
        print("\n# for the edge config (its first profile per camera; the password is not here):")
        print("cameras:")
        env_lines = []
        for i, (d, p) in enumerate(chosen):
            uri = p.uri or ""
            parts = urllib.parse.urlsplit(uri)
            with_password = urllib.parse.urlunsplit(
                parts._replace(netloc=f"{user}:${{EDGEWATCH_CAMERA_PASSWORD}}@{parts.netloc}")
            )
            about = ", ".join(x for x in (d.name, p.token, p.resolution, p.encoding) if x)
            print(f"  - id: {_camera_id(d.name or d.host or 'camera', used)}   # {about}")
            print(f"    url: {uri}")
            env_lines.append(f'export EDGEWATCH_CAMERAS__{i}__URL="{with_password}"')
        print(
            "# the URLs with credentials come from the environment (README, Configuration);\n"
            "# the index is the camera's place under cameras: (from 0), and\n"
            "# EDGEWATCH_CAMERA_PASSWORD (URL-encoded) is set where this box keeps secrets:"
        )
        for line in env_lines:
            print(line)
    return 1 if failed else 0


# -- hub -------------------------------------------------------------------------------------


def cmd_hub_run(args: argparse.Namespace) -> int:
    from central.config import HubConfig

    try:
        cfg = load_config(args.config, HubConfig)
    except ConfigError as exc:
        return _die(exc.lines())
    setup_logging(cfg.log_level)
    import uvicorn

    from central.app import create_app
    from central.hotspots import HotspotFileError

    try:
        app = create_app(cfg)
    except HotspotFileError as exc:
        return _die([f"{args.config}: hotspots_file: {exc}"])
    uvicorn.run(
        app,
        host=args.host or cfg.http.host,
        port=args.port or cfg.http.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=3,  # live streams never end on their own
        # uvicorn would believe X-Forwarded-For from 127.0.0.1 (or $FORWARDED_ALLOW_IPS):
        # the app does that itself, from http.trusted_proxies only (default: nobody).
        proxy_headers=False,
        forwarded_allow_ips="",
    )
    return 0


# -- broker ----------------------------------------------------------------------------------


def cmd_broker_run(args: argparse.Namespace) -> int:
    from edgewatch.broker import run_broker

    setup_logging("INFO")
    return run_broker(args.host, args.port, Path(args.dir), embedded=args.embedded)


def _broker_dir(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from edgewatch.brokerauth import BrokerDir

    bd = BrokerDir(Path(args.dir))
    if not bd.exists():
        hint = f"run `edgewatch broker init --dir {args.dir}`"
        raise SystemExit(_die([f"{args.dir}: no broker folder here; {hint}"]))
    return bd


def _print_account(bd, name: str, password: str, url: str, role: str) -> None:  # type: ignore[no-untyped-def]
    import yaml

    read, write = bd.accounts()[name].grants()
    print(f"# account {name} ({role}); the password is shown once, keep it in a secret store")
    print("# broker (mosquitto): passwd and acl in", bd.path, "updated; its ACL block:")
    for t in read:
        print(f"#   read  {t}")
    for t in write:
        print(f"#   write {t}")
    snippet = {
        "mqtt": {
            "url": url,
            "username": name,
            "password": password,
            "tls": {"ca_file": str(bd.ca_file.resolve())},
        }
    }
    print(f"# {role} config snippet (copy ca.crt to the box and adjust ca_file):")
    print(yaml.safe_dump(snippet, sort_keys=False).rstrip())


def _reloaded(bd) -> None:  # type: ignore[no-untyped-def]
    if bd.reload():
        print("# a running mosquitto was told to reload (SIGHUP)")
    else:
        print("# no running broker found from this folder: restart or SIGHUP mosquitto")


def cmd_broker_init(args: argparse.Namespace) -> int:
    from edgewatch.brokerauth import BrokerDir

    bd = BrokerDir(Path(args.dir))
    bd.init(args.host or None)
    bd.conf_file.write_text(bd.mosquitto_conf(args.port, bind=args.bind))
    print(f"broker folder: {bd.path} (CA, server certificate, accounts, mosquitto.conf)")
    print(f"run it: mosquitto -c {bd.conf_file}   (or: edgewatch broker run --dir {bd.path})")
    if "hub" not in bd.accounts():
        password = bd.add("hub", "hub")
        url = f"mqtts://{(args.host or ['127.0.0.1'])[0]}:{args.port}"
        _print_account(bd, "hub", password, url, "hub")
    return 0


def cmd_broker_account(args: argparse.Namespace) -> int:
    from edgewatch.brokerauth import BrokerAuthError

    bd = _broker_dir(args)
    try:
        password = bd.add(
            args.name, args.role, site=args.site, read=args.read, write=args.write,
            replace=args.rotate,
        )  # fmt: skip
    except BrokerAuthError as exc:
        return _die([f"error: {exc}"])
    _print_account(bd, args.name, password, args.url, args.role)
    _reloaded(bd)
    return 0


def cmd_broker_revoke(args: argparse.Namespace) -> int:
    bd = _broker_dir(args)
    if not bd.revoke(args.name):
        return _die([f"error: no account {args.name!r} in {bd.path}"], 1)
    print(f"revoked {args.name}: it can no longer log in (connected sessions end on reload)")
    _reloaded(bd)
    return 0


def cmd_edge_enrol(args: argparse.Namespace) -> int:
    from edgewatch.brokerauth import BrokerAuthError

    bd = _broker_dir(args)
    try:
        password = bd.add(args.edge_id, "edge", site=args.site, read=args.read, replace=args.rotate)
    except BrokerAuthError as exc:
        return _die([f"error: {exc}"])
    _print_account(bd, args.edge_id, password, args.url, "edge")
    print(f"edge_id: {args.edge_id}\nsite: {args.site}")
    _reloaded(bd)
    return 0


# -- config ----------------------------------------------------------------------------------


def cmd_config_check(args: argparse.Namespace) -> int:
    import yaml

    from central.config import HubConfig
    from edge.config import EdgeConfig

    kind = args.kind
    if kind == "auto":
        try:
            doc = yaml.safe_load(Path(args.file).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            doc = None
        kind = "hub" if isinstance(doc, dict) and "database_url" in doc else "edge"
    model = HubConfig if kind == "hub" else EdgeConfig
    try:
        cfg = load_config(args.file, model)
    except ConfigError as exc:
        return _die(exc.lines())
    if kind == "edge":
        from edge.inference.registry import ModelError, Registry

        try:
            registry = Registry(cfg.models.dir, cfg.models.manifest)
            problems = []
            classes_of = lambda model: registry.spec(model).classes  # noqa: E731
            for i, cam in enumerate(cfg.cameras):
                for j, a in enumerate(cam.analytics):
                    for key, message in a.problems(classes_of):
                        problems.append(f"cameras.{i}.analytics.{j}.{key}: {message}")
        except ModelError as exc:
            problems = [f"models.manifest: {exc}"]
        if problems:
            return _die([f"{args.file}: {p}" for p in problems])
    else:
        if getattr(cfg, "hotspots_file", None):
            from central.hotspots import HotspotFileError, load_hotspots

            try:
                load_hotspots(cfg.hotspots_file)  # type: ignore[attr-defined]
            except HotspotFileError as exc:
                return _die([f"{args.file}: hotspots_file: {exc}"])
        from central.config import security_warnings

        warnings = [f"warning: {args.file}: {w}" for w in security_warnings(cfg)]  # type: ignore[arg-type]
        if warnings and getattr(args, "strict", False):
            return _die(warnings)
        for line in warnings:  # unsafe outside a demo, but the hub runs: exit 0
            print(line, file=sys.stderr)
    print(f"{args.file}: ok ({kind} config)")
    return 0


# -- models ----------------------------------------------------------------------------------


def _registry(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from edge.inference.registry import Registry

    return Registry(Path(args.dir), Path(args.manifest) if args.manifest else None)


def cmd_models_list(args: argparse.Namespace) -> int:
    reg = _registry(args)
    for model_id, spec in sorted(reg.specs.items()):
        print(
            f"{model_id:20} {reg.status(model_id):13} {spec.format:6} {len(spec.classes):3} "
            f"classes  {spec.licence:12} {reg.path(model_id)}"
        )
    return 0


def cmd_analytics_list(args: argparse.Namespace) -> int:
    """Every registered analytic: its type, the kinds it emits and what it needs."""
    from edge.analytics.registry import plugins

    found = plugins()
    if getattr(args, "json", False):
        doc = [
            {
                "type": p.type,
                "summary": p.summary,
                "needs": list(p.needs),
                "consumes": list(p.consumes),
                "readings": list(p.readings),
                "kinds": [
                    {
                        "name": k.name,
                        "severity": k.severity,
                        "urgent": k.urgent,
                        "review": k.review,
                        "roles": list(k.roles),
                        "incident": k.incident,
                    }
                    for k in p.kinds
                ],
                "config": p.config.__module__ + "." + p.config.__name__,
            }
            for p in found.values()
        ]
        print(json.dumps(doc, indent=2))
        return 0
    print(f"{'type':22} {'kinds':44} needs")
    for p in found.values():
        kinds = ", ".join(
            k.name + ("!" if k.urgent else "") + ("*" if k.review else "") for k in p.kinds
        )
        needs = ", ".join(p.needs + tuple(f"{c} (from others)" for c in p.consumes))
        print(f"{p.type:22} {kinds or '(readings only)':44} {needs}")
        print(f"{'':22} {p.summary}")
    print("\n! urgent   * enters the review queue")
    return 0


def cmd_models_pull(args: argparse.Namespace) -> int:
    from edge.inference.registry import ModelError, default_mirror

    reg = _registry(args)
    mirror = Path(args.mirror) if args.mirror else default_mirror()
    ids = args.ids or sorted(reg.specs)
    failed = 0
    for model_id in ids:
        try:
            path = reg.pull(model_id, mirror=mirror)
            print(f"{model_id}: ok {path}")
        except ModelError as exc:
            print(f"{model_id}: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def cmd_models_verify(args: argparse.Namespace) -> int:
    reg = _registry(args)
    bad = 0
    for model_id in args.ids or sorted(reg.specs):
        status = reg.status(model_id)
        print(f"{model_id}: {status}")
        bad += status != "ok"
    return 1 if bad else 0


def cmd_models_bench(args: argparse.Namespace) -> int:
    from edge.inference.bench import bench, format_table
    from edge.inference.detector import DEFAULT_PROVIDERS, Detector
    from edge.inference.registry import ModelError

    reg = _registry(args)
    providers = args.providers.split(",") if args.providers else list(DEFAULT_PROVIDERS)
    try:
        batches = [int(b) for b in args.batches.split(",")]
    except ValueError:
        print(f"--batches: {args.batches!r} is not a comma-separated list of integers")
        return 2
    try:
        det = Detector(reg.spec(args.id), reg.resolve(args.id), providers, args.threads)
    except ModelError as exc:
        print(f"models bench: {exc}", file=sys.stderr)
        return 2
    frame = None
    if args.image:
        import cv2

        frame = cv2.imread(args.image)
        if frame is None:
            print(f"--image: cannot read {args.image}", file=sys.stderr)
            return 2
    rows = bench(det, batches, runs=args.runs, frame=frame)
    spec = det.spec
    print(
        f"model {args.id} ({spec.format}, {spec.input_width}x{spec.input_height}) on "
        f"{det.provider}, {args.threads} threads, {'dynamic' if det.dynamic_batch else 'fixed'} "
        f"batch"
    )
    print(format_table(rows))
    if args.json:
        doc = {
            "model": args.id,
            "provider": det.provider,
            "threads": args.threads,
            "input": [spec.input_width, spec.input_height],
            "dynamic_batch": det.dynamic_batch,
            "rows": rows,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


# -- users -----------------------------------------------------------------------------------


def _read_password(args: argparse.Namespace) -> str | None:
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        print("no terminal to ask for the password: pipe it with --password-stdin", file=sys.stderr)
        return None
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        print("the passwords differ", file=sys.stderr)
        return None
    return first


def cmd_user(args: argparse.Namespace) -> int:
    from central.config import HubConfig

    try:
        cfg = load_config(args.config, HubConfig)
    except ConfigError as exc:
        return _die(exc.lines())
    from central import auth
    from central.storage.db import as_utc, make_engine, migrate, session_factory
    from central.storage.models import UserRow

    engine = make_engine(cfg.database_url)
    try:
        migrate(engine)
        sessions = session_factory(engine)
        with sessions.begin() as session:
            if args.sub == "list":
                from sqlalchemy import select

                rows = session.scalars(select(UserRow).order_by(UserRow.username)).all()
                print(f"{'user':<24} {'role':<9} {'state':<9} last login")
                for r in rows:
                    last = as_utc(r.last_login_at)
                    print(
                        f"{r.username:<24} {r.role:<9} "
                        f"{'disabled' if r.disabled else 'active':<9} "
                        f"{last.isoformat(timespec='seconds') if last else 'never'}"
                    )
                return 0
            if args.sub == "token":
                from sqlalchemy import select

                row = session.scalar(select(UserRow).where(UserRow.username == args.username))
                if row is None:
                    return _die([f"no user {args.username!r}"], 1)
                secret, _ = auth.start_session(session, row, "bearer", int(args.days * 86400))
                print(secret)
                return 0
            password = _read_password(args)
            if password is None:
                return 1
            if args.sub == "add":
                auth.add_user(session, args.username, args.role, password)
                print(f"user {args.username} added ({args.role})")
            else:
                auth.set_password(session, args.username, password)
                print(f"password of {args.username} changed; their sessions are ended")
            return 0
    except auth.AuthError as exc:
        return _die([f"user {args.sub}: {exc}"], 1)
    finally:
        engine.dispose()


# -- demo ------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from edgewatch.demo import run_demo

    return run_demo(args)


def cmd_schemas(args: argparse.Namespace) -> int:
    from edgewatch.contract import json_schemas

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (out / f"{name}.schema.json").write_text(json.dumps(schema, indent=2) + "\n")
        print(out / f"{name}.schema.json")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgewatch", description="Edge AI camera monitoring.")
    sub = p.add_subparsers(dest="command", required=True)

    edge = sub.add_parser("edge", help="the edge worker").add_subparsers(dest="sub", required=True)
    e_run = edge.add_parser("run", help="run one edge worker")
    e_run.add_argument("-c", "--config", required=True, help="edge config YAML")
    e_run.set_defaults(func=cmd_edge_run)
    e_health = edge.add_parser(
        "health", help="ask a running worker whether it is alive (for container health checks)"
    )
    e_health.add_argument("--url", default="http://127.0.0.1:9108/metrics")
    e_health.add_argument("--max-age", type=float, default=20.0, help="seconds")
    e_health.add_argument("--timeout", type=float, default=5.0)
    e_health.set_defaults(func=cmd_edge_health)
    e_disc = edge.add_parser(
        "discover",
        help="list the ONVIF cameras on this box's networks (WS-Discovery), and their streams",
    )
    e_disc.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for answers")
    e_disc.add_argument("--user", help="camera user name: also list each profile's RTSP URL")
    e_disc.add_argument(
        "--password-stdin", action="store_true", help="read the camera password from stdin"
    )
    e_disc.add_argument("--http-timeout", type=float, default=5.0, help="seconds per ONVIF call")
    e_disc.set_defaults(func=cmd_edge_discover)

    hub = sub.add_parser("hub", help="the central hub").add_subparsers(dest="sub", required=True)
    h_run = hub.add_parser("run", help="run the hub (MQTT consumer + HTTP API)")
    h_run.add_argument("-c", "--config", required=True, help="hub config YAML")
    h_run.add_argument("--host", help="override http.host")
    h_run.add_argument("--port", type=int, help="override http.port")
    h_run.set_defaults(func=cmd_hub_run)

    e_enrol = edge.add_parser(
        "enrol", help="create an edge's broker account (prints its password and config once)"
    )
    e_enrol.add_argument("edge_id")
    e_enrol.add_argument("--site", required=True)
    e_enrol.add_argument("--dir", required=True, help="the broker folder (edgewatch broker init)")
    e_enrol.add_argument("--url", default="mqtts://127.0.0.1:8883", help="broker URL for the edge")
    e_enrol.add_argument("--read", action="append", help="extra topic filter it may read")
    e_enrol.add_argument("--rotate", action="store_true", help="new password for an existing edge")
    e_enrol.set_defaults(func=cmd_edge_enrol)
    e_revoke = edge.add_parser("revoke", help="delete an edge's broker account")
    e_revoke.add_argument("name")
    e_revoke.add_argument("--dir", required=True)
    e_revoke.set_defaults(func=cmd_broker_revoke)

    broker = sub.add_parser("broker", help="the MQTT broker's security").add_subparsers(
        dest="sub", required=True
    )
    b_init = broker.add_parser("init", help="make a broker folder: CA, TLS cert, accounts, conf")
    b_init.add_argument("--dir", required=True)
    b_init.add_argument(
        "--host", action="append", help="broker host name or IP for its certificate (repeat)"
    )
    b_init.add_argument("--port", type=int, default=8883)
    b_init.add_argument("--bind", default="127.0.0.1", help="listener address (0.0.0.0: all)")
    b_init.set_defaults(func=cmd_broker_init)
    b_acc = broker.add_parser("account", help="add (or --rotate) a hub, team, signal or client")
    b_acc.add_argument("name")
    b_acc.add_argument("--role", required=True, choices=["hub", "edge", "team", "signal", "client"])
    b_acc.add_argument("--site")
    b_acc.add_argument("--read", action="append", help="extra topic filter it may read")
    b_acc.add_argument("--write", action="append", help="extra topic filter it may write")
    b_acc.add_argument("--dir", required=True)
    b_acc.add_argument("--url", default="mqtts://127.0.0.1:8883")
    b_acc.add_argument("--rotate", action="store_true")
    b_acc.set_defaults(func=cmd_broker_account)
    b_rev = broker.add_parser("revoke", help="delete an account")
    b_rev.add_argument("name")
    b_rev.add_argument("--dir", required=True)
    b_rev.set_defaults(func=cmd_broker_revoke)
    b_run = broker.add_parser(
        "run", help="run mosquitto on a broker folder (embedded amqtt where none can run)"
    )
    b_run.add_argument("--dir", required=True, help="the broker folder (edgewatch broker init)")
    b_run.add_argument("--port", type=int, default=8883)
    b_run.add_argument("--host", default="127.0.0.1")
    b_run.add_argument("--embedded", action="store_true", help="use amqtt even if mosquitto runs")
    b_run.set_defaults(func=cmd_broker_run)

    demo = sub.add_parser(
        "demo", help="a small Hue on one machine: broker, hub, RTSP cameras, an edge worker"
    )
    demo.add_argument("--assets", default=os.environ.get("EDGEWATCH_ASSETS", "../shared/assets"))
    demo.add_argument("--workdir", default=".edgewatch-demo")
    demo.add_argument("--http-port", type=int, default=8000)
    demo.add_argument("--mqtt-port", type=int, default=8883)
    demo.add_argument("--no-rtsp", action="store_true", help="read the file instead of RTSP")
    demo.set_defaults(func=cmd_demo)

    user = sub.add_parser("user", help="hub accounts").add_subparsers(dest="sub", required=True)
    for name, helptext in (
        ("add", "add a user (password from the terminal or --password-stdin)"),
        ("passwd", "set a user's password (ends their sessions)"),
        ("list", "list users and roles"),
        ("token", "print a long-lived bearer token (for Prometheus or a script)"),
    ):
        u = user.add_parser(name, help=helptext)
        u.add_argument("-c", "--config", required=True, help="hub config YAML (for the database)")
        if name != "list":
            u.add_argument("username")
        if name == "add":
            u.add_argument(
                "--role", required=True, choices=("admin", "operator", "ranger", "viewer")
            )
        if name in ("add", "passwd"):
            u.add_argument("--password-stdin", action="store_true", help="read it from stdin")
        if name == "token":
            u.add_argument("--days", type=float, default=365.0, help="lifetime (default 365)")
        u.set_defaults(func=cmd_user)

    config = sub.add_parser("config", help="configs").add_subparsers(dest="sub", required=True)
    c_check = config.add_parser("check", help="validate a config; exit 2 on errors")
    c_check.add_argument("file")
    c_check.add_argument("--kind", choices=("auto", "edge", "hub"), default="auto")
    c_check.add_argument("--strict", action="store_true", help="exit 2 on warnings too")
    c_check.set_defaults(func=cmd_config_check)

    analytics = sub.add_parser("analytics", help="the analytic plugins").add_subparsers(
        dest="sub", required=True
    )
    al = analytics.add_parser("list", help="every registered analytic: type, kinds, needs")
    al.add_argument("--json", action="store_true", help="as JSON")
    al.set_defaults(func=cmd_analytics_list)

    models = sub.add_parser("models", help="the model registry").add_subparsers(
        dest="sub", required=True
    )
    for name, func, helptext in (
        ("list", cmd_models_list, "list models in the manifest and their state"),
        ("pull", cmd_models_pull, "copy (from --mirror) or download models, check sha256"),
        ("verify", cmd_models_verify, "check the sha256 of models on disk"),
    ):
        m = models.add_parser(name, help=helptext)
        if name != "list":
            m.add_argument("ids", nargs="*", help="model ids (default: all)")
        m.add_argument("--dir", default=os.environ.get("EDGEWATCH_MODEL_DIR", "var/models"))
        m.add_argument("--manifest", help="default: the project's models/manifest.yaml")
        if name == "pull":
            m.add_argument(
                "--mirror",
                help="local folder holding the model files (default: $EDGEWATCH_MODEL_MIRROR)",
            )
        m.set_defaults(func=func)
    mb = models.add_parser("bench", help="latency and throughput of a model at batch 1/2/4/8")
    mb.add_argument("id", help="model id")
    mb.add_argument("--dir", default=os.environ.get("EDGEWATCH_MODEL_DIR", "var/models"))
    mb.add_argument("--manifest", help="default: the project's models/manifest.yaml")
    mb.add_argument("--providers", help="comma-separated, in order (default: TensorRT,CUDA,...)")
    mb.add_argument("--threads", type=int, default=2, help="intra-op threads")
    mb.add_argument("--batches", default="1,2,4,8")
    mb.add_argument("--runs", type=int, default=20)
    mb.add_argument("--image", help="a BGR image to use (default: a synthetic 1280x720 frame)")
    mb.add_argument("--json", help="write the table as JSON here")
    mb.set_defaults(func=cmd_models_bench)

    schemas = sub.add_parser("schemas", help="write the MQTT payload JSON Schemas")
    schemas.add_argument("--out", default="docs/schemas")
    schemas.set_defaults(func=cmd_schemas)
    return p


def main(argv: list[str] | None = None) -> int:
    import faulthandler

    # `kill -USR1 <pid>` writes every thread's stack to stderr (the log): how a process
    # that hangs is diagnosed on a box nobody can attach a debugger to.
    if hasattr(signal, "SIGUSR1") and threading.current_thread() is threading.main_thread():
        try:
            faulthandler.register(signal.SIGUSR1, all_threads=True)
        except (AttributeError, OSError, ValueError):  # stderr with no file (main() in a test)
            pass
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
