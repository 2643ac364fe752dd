"""Loopback receivers for the hub's notifications: a webhook endpoint that checks the HMAC
signature, and a Web Push service that verifies the VAPID JWT and decrypts the payload
(RFC 8291 aes128gcm) with the subscriber's private key, as a browser's push service and
the browser would."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


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

    def start(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
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


class PushService(_Server):
    """One subscription per ``subscribe()``: endpoint, keys, and the private key to decrypt."""

    def __init__(self) -> None:
        super().__init__()
        self.subscribers: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = {}
        self.vapid_public: str | None = None  # the key the app server must sign with
        self.gone: set[str] = set()
        self.start(_PushHandler)

    def subscribe(self, name: str) -> dict:
        key = ec.generate_private_key(ec.SECP256R1())
        auth = hashlib.sha256(name.encode()).digest()[:16]
        self.subscribers[name] = (key, auth)
        pub = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"http://127.0.0.1:{self.port}/push/{name}",
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
                f"http://127.0.0.1:{owner.port}",
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
