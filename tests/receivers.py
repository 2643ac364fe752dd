"""Loopback receivers for the hub's notifications: a webhook endpoint that checks the HMAC
signature, and a Web Push service (https, on ``localhost`` with a certificate of its own
CA) that verifies the VAPID JWT and decrypts the payload (RFC 8291 aes128gcm) with the
subscriber's private key, as a browser's push service and the browser would. And two bad
gateways: one that accepts connections and never answers, one that answers 302."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import http_ece
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID


def b64d(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


@dataclass
class Received:
    time: float
    path: str
    headers: dict[str, str]
    body: Any
    valid: bool
    error: str | None = None


@dataclass
class _Server:
    received: list[Received] = field(default_factory=list)
    fail_next: int = 0  # answer 500 to this many requests first
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    def start(
        self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None
    ) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.server.owner = self  # type: ignore[attr-defined]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def valid(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.valid]


class WebhookReceiver(_Server):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret.encode()
        self.attempts = 0
        self.start(_WebhookHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


class _WebhookHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        owner: WebhookReceiver = self.server.owner  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ts = self.headers.get("X-Edgewatch-Timestamp", "")
        sig = self.headers.get("X-Edgewatch-Signature", "")
        good = (
            "sha256="
            + hmac.new(owner.secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        )
        valid = hmac.compare_digest(sig, good) and abs(time.time() - int(ts or 0)) < 300
        with owner.lock:
            owner.attempts += 1
            failing = owner.fail_next > 0
            if failing:
                owner.fail_next -= 1
            else:
                owner.received.append(
                    Received(time.time(), self.path, dict(self.headers), json.loads(body), valid)
                )
        self.send_response(500 if failing else (200 if valid else 401))
        self.end_headers()


def _cert(
    subject: str, issuer: x509.Name | None, issuer_key: ec.EllipticCurvePrivateKey | None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    ca = issuer is None
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if ca else issuer)  # type: ignore[arg-type]
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    signer = key if ca else issuer_key
    assert signer is not None
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(subject)]), False
        ).add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
    return builder.sign(signer, hashes.SHA256()), key


def tls_context(workdir: Path, host: str = "localhost") -> tuple[ssl.SSLContext, Path]:
    """A server context for ``host`` with a certificate of a CA made here, and the CA file
    a client verifies it with (``push.ca_file`` of the hub)."""
    ca_cert, ca_key = _cert("edgewatch test push CA", None, None)
    cert, key = _cert(host, ca_cert.subject, ca_key)
    workdir.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    ca_file = workdir / "push-ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(pem))
    (workdir / "push.pem").write_bytes(cert.public_bytes(pem))
    (workdir / "push.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(workdir / "push.pem", workdir / "push.key")
    return ctx, ca_file


class PushService(_Server):
    """One subscription per ``subscribe()``: endpoint, keys, and the private key to decrypt.

    Served over https as ``localhost`` (a push endpoint must be https on an allow-listed
    host): the hub verifies it against ``ca_file`` and allow-lists ``host``."""

    def __init__(self, workdir: Path) -> None:
        super().__init__()
        self.subscribers: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = {}
        self.vapid_public: str | None = None  # the key the app server must sign with
        self.gone: set[str] = set()
        tls, self.ca_file = tls_context(workdir)
        self.start(_PushHandler, tls)

    @property
    def host(self) -> str:
        """The ``push.allowed_hosts`` entry for this service."""
        return f"localhost:{self.port}"

    @property
    def origin(self) -> str:
        return f"https://localhost:{self.port}"

    def subscribe(self, name: str) -> dict:
        key = ec.generate_private_key(ec.SECP256R1())
        auth = hashlib.sha256(name.encode()).digest()[:16]
        self.subscribers[name] = (key, auth)
        pub = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"{self.origin}/push/{name}",
            "keys": {"p256dh": b64e(pub), "auth": b64e(auth)},
        }


def verify_vapid(header: str, audience: str, expected_key: str | None) -> dict:
    """Check ``Authorization: vapid t=JWT, k=KEY``: ES256 signature, aud, exp, sub."""
    if not header.startswith("vapid "):
        raise ValueError(f"not a VAPID authorization: {header[:30]}")
    parts = dict(p.strip().split("=", 1) for p in header[6:].split(","))
    token, key_b64 = parts["t"], parts["k"]
    if expected_key is not None and key_b64.rstrip("=") != expected_key:
        raise ValueError("VAPID key is not the hub's")
    head_b64, claims_b64, sig_b64 = token.split(".")
    head = json.loads(b64d(head_b64))
    if head.get("alg") != "ES256":
        raise ValueError(f"alg {head.get('alg')}")
    sig = b64d(sig_b64)
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(key_b64))
    try:
        pub.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValueError("bad VAPID signature") from None
    claims = json.loads(b64d(claims_b64))
    if claims.get("aud") != audience:
        raise ValueError(f"aud {claims.get('aud')} != {audience}")
    if not claims.get("exp", 0) > time.time():
        raise ValueError("expired")
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        raise ValueError("no sub")
    return claims


class _PushHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        owner: PushService = self.server.owner  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        name = self.path.rsplit("/", 1)[-1]
        if name in owner.gone:
            self.send_response(410)
            self.end_headers()
            return
        error = None
        payload: Any = None
        try:
            verify_vapid(
                self.headers.get("Authorization", ""),
                owner.origin,
                owner.vapid_public,
            )
            if self.headers.get("Content-Encoding") != "aes128gcm":
                raise ValueError("Content-Encoding is not aes128gcm")
            key, auth = owner.subscribers[name]
            plain = http_ece.decrypt(body, private_key=key, auth_secret=auth, version="aes128gcm")
            payload = json.loads(plain)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        with owner.lock:
            owner.received.append(
                Received(time.time(), self.path, dict(self.headers), payload, error is None, error)
            )
        self.send_response(201 if error is None else 400)
        self.end_headers()


class HungServer:
    """A gateway that accepts connections, reads what comes, and never answers. It keeps
    when each connection opened and when the client gave up on it (closed its end)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.lock = threading.Lock()
        self.opened: list[float] = []
        self.closed: dict[int, float] = {}  # connection index -> when the client closed it
        self._conns: list[socket.socket] = []
        self._stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def connections(self) -> int:
        with self.lock:
            return len(self.opened)

    def held_throughout(self, start: float, end: float) -> bool:
        """Whether some client was left hanging here from ``start`` (or before) to ``end``."""
        with self.lock:
            return any(
                t <= start and self.closed.get(i, float("inf")) >= end
                for i, t in enumerate(self.opened)
            )

    def _serve(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                index = len(self.opened)
                self.opened.append(time.time())
                self._conns.append(conn)
            threading.Thread(target=self._drain, args=(conn, index), daemon=True).start()

    def _drain(self, conn: socket.socket, index: int) -> None:
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass
        with self.lock:
            self.closed[index] = time.time()

    def stop(self) -> None:
        self._stopped = True
        self.sock.close()
        with self.lock:
            for c in self._conns:
                c.close()


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class RedirectingReceiver(_Server):
    """Answers every POST to ``/hook`` with a 302 to ``/landed``, and 200 to anything at
    ``/landed``, so a client that follows the redirect would believe it delivered."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []
        self.start(_RedirectHandler)

    def url_with(self, query: str) -> str:
        return f"http://127.0.0.1:{self.port}/hook?{query}"

    def at(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path.split("?")[0] == path]


class _RedirectHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _any(self) -> None:
        owner: RedirectingReceiver = self.server.owner  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        with owner.lock:
            owner.requests.append(Request(self.command, self.path, dict(self.headers), body))
        if self.path.split("?")[0] == "/hook":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{owner.port}/landed")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _any
