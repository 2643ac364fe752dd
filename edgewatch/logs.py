"""Structured (JSON lines) logging with credential redaction.

Every record is one JSON object on stderr: time, level, logger, msg and any
``extra`` fields. URLs with user info (``rtsp://user:pass@host``) and fields whose
name says password/secret/token are masked before anything is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>[^/@\s]+)@")
_SECRET_KEYS = ("password", "passwd", "secret", "token", "authorization")
_STD_ATTRS = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def redact_url(url: str) -> str:
    """Replace the user-info part of every URL in ``url`` with ``***``."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", url)


def redact(value: Any, key: str = "") -> Any:
    if key and any(s in key.lower() for s in _SECRET_KEYS):
        return "***" if value not in (None, "") else value
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_url(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                doc[key] = redact(value, key)
        if record.exc_info:
            doc["exc"] = redact_url(self.formatException(record.exc_info))
        return json.dumps(doc, default=str)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries that are chatty at INFO.
    for name in ("amqtt", "transitions", "uvicorn.access", "alembic", "libav"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
