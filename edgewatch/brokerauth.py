"""Who may talk to the broker, and about what: accounts, ACLs and TLS for mosquitto.

The hub trusts a message because of the account that published it, never because of
its topic name. This module keeps one *broker directory* with everything mosquitto
needs to enforce that:

- ``ca.crt`` / ``ca.key``: a private CA made here (the key never leaves this folder);
  ``server.crt`` / ``server.key``: the broker's TLS certificate, signed by it;
- ``accounts.json``: every account (role, site, extra topic grants), no secrets;
- ``passwd``: mosquitto's password file (PBKDF2-SHA512 hashes, the ``$7$`` format that
  ``mosquitto_passwd`` writes);
- ``acl``: one block per account, generated from ``accounts.json``:
  an edge writes only ``edgewatch/v1/{site}/{edge}/#`` and reads its own config
  (``edgewatch/v1/config/{site}/{edge}/#``, written only by the hub) and the signal feeds
  (``edgewatch/v1/signals/#``, each written only by its controller's account); the hub reads
  ``edgewatch/v1/#`` and is the only writer of team and config topics;
  a team reads only its own team topic;
- ``mosquitto.conf``: a TLS listener, ``allow_anonymous false`` and
  ``use_username_as_clientid true`` (a client id is its account: nobody can take over
  the hub's persistent session without the hub's password).

``edgewatch broker init`` makes the folder, ``edgewatch edge enrol`` / ``revoke`` and
``edgewatch broker account`` change it, and SIGHUP makes a running mosquitto reload
the password and ACL files (``reload``). Passwords are printed once and never stored.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import secrets
import signal
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from edgewatch.contract import ID_PATTERN, ROOT

Role = Literal["hub", "edge", "team", "signal", "client"]
_ID = re.compile(ID_PATTERN)
# Topic grants may use MQTT wildcards but nothing that would break the ACL file's syntax.
_TOPIC = re.compile(r"^[A-Za-z0-9_.\-/+#]{1,200}$")
SIGNALS = f"{ROOT}/signals"
TEAMS = f"{ROOT}/teams"
CONFIGS = f"{ROOT}/config"
# Namespaces that are not sites: an edge's site may not take one of these names.
RESERVED_SITES = frozenset({"signals", "teams", "config"})
PBKDF2_ITERATIONS = 101  # what mosquitto_passwd uses for $7$; the broker reads any count


class BrokerAuthError(ValueError):
    pass


def hash_password(password: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    """A mosquitto ``$7$`` password hash (PBKDF2-HMAC-SHA512, 12-byte salt)."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    try:
        _, seven, iterations, salt, digest = hashed.split("$")
        if seven != "7":
            return False
        got = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt), int(iterations), 64
        )
    except (ValueError, TypeError):
        return False
    return secrets.compare_digest(base64.b64encode(got).decode(), digest)


def _topic(value: str) -> str:
    if not _TOPIC.match(value) or "#" in value[:-1] or value.startswith("$"):
        raise BrokerAuthError(f"not a topic or topic filter: {value!r}")
    return value


@dataclass
class Account:
    username: str
    role: Role
    site: str | None = None
    read: list[str] = field(default_factory=list)  # extra topic filters it may read
    write: list[str] = field(default_factory=list)  # extra topic filters it may write
    created_at: str = ""
    password_hash: str = ""

    def grants(self) -> tuple[list[str], list[str]]:
        """(read, write) topic filters of this account."""
        read, write = list(self.read), list(self.write)
        u = self.username
        if self.role == "hub":
            read += [f"{ROOT}/#"]
            write += [f"{TEAMS}/#", f"{CONFIGS}/#"]
        elif self.role == "edge":
            write += [f"{ROOT}/{self.site}/{u}/#"]
            read += [f"{CONFIGS}/{self.site}/{u}/#", f"{SIGNALS}/#"]
        elif self.role == "team":
            read += [f"{TEAMS}/{u.removeprefix('team-')}/#"]
        elif self.role == "signal":
            write += [f"{SIGNALS}/{u}", f"{SIGNALS}/{u}/#"]
        return read, write


class BrokerDir:
    """The broker's security folder (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # -- files -------------------------------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        return self.path / "ca.crt"

    @property
    def conf_file(self) -> Path:
        return self.path / "mosquitto.conf"

    @property
    def pid_file(self) -> Path:
        return self.path / "mosquitto.pid"

    def exists(self) -> bool:
        return (self.path / "accounts.json").exists() and self.ca_file.exists()

    def accounts(self) -> dict[str, Account]:
        f = self.path / "accounts.json"
        if not f.exists():
            return {}
        doc = json.loads(f.read_text())
        return {a["username"]: Account(**a) for a in doc["accounts"]}

    def _save(self, accounts: dict[str, Account]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        ordered = sorted(accounts.values(), key=lambda a: (a.role, a.username))
        _write_private(
            self.path / "accounts.json",
            json.dumps({"accounts": [asdict(a) for a in ordered]}, indent=1) + "\n",
        )
        _write_private(
            self.path / "passwd",
            "".join(f"{a.username}:{a.password_hash}\n" for a in ordered if a.password_hash),
        )
        _write_private(self.path / "acl", self.acl_text(ordered))

    @staticmethod
    def acl_text(accounts: list[Account]) -> str:
        lines = [
            "# Generated by edgewatch (edgewatch/brokerauth.py); edit accounts with",
            "# `edgewatch edge enrol|revoke` and `edgewatch broker account`, not by hand.",
            "# No pattern lines: an account may use only the topics listed under it.",
            "",
        ]
        for a in accounts:
            read, write = a.grants()
            lines.append(f"# {a.role}" + (f" of site {a.site}" if a.site else ""))
            lines.append(f"user {a.username}")
            both = [t for t in read if t in write]
            lines += [f"topic readwrite {t}" for t in both]
            lines += [f"topic read {t}" for t in read if t not in both]
            lines += [f"topic write {t}" for t in write if t not in both]
            lines.append("")
        return "\n".join(lines)

    # -- accounts ----------------------------------------------------------------------------

    def add(
        self,
        username: str,
        role: Role,
        *,
        site: str | None = None,
        read: list[str] | None = None,
        write: list[str] | None = None,
        password: str | None = None,
        replace: bool = False,
    ) -> str:
        """Create (or with ``replace`` re-key) an account; returns its password."""
        if not _ID.match(username):
            raise BrokerAuthError(f"account name {username!r} must match {ID_PATTERN}")
        if role == "edge" and (site is None or not _ID.match(site)):
            raise BrokerAuthError(f"an edge account needs a site matching {ID_PATTERN}")
        if site in RESERVED_SITES:
            raise BrokerAuthError(f"{site!r} is a reserved topic namespace, not a site name")
        accounts = self.accounts()
        if username in accounts and not replace:
            raise BrokerAuthError(f"account {username!r} exists (revoke it, or rotate it)")
        password = password or secrets.token_urlsafe(24)
        accounts[username] = Account(
            username=username,
            role=role,
            site=site,
            read=[_topic(t) for t in read or []],
            write=[_topic(t) for t in write or []],
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            password_hash=hash_password(password),
        )
        self._save(accounts)
        return password

    def revoke(self, username: str) -> bool:
        accounts = self.accounts()
        if accounts.pop(username, None) is None:
            return False
        self._save(accounts)
        return True

    def reload(self) -> bool:
        """Ask a running mosquitto (its pid file here) to re-read passwd and acl."""
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError):
            return False
        return True

    # -- set-up ------------------------------------------------------------------------------

    def init(self, hosts: list[str] | None = None, *, days: int = 825) -> None:
        """Make the CA and the broker's certificate (for ``hosts``) and empty account files."""
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        hosts = hosts or ["localhost", "127.0.0.1", "::1", socket.gethostname()]
        make_ca_and_server_cert(self.path, hosts, days=days)
        if not (self.path / "accounts.json").exists():
            self._save({})

    def mosquitto_conf(
        self,
        port: int,
        *,
        bind: str = "127.0.0.1",
        data_dir: Path | None = None,
        log_file: Path | None = None,
        user: str | None = None,
        extra: str = "",
    ) -> str:
        """A mosquitto 2 config: one TLS listener, accounts and ACLs, persistence."""
        data = data_dir or self.path / "data"
        lines = [
            "# Generated by edgewatch broker init; see docs/security.md.",
            # the listener comes first: listener options before it would open a default
            # (plain, anonymous-capable) listener on 1883
            f"listener {port} {bind}",
            f"cafile {self.ca_file}",
            f"certfile {self.path / 'server.crt'}",
            f"keyfile {self.path / 'server.key'}",
            "tls_version tlsv1.2",
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {self.path / 'passwd'}",
            f"acl_file {self.path / 'acl'}",
            # the client id is the account name: no session takeover without the password
            "use_username_as_clientid true",
            "persistence true",
            f"persistence_location {data}/",
            "autosave_interval 5",
            # a spool replay after an outage is a burst; the default 1000 drops messages
            # (tests/test_broker_burst.py: 5,000 sent to an offline session, 1,000 kept)
            "max_queued_messages 100000",
            # ... but bounded in memory per session: 100,000 events of ~1 KB are ~100 MB;
            # 512 MiB leaves room for a few thousand ~100 KB snapshots in the same replay
            # and keeps one stalled session from exhausting the broker's RAM (mosquitto
            # holds queued messages in memory; persistence only saves them to disk)
            "max_queued_bytes 536870912",
            "max_inflight_messages 100",
            f"pid_file {self.pid_file}",
        ]
        if user:
            lines.append(f"user {user}")
        if log_file:
            lines.append(f"log_dest file {log_file}")
        return "\n".join(lines) + "\n" + extra

    def client_settings(self, username: str, password: str, host: str, port: int) -> dict:
        """The ``mqtt:`` block of an edge or hub config for this account."""
        return {
            "url": f"mqtts://{host}:{port}",
            "username": username,
            "password": password,
            "tls": {"ca_file": str(self.ca_file)},
        }


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def make_ca_and_server_cert(folder: Path, hosts: list[str], *, days: int = 825) -> None:
    """A private CA (kept if present) and a broker certificate for ``hosts``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    pem = serialization.Encoding.PEM
    nopass = serialization.NoEncryption()
    pkcs8 = serialization.PrivateFormat.PKCS8
    ca_key_file, ca_file = folder / "ca.key", folder / "ca.crt"
    if ca_key_file.exists() and ca_file.exists():
        ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), None)
        ca_cert = x509.load_pem_x509_certificate(ca_file.read_bytes())
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edgewatch broker CA")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        _write_private(ca_key_file, ca_key.private_bytes(pem, pkcs8, nopass).decode())
        ca_file.write_bytes(ca_cert.public_bytes(pem))
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for h in dict.fromkeys(hosts):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    _write_private(folder / "server.key", key.private_bytes(pem, pkcs8, nopass).decode())
    (folder / "server.crt").write_bytes(cert.public_bytes(pem))
