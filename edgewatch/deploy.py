"""The nginx front of a multi-hub deployment, rendered from one template.

``deploy/nginx/edgewatch.conf.template`` is the only copy of the proxy's rules (upstream,
micro-cache, gzip, SSE pass-through). :func:`render_site` fills it in: with the defaults it
gives ``deploy/nginx/edgewatch.conf`` (the file an operator copies, kept in git and
checked against the template by the tests); with free ports and a temporary folder it
gives the config that ``tests/test_nginx.py`` and ``scripts/bench_feed.py`` run, so
what is tested is what is deployed. :func:`standalone_conf` wraps a site in the few
main-context lines a private nginx process needs (its own pid, logs and temp folders:
no root, nothing under /var). Plain ``str.replace`` of ``@NAME@`` markers: no envsubst,
and nginx's own ``$variables`` are left alone.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "nginx" / "edgewatch.conf.template"
SITE = ROOT / "deploy" / "nginx" / "edgewatch.conf"
# the compose file's service names; on a plain Debian box: 127.0.0.1:8001, :8002
DEFAULT_HUBS = ("hub1:8000", "hub2:8000")


@dataclass(frozen=True)
class Tls:
    cert: str
    key: str


def render_site(
    hubs: list[str] | tuple[str, ...] = DEFAULT_HUBS,
    *,
    listen: str = "443 ssl",
    cache_dir: str = "/var/cache/nginx/edgewatch",
    server_name: str = "_",
    tls: Tls | None = Tls("/etc/edgewatch/tls/fullchain.pem", "/etc/edgewatch/tls/privkey.pem"),
    redirect_http: bool = True,
    template: Path = TEMPLATE,
) -> str:
    """The site config (nginx http context) for ``hubs`` (``host:port`` each)."""
    if not hubs:
        raise ValueError("at least one hub")
    servers = "\n".join(f"    server {h} max_fails=3 fail_timeout=10s;" for h in hubs)
    listens = "\n".join(f"    listen {item};" for item in listen.split(","))
    tls_lines = ""
    if tls is not None:
        tls_lines = "\n".join(
            [
                f"    ssl_certificate {tls.cert};",
                f"    ssl_certificate_key {tls.key};",
                "    ssl_protocols TLSv1.2 TLSv1.3;",
                "    ssl_session_cache shared:edgewatch_tls:10m;",
                "    ssl_session_timeout 1h;",
                '    add_header Strict-Transport-Security "max-age=31536000" always;',
                "",
            ]
        )
    redirect = ""
    if redirect_http:
        redirect = "\n".join(
            [
                "",
                "# Plain HTTP only redirects: logins and tokens never travel in clear.",
                "server {",
                "    listen 80;",
                f"    server_name {server_name};",
                "    return 301 https://$host$request_uri;",
                "}",
            ]
        )
    text = template.read_text()
    for marker, value in {
        "@HUBS@": servers,
        "@CACHE_DIR@": cache_dir,
        "@LISTEN@": listens,
        "@SERVER_NAME@": server_name,
        "@TLS@": tls_lines,
        "@REDIRECT@": redirect,
    }.items():
        text = text.replace(marker, value)
    return text


def standalone_conf(prefix: Path, site: str, *, workers: int | str = "auto") -> str:
    """A whole ``nginx.conf`` for a private nginx under ``prefix`` serving ``site``.

    Started as root, nginx's workers would drop to ``nobody``, who cannot read a private
    temporary folder: the workers run as the current user instead."""
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    user_line = f"user {user} {group};\n" if os.getuid() == 0 else ""
    p = prefix
    return (
        f"{user_line}"
        f"worker_processes {workers};\n"
        f"pid {p}/nginx.pid;\n"
        f"error_log {p}/error.log warn;\n"
        "daemon off;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        "    include /etc/nginx/mime.types;\n"
        "    default_type application/octet-stream;\n"
        f"    access_log off;\n"
        f"    client_body_temp_path {p}/tmp/body;\n"
        f"    proxy_temp_path {p}/tmp/proxy;\n"
        f"    fastcgi_temp_path {p}/tmp/fastcgi;\n"
        f"    uwsgi_temp_path {p}/tmp/uwsgi;\n"
        f"    scgi_temp_path {p}/tmp/scgi;\n"
        "    keepalive_requests 100000;\n"
        f"{site}\n"
        "}\n"
    )


def nginx_binary() -> str | None:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    return found if Path(found).exists() else None


def write_standalone(prefix: Path, site: str, **kw: int | str) -> Path:
    """Write ``prefix/nginx.conf`` (and its folders); check it with ``nginx -t``."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx not found: apt-get install nginx (scripts/setup.sh does)")
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(standalone_conf(prefix, site, **kw))
    check = subprocess.run(
        [binary, "-t", "-q", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)],
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed for {conf}:\n{check.stderr}")
    return conf


def start_nginx(prefix: Path, conf: Path, log: Path) -> subprocess.Popen:
    binary = nginx_binary()
    assert binary is not None
    with open(log, "ab") as out:
        return subprocess.Popen(
            [binary, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


if __name__ == "__main__":  # python -m edgewatch.deploy: rewrite deploy/nginx/edgewatch.conf
    SITE.write_text(render_site())
    print(f"wrote {SITE}")
