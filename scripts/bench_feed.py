"""The public flood feed: one hub alone against nginx (micro-cache) in front of two hubs.

    python scripts/bench_feed.py [--seconds 10] [--connections 64] [--json FILE]

Needs ``wrk`` and ``nginx`` (Debian packages; scripts/setup.sh installs both as root):
there is no Python fallback, a Python load generator would measure itself. Starts a
secured broker (``edgewatch broker run``), two ``edgewatch hub run`` processes (SQLite
each, the 50 hotspots of configs/hotspots.geojson with one reading each) and nginx with
the deployment's config (deploy/nginx/edgewatch.conf.template rendered by
edgewatch.deploy), then runs wrk with the same threads, connections and duration on
``/api/v1/hotspots``: against hub 1 directly, through nginx, and through nginx with
``Accept-Encoding: gzip`` (what browsers send). All in the same run, one after the
other. Prints a table and writes ``{"feed": {"hub_rps": X, "nginx_rps": X, ...}}``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import yaml  # noqa: E402
from bench_hotspots import seed  # noqa: E402

from edgewatch import deploy, procs  # noqa: E402
from edgewatch.broker import free_port  # noqa: E402
from edgewatch.brokerauth import BrokerDir  # noqa: E402

HOTSPOTS = ROOT / "configs" / "hotspots.geojson"
PATH = "/api/v1/hotspots"


def parse_wrk(text: str) -> dict:
    """Requests/s, p50/p99 latency (ms), errors and non-2xx/3xx answers of wrk --latency."""

    def ms(value: str) -> float:
        num, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
        return round(float(num) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit], 2)

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if rps is None:
        raise SystemExit(f"bench: cannot read wrk's output:\n{text}")
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
    total = re.search(r"(\d+) requests in", text)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    return {
        "rps": round(float(rps.group(1)), 1),
        "requests": int(total.group(1)) if total else None,
        "p50_ms": ms(lat["50"]) if "50" in lat else None,
        "p99_ms": ms(lat["99"]) if "99" in lat else None,
        "non_2xx_3xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1).strip() if errors else None,
    }


def wrk(port: int, args: argparse.Namespace, headers: dict[str, str] | None = None) -> dict:
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s", "--latency"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(
        cmd + [f"http://127.0.0.1:{port}{PATH}"], capture_output=True, text=True, check=True
    )
    return parse_wrk(out.stdout)


def get(port: int, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", PATH, headers=headers or {})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    have = {"wrk": shutil.which("wrk"), "nginx": deploy.nginx_binary()}
    missing = [name for name, path in have.items() if path is None]
    if missing:
        sys.exit(f"bench: needs wrk and nginx (apt-get install wrk nginx); missing: {missing}")
    running: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        try:
            bd = BrokerDir(tmp / "broker")
            bd.init(["127.0.0.1", "localhost"])
            mqtt_port = free_port()
            hubs = []
            for i in (1, 2):
                name = f"bench-feed-hub{i}"
                password = bd.add(name, "hub", replace=True)
                db = f"sqlite:///{tmp}/hub{i}.sqlite3"
                seed(db, HOTSPOTS)
                port = free_port()
                cfg = tmp / f"hub{i}.yaml"
                cfg.write_text(yaml.safe_dump({
                    "database_url": db, "hotspots_file": str(HOTSPOTS),
                    "mqtt": bd.client_settings(name, password, "127.0.0.1", mqtt_port),
                    "mqtt_client_id": name,
                    "http": {"host": "127.0.0.1", "port": port}, "log_level": "WARNING",
                }))  # fmt: skip
                hubs.append((port, cfg, tmp / f"hub{i}.log"))
            running.append(
                procs.spawn(
                    procs.edgewatch_cmd(
                        "broker", "run", "--dir", str(bd.path), "--port", str(mqtt_port)
                    ),
                    tmp / "broker.log",
                )
            )
            if not procs.wait_port(mqtt_port, timeout=15):
                sys.exit("bench: broker did not start: " + (tmp / "broker.log").read_text())
            for _, cfg, log in hubs:
                running.append(procs.spawn(procs.edgewatch_cmd("hub", "run", "-c", str(cfg)), log))
            for port, _, log in hubs:
                if not procs.wait_port(port, timeout=60):
                    sys.exit(f"bench: hub did not start:\n{log.read_text()[-2000:]}")
            prefix = tmp / "nginx"
            site = deploy.render_site(
                [f"127.0.0.1:{p}" for p, _, _ in hubs],
                listen=f"127.0.0.1:{(nginx_port := free_port())}",
                cache_dir=str(prefix / "cache"),
                tls=None,
                redirect_http=False,
            )
            conf = deploy.write_standalone(prefix, site)
            running.append(deploy.start_nginx(prefix, conf, prefix / "nginx.out"))
            if not procs.wait_port(nginx_port, timeout=10):
                sys.exit("bench: nginx did not start: " + (prefix / "error.log").read_text())
            status, hdrs, body = get(hubs[0][0])
            assert status == 200 and body.count(b'"type":"Feature"') == 50, status
            get(nginx_port)
            status, via, _ = get(nginx_port)
            assert via.get("x-cache-status") == "HIT" and via["etag"] == hdrs["etag"], via
            hub = wrk(hubs[0][0], args)
            front = wrk(nginx_port, args)
            front_gz = wrk(nginx_port, args, {"Accept-Encoding": "gzip"})
            _, _, packed = get(nginx_port, {"Accept-Encoding": "gzip"})
        finally:
            for p in reversed(running):
                procs.stop(p, timeout=10)
    feed = {
        "hub_rps": hub["rps"],
        "nginx_rps": front["rps"],
        "nginx_gzip_rps": front_gz["rps"],
        "ratio": round(front["rps"] / hub["rps"], 1),
        "hub_p99_ms": hub["p99_ms"],
        "nginx_p99_ms": front["p99_ms"],
        "nginx_gzip_p99_ms": front_gz["p99_ms"],
        "bytes_per_response": len(body),
        "gzip_bytes_per_response": len(packed),
        "hotspots": 50,
        "connections": args.connections,
        "threads": args.threads,
        "seconds": args.seconds,
        "hubs_behind_nginx": 2,
        "cpus": os.cpu_count(),
        "runs": {"hub": hub, "nginx": front, "nginx_gzip": front_gz},
    }
    print(f"{'target':24s} {'req/s':>9s} {'p50 ms':>7s} {'p99 ms':>7s} {'non-2xx':>8s}")
    for name, r in (
        ("hub alone", hub),
        ("nginx, 2 hubs", front),
        ("nginx, 2 hubs, gzip", front_gz),
    ):
        print(
            f"{name:24s} {r['rps']:9.1f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} "
            f"{r['non_2xx_3xx']:8d}"
        )
    print(f"nginx / hub: {feed['ratio']}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"feed": feed}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
