"""Cameras and their analytics, kept at the hub and sent to the edges that run them.

Why it is built this way:

- **One source of truth, validated where it is written.** Each camera's configuration is
  an ``edge.config.CameraConfig`` document: the same pydantic models ``edgewatch config
  check`` and the edge use, so what the hub accepts the edge accepts (an edge running an
  older release may still refuse a newer key; it says so in its status, with the key
  path). Errors come back as ``[{loc: "analytics.0.zone", msg}]`` so the set-up page can
  show each one where the geometry is.
- **Versions and history.** Every save raises the camera's version (1, 2, ...) and adds a
  history row: who, when, the comment, and a short summary of what changed (top-level
  keys, analytics by name, the edge it moved from). ``config_version`` is
  ``contract.config_hash`` of the document sent, which the edge recomputes and reports
  back as the version it runs: the hub knows, per camera, whether its edge caught up.
- **Credentials never come back.** The URL's password is cut out before the document is
  stored (``rtsp://admin:***@host/...``) and kept apart, encrypted with Fernet under a key
  the hub generates once and keeps in ``hub_secrets`` (shared by the hubs on a database).
  The API, the history, the logs and a dump of the table only ever see ``***``; a PUT whose
  URL says ``***`` keeps the stored password. Only the retained message to the edge
  carries the real URL: the broker lets only the hub write it and only that edge read it.
  (``config_version`` is a hash over the real URL too, since the edge must verify what it
  got; it is 64 bits of SHA-256 over the whole document, shown to every role.)
- **Delivery as the watch list does it** (``central.watchlist``): per edge, one retained
  ``EdgeConfigMessage`` with every camera the hub holds for it, on
  ``edgewatch/v1/config/{site}/{edge}/cameras``; a thread publishes an edge's message
  whenever its version is newer than the one it last sent, after every (re)connect and
  every ``resync_s``. An edge's version only grows (``max(version + 1, now in ms)``, also
  at every hub start), so a hub on a restored database never goes back.
- **An edge is never emptied by accident.** Only edges the hub has held cameras for get a
  message (``camera_config_edges``): a hub on a fresh database sends nothing and the edges
  keep their last good configuration. An edge whose last camera moved away is sent an
  empty list, on purpose.
- **All or nothing.** A template applied to N cameras and a CSV import are one
  transaction: every row is validated first, and one bad row changes nothing.
"""

from __future__ import annotations

import base64
import copy
import csv
import hashlib
import hmac
import io
import json
import logging
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from pydantic import ValidationError
from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from central.delivery.retained import Publish, RetainedSync, hub_publisher
from central.incidents.acklinks import stored_secret
from central.storage.camera_config_models import (
    CameraConfigEdgeRow,
    CameraConfigHistoryRow,
    CameraConfigRow,
)
from edge.config import CameraConfig
from edgewatch import contract
from edgewatch.brokerauth import RESERVED_SITES
from edgewatch.configfile import format_validation_error
from edgewatch.contract import CameraConfigEntry, EdgeConfigMessage, config_hash

log = logging.getLogger(__name__)

MASK = "***"
KEY_SECRET_NAME = "cameras.url_key"
MAX_CAMERAS_PER_EDGE = 1024  # EdgeConfigMessage.cameras' bound
MAX_CSV_BYTES = 1024 * 1024
MAX_CSV_ROWS = 5000
MAX_ERRORS = 200
CSV_COLUMNS = ("id", "url", "site", "edge", "lat", "lon", "bearing", "fov", "template")
CSV_REQUIRED = ("id", "url", "site", "edge")

ErrorList = list[dict[str, Any]]


class CameraConfigError(ValueError):
    """A refused change; ``errors`` (key paths and messages) when a document is invalid."""

    status = 422

    def __init__(self, message: str, errors: ErrorList | None = None) -> None:
        super().__init__(message)
        self.errors = errors or [{"loc": "", "msg": message}]


class NoSuchCamera(CameraConfigError):
    status = 404


class Conflict(CameraConfigError):
    status = 409


@dataclass(frozen=True)
class Saved:
    camera_id: str
    version: int
    config_version: str
    changed: bool
    created: bool = False


def _now() -> datetime:
    return datetime.now(UTC)


# -- credentials ----------------------------------------------------------------------------


def split_password(url: str) -> tuple[str, str | None]:
    """``url`` with its password as ``***``, and the password (None when it has none).

    The authority is what lies between ``://`` and the first ``/``, ``?`` or ``#``; its
    user info is everything before its last ``@`` (as ``urllib.parse`` reads it), and the
    password what follows the user name's ``:``. A user name alone is not a secret."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url, None
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return url, None
    user, colon, password = userinfo.partition(":")
    if not colon or not password:
        return url, None
    return f"{scheme}://{user}:{MASK}@{host}{tail}", password


def with_password(masked_url: str, password: str | None) -> str:
    """The URL with ``***`` (its password) replaced by ``password``."""
    shown, found = split_password(masked_url)
    if found != MASK or password is None:
        return masked_url
    head, _, tail = shown.partition(f":{MASK}@")
    return f"{head}:{password}@{tail}"


def _shown_url(url: str) -> str:
    return split_password(url)[0]


# -- validation -----------------------------------------------------------------------------


def _loc(loc: tuple[Any, ...]) -> str:
    # as edgewatch.configfile.format_validation_error: union tags and the analytic's type
    # tag dropped (analytics.0.objects.zone -> analytics.0.zone)
    loc = tuple(p for p in loc if not (isinstance(p, str) and "[" in p))
    loc = tuple(
        p
        for i, p in enumerate(loc)
        if not (isinstance(p, str) and i >= 2 and loc[i - 2] == "analytics")
    )
    return ".".join(str(p) for p in loc)


def validation_errors(exc: ValidationError) -> ErrorList:
    """``[{loc, msg}]`` with the key paths and messages ``config check`` prints."""
    out: ErrorList = []
    for err, line in zip(exc.errors(), format_validation_error(exc), strict=True):
        loc = _loc(err["loc"])
        prefix = f"{loc or '(top level)'}: "
        out.append({"loc": loc, "msg": line.removeprefix(prefix)})
    return out


def _check_ids(site: str, edge_id: str) -> ErrorList:
    out: ErrorList = []
    for name, value in (("site", site), ("edge_id", edge_id)):
        if not isinstance(value, str) or not re.match(contract.ID_PATTERN, value):
            out.append({"loc": name, "msg": f"must match {contract.ID_PATTERN}"})
    if site in RESERVED_SITES:
        out.append({"loc": "site", "msg": f"{site!r} is reserved (not a site name)"})
    return out


@dataclass
class Prepared:
    """A validated document, split into what is stored and what is sent."""

    camera_id: str
    site: str
    edge_id: str
    stored: dict[str, Any]  # password as ***
    sent: dict[str, Any]  # the real URL
    password: str | None
    config_version: str


# -- change summaries -----------------------------------------------------------------------


def _analytics_by_name(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    items = doc.get("analytics")
    for i, a in enumerate(items if isinstance(items, list) else []):
        name = str(a.get("name") or a.get("type") or "objects") if isinstance(a, dict) else str(i)
        out[name if name not in out else f"{name}#{i}"] = a
    return out


def summarize(
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    moved: tuple[tuple[str, str], tuple[str, str]] | None = None,
    credentials: bool = False,
) -> list[str]:
    """What changed between two (redacted) documents, a few words per item."""
    if old is None:
        return ["created"]
    if new is None:
        return ["deleted"]
    out: list[str] = []
    if moved is not None:
        (s0, e0), (s1, e1) = moved
        out.append(f"moved from {s0}/{e0} to {s1}/{e1}")
    for key in sorted((set(old) | set(new)) - {"analytics"}):
        if key not in new:
            out.append(f"{key} removed")
        elif key not in old:
            out.append(f"{key} added")
        elif old[key] != new[key]:
            out.append(f"{key} changed")
    if credentials:
        out.append("url credentials changed")
    a0, a1 = _analytics_by_name(old), _analytics_by_name(new)
    for name in a1:
        if name not in a0:
            out.append(f"analytics.{name} added")
        elif a0[name] != a1[name]:
            before, after = a0[name], a1[name]
            if isinstance(before, dict) and isinstance(after, dict):
                keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
                more = f" (+{len(keys) - 4})" if len(keys) > 4 else ""
                out.append(f"analytics.{name} changed: {', '.join(keys[:4])}{more}")
            else:
                out.append(f"analytics.{name} changed")
    out += [f"analytics.{name} removed" for name in a0 if name not in a1]
    if list(a0) != list(a1) and set(a0) == set(a1):
        out.append("analytics reordered")
    return out or ["no change"]


# -- the service ----------------------------------------------------------------------------


@dataclass
class _Edges:
    """Edges a transaction changed: their versions are raised before it commits."""

    keys: set[tuple[str, str]] = field(default_factory=set)

    def add(self, site: str, edge_id: str) -> None:
        self.keys.add((site, edge_id))


class CameraConfigService(RetainedSync):
    """The configurations in the database, and their delivery (see the module docstring)."""

    thread_name = "camera-configs"

    def __init__(
        self,
        sessions: sessionmaker[Session],
        publish: Publish | None,
        connected: Callable[[], bool] = lambda: True,
        *,
        max_cameras_per_edge: int = MAX_CAMERAS_PER_EDGE,
        resync_s: float = 5.0,
        poll_s: float = 1.0,
    ) -> None:
        super().__init__(publish, connected, resync_s=resync_s, poll_s=poll_s)
        self.sessions = sessions
        self.max_cameras = min(max_cameras_per_edge, MAX_CAMERAS_PER_EDGE)
        self._fernet: Fernet | None = None

    @classmethod
    def for_consumer(
        cls, sessions: sessionmaker[Session], consumer: Any, **kw: Any
    ) -> CameraConfigService:
        """As the hub runs it: published on the MQTT consumer's connection (none when the
        hub runs without one: configurations are kept, not sent)."""
        if consumer is None:
            return cls(sessions, None, connected=lambda: False, **kw)
        return cls(sessions, hub_publisher(consumer), connected=consumer.connected.is_set, **kw)

    # -- secrets ---------------------------------------------------------------------------

    def _crypto(self) -> Fernet:
        """The URL key; loaded before any write transaction opens (``stored_secret`` uses
        sessions of its own, which a SQLite write lock held here would block)."""
        if self._fernet is None:
            raw = stored_secret(self.sessions, KEY_SECRET_NAME).encode()
            key = hmac.new(raw, b"edgewatch camera url v1", hashlib.sha256).digest()
            self._fernet = Fernet(base64.urlsafe_b64encode(key))
        return self._fernet

    def _decrypt(self, token: str | None) -> str | None:
        if token is None:
            return None
        return self._crypto().decrypt(token.encode()).decode()

    def sent_config(self, row: CameraConfigRow) -> dict[str, Any]:
        """The document as the edge gets it: the real URL."""
        doc = copy.deepcopy(row.config)
        if row.url_secret is not None:
            secret = self._decrypt(row.url_secret)
            for key in ("url", "record_url"):  # the record stream: the same camera's account
                if isinstance(doc.get(key), str):
                    doc[key] = with_password(doc[key], secret)
        return doc

    # -- reading ---------------------------------------------------------------------------

    def get(self, session: Session, camera_id: str) -> CameraConfigRow | None:
        return session.get(CameraConfigRow, camera_id)

    def history(
        self, session: Session, camera_id: str, limit: int = 100, offset: int = 0
    ) -> list[CameraConfigHistoryRow]:
        q = (
            select(CameraConfigHistoryRow)
            .where(CameraConfigHistoryRow.camera_id == camera_id)
            .order_by(CameraConfigHistoryRow.version.desc())
            .limit(limit)
            .offset(offset)
        )
        return list(session.scalars(q))

    def configs(self, session: Session) -> list[CameraConfigRow]:
        q = select(CameraConfigRow).order_by(
            CameraConfigRow.site, CameraConfigRow.edge_id, CameraConfigRow.camera_id
        )
        return list(session.scalars(q))

    def edge_version(self, session: Session, site: str, edge_id: str) -> int | None:
        row = session.get(CameraConfigEdgeRow, (site, edge_id))
        return None if row is None else int(row.version)

    # -- validation ------------------------------------------------------------------------

    def prepare(
        self,
        camera_id: str,
        site: str,
        edge_id: str,
        config: Any,
        existing: CameraConfigRow | None,
    ) -> Prepared:
        """Validate ``config`` for ``camera_id`` on ``site``/``edge_id``; raise
        :class:`CameraConfigError` with every problem found."""
        errors = _check_ids(site, edge_id)
        if not isinstance(config, dict):
            raise CameraConfigError("the configuration must be an object")
        if config.get("id") != camera_id:
            errors.append({"loc": "id", "msg": f"must be the camera's id ({camera_id!r})"})
        sent = copy.deepcopy(config)
        stored = copy.deepcopy(config)
        password: str | None = None
        url = config.get("url")
        if isinstance(url, str):
            shown, password = split_password(url)
            if password == MASK:
                password = self._decrypt(existing.url_secret) if existing is not None else None
                if password is None:
                    errors.append(
                        {"loc": "url", "msg": f"{MASK} stands for the stored password; none is"}
                    )
            stored["url"] = shown
            sent["url"] = with_password(shown, password)
        record = config.get("record_url")
        if isinstance(record, str):
            # The record stream is the same camera's main stream, on the same account: its
            # password is url's (stored once, encrypted), never a second secret in clear.
            rshown, rpassword = split_password(record)
            if rpassword not in (None, MASK) and rpassword != password:
                errors.append(
                    {
                        "loc": "record_url",
                        "msg": "its password must be url's (the record stream is the same "
                        f"camera's account); write {MASK} or leave it out",
                    }
                )
            elif rpassword is not None and password is None:
                errors.append({"loc": "record_url", "msg": "has a password but url has none"})
            stored["record_url"] = rshown
            sent["record_url"] = with_password(rshown, password)
        try:
            CameraConfig.model_validate(sent)
        except ValidationError as exc:
            errors += validation_errors(exc)
        if not errors:
            try:  # what the edge parses with contract.loads: no NaN, no huge numbers
                contract.loads(json.dumps(sent, allow_nan=True))
            except (contract.PayloadError, TypeError, ValueError) as exc:
                errors.append({"loc": "", "msg": f"not contract JSON: {exc}"})
        if errors:
            raise CameraConfigError("the configuration is not valid", errors)
        return Prepared(camera_id, site, edge_id, stored, sent, password, config_hash(sent))

    # -- writing ---------------------------------------------------------------------------

    def _write(
        self,
        session: Session,
        p: Prepared,
        existing: CameraConfigRow | None,
        actor: str,
        comment: str | None,
        now: datetime,
        edges: _Edges,
    ) -> Saved:
        old_password = self._decrypt(existing.url_secret) if existing is not None else None
        credentials = existing is not None and old_password != p.password
        moved = existing is not None and (existing.site, existing.edge_id) != (p.site, p.edge_id)
        if (
            existing is not None
            and not moved
            and not credentials
            and existing.config_version == p.config_version
            and existing.config == p.stored
        ):
            return Saved(p.camera_id, existing.version, existing.config_version, changed=False)
        token = (
            existing.url_secret
            if existing is not None and not credentials
            else (
                self._crypto().encrypt(p.password.encode()).decode()
                if p.password is not None
                else None
            )
        )
        changes = summarize(
            existing.config if existing is not None else None,
            p.stored,
            ((existing.site, existing.edge_id), (p.site, p.edge_id))
            if existing is not None and moved
            else None,
            credentials,
        )
        version = (existing.version if existing is not None else 0) + 1
        if existing is None:
            session.add(
                CameraConfigRow(
                    camera_id=p.camera_id,
                    site=p.site,
                    edge_id=p.edge_id,
                    version=version,
                    config_version=p.config_version,
                    config=p.stored,
                    url_secret=token,
                    updated_at=now,
                    updated_by=actor,
                )
            )
        else:
            edges.add(existing.site, existing.edge_id)
            existing.site, existing.edge_id = p.site, p.edge_id
            existing.version, existing.config_version = version, p.config_version
            existing.config, existing.url_secret = p.stored, token
            existing.updated_at, existing.updated_by = now, actor
        edges.add(p.site, p.edge_id)
        session.add(
            CameraConfigHistoryRow(
                camera_id=p.camera_id,
                version=version,
                config_version=p.config_version,
                site=p.site,
                edge_id=p.edge_id,
                config=p.stored,
                author=actor,
                created_at=now,
                comment=comment,
                changes=changes,
            )
        )
        log.info(
            "camera configuration saved",
            extra={
                "camera_id": p.camera_id,
                "site": p.site,
                "edge_id": p.edge_id,
                "version": version,
                "config_version": p.config_version,
                "by": actor,
                "changes": changes[:10],
            },
        )
        return Saved(p.camera_id, version, p.config_version, changed=True, created=existing is None)

    def _commit_edges(self, session: Session, edges: _Edges, now: datetime) -> None:
        """Raise each changed edge's version, after checking its message still fits."""
        session.flush()
        for site, edge_id in sorted(edges.keys):
            n = session.scalar(
                select(func.count())
                .select_from(CameraConfigRow)
                .where(CameraConfigRow.site == site, CameraConfigRow.edge_id == edge_id)
            )
            if (n or 0) > self.max_cameras:
                raise Conflict(
                    f"{site}/{edge_id} would run {n} cameras (at most {self.max_cameras})",
                    [{"loc": "edge_id", "msg": f"{edge_id} has too many cameras ({n})"}],
                )
            version = self._bump(session, site, edge_id, now)
            size = len(self._payload(session, site, edge_id, version))
            if size > contract.MAX_EDGE_CONFIG_BYTES:
                raise Conflict(
                    f"{site}/{edge_id}'s configuration would be {size} bytes "
                    f"(at most {contract.MAX_EDGE_CONFIG_BYTES})",
                    [{"loc": "", "msg": f"the configuration of {edge_id} is too large"}],
                )

    def _bump(self, session: Session, site: str, edge_id: str, now: datetime) -> int:
        """Raise an edge's version, atomically (one UPDATE: two hubs cannot both take v+1)."""
        ms = int(now.timestamp() * 1000)
        st = CameraConfigEdgeRow
        session.execute(
            update(st)
            .where(st.site == site, st.edge_id == edge_id)
            .values(version=case((st.version + 1 > ms, st.version + 1), else_=ms), updated_at=now)
            .execution_options(synchronize_session=False)
        )
        version = session.scalar(select(st.version).where(st.site == site, st.edge_id == edge_id))
        if version is None:
            session.add(st(site=site, edge_id=edge_id, version=ms, updated_at=now))
            session.flush()
            version = ms
        return int(version)

    def _transaction(self, work: Callable[[Session, _Edges, datetime], Any]) -> Any:
        self._crypto()
        now = _now()
        edges = _Edges()
        try:
            with self.sessions.begin() as session:
                out = work(session, edges, now)
                if edges.keys:
                    self._commit_edges(session, edges, now)
        except IntegrityError:  # another writer saved the same camera at the same moment
            raise Conflict("the camera was changed at the same moment; try again") from None
        if edges.keys:
            self.changed()
        return out

    def put(
        self,
        camera_id: str,
        site: str,
        edge_id: str,
        config: Any,
        actor: str,
        comment: str | None = None,
    ) -> Saved:
        """Create or change one camera's configuration (a new site/edge moves it)."""

        def work(session: Session, edges: _Edges, now: datetime) -> Saved:
            existing = session.get(CameraConfigRow, camera_id, with_for_update=True)
            p = self.prepare(camera_id, site, edge_id, config, existing)
            return self._write(session, p, existing, actor, comment, now, edges)

        return self._transaction(work)  # type: ignore[no-any-return]

    def delete(self, camera_id: str, actor: str, comment: str | None = None) -> None:
        """Take a camera off its edge; its history stays."""

        def work(session: Session, edges: _Edges, now: datetime) -> None:
            row = session.get(CameraConfigRow, camera_id, with_for_update=True)
            if row is None:
                raise NoSuchCamera(f"no configuration for camera {camera_id!r}")
            session.add(
                CameraConfigHistoryRow(
                    camera_id=camera_id,
                    version=row.version + 1,
                    config_version=row.config_version,
                    site=row.site,
                    edge_id=row.edge_id,
                    config=None,
                    author=actor,
                    created_at=now,
                    comment=comment,
                    changes=["deleted"],
                )
            )
            edges.add(row.site, row.edge_id)
            session.delete(row)
            log.info("camera configuration deleted", extra={"camera_id": camera_id, "by": actor})

        self._transaction(work)

    def apply_template(
        self, template_id: str, targets: Iterable[str], actor: str, comment: str | None = None
    ) -> list[Saved]:
        """Copy ``template_id``'s analytics to each of ``targets`` (replacing theirs)."""
        wanted = list(dict.fromkeys(targets))

        def work(session: Session, edges: _Edges, now: datetime) -> list[Saved]:
            template = session.get(CameraConfigRow, template_id)
            if template is None:
                raise NoSuchCamera(f"no configuration for camera {template_id!r}")
            rows = {
                r.camera_id: r
                for r in session.scalars(
                    select(CameraConfigRow)
                    .where(CameraConfigRow.camera_id.in_(wanted))
                    .with_for_update()
                )
            }
            missing = [c for c in wanted if c not in rows]
            if missing:
                raise NoSuchCamera(
                    f"no configuration for {', '.join(missing[:20])}",
                    [{"camera_id": c, "loc": "", "msg": "no such camera"} for c in missing],
                )
            analytics = template.config.get("analytics", [])
            note = comment or f"analytics from {template_id}"
            prepared, errors = [], []
            for cid in wanted:
                row = rows[cid]
                doc = copy.deepcopy(row.config)
                doc["analytics"] = copy.deepcopy(analytics)
                try:
                    prepared.append(self.prepare(cid, row.site, row.edge_id, doc, row))
                except CameraConfigError as exc:
                    errors += [{"camera_id": cid, **e} for e in exc.errors]
            if errors:
                raise CameraConfigError("the template does not fit every camera", errors)
            return [
                self._write(session, p, rows[p.camera_id], actor, note, now, edges)
                for p in prepared
            ]

        return self._transaction(work)  # type: ignore[no-any-return]

    def import_csv(self, text: str, actor: str, comment: str | None = None) -> list[Saved]:
        """Cameras from CSV (``id,url,site,edge,lat,lon,bearing,fov,template``), each row a
        camera created or changed; an empty cell keeps what the hub holds. ``template``
        names a camera (held, or on an earlier row) whose analytics the row gets. Every row
        is checked first; a bad one raises with every row's problems and nothing changes."""
        rows = _parse_csv(text)

        def work(session: Session, edges: _Edges, now: datetime) -> list[Saved]:
            ids = [r["id"] for _, r in rows if r.get("id")]
            held = {
                r.camera_id: r
                for r in session.scalars(
                    select(CameraConfigRow)
                    .where(CameraConfigRow.camera_id.in_(ids))
                    .with_for_update()
                )
            }
            errors: ErrorList = []
            prepared: list[Prepared] = []
            docs: dict[str, dict[str, Any]] = {}
            seen: set[str] = set()
            for line, r in rows:

                def bad(loc: str, msg: str, line: int = line, r: dict[str, str] = r) -> None:
                    cam = r.get("id") or None
                    errors.append({"row": line, "camera_id": cam, "loc": loc, "msg": msg})

                cid = r.get("id", "")
                if not cid:
                    bad("id", "a camera id is needed")
                    continue
                if cid in seen:
                    bad("id", f"camera {cid!r} is on an earlier row too")
                    continue
                seen.add(cid)
                existing = held.get(cid)
                doc = copy.deepcopy(existing.config) if existing is not None else {"id": cid}
                site = r.get("site") or (existing.site if existing else "")
                edge_id = r.get("edge") or (existing.edge_id if existing else "")
                incomplete = not site or not edge_id or (existing is None and not r.get("url"))
                if not site:
                    bad("site", "a site is needed for a new camera")
                if not edge_id:
                    bad("edge", "an edge is needed for a new camera")
                if r.get("url"):
                    doc["url"] = r["url"]
                elif existing is None:
                    bad("url", "a URL is needed for a new camera")
                numbers: dict[str, float] = {}
                for col in ("lat", "lon", "bearing", "fov"):
                    if r.get(col):
                        try:
                            numbers[col] = float(r[col])
                        except ValueError:
                            bad(col, f"not a number: {r[col][:40]!r}")
                            continue
                        if not math.isfinite(numbers[col]):
                            bad(col, "not a finite number")
                            del numbers[col]
                if bool(r.get("lat")) != bool(r.get("lon")):
                    bad("lon" if r.get("lat") else "lat", "give both lat and lon, or neither")
                elif "lat" in numbers and "lon" in numbers:
                    doc["location"] = {"lat": numbers["lat"], "lon": numbers["lon"]}
                if "bearing" in numbers:
                    doc["bearing_deg"] = numbers["bearing"]
                if "fov" in numbers:
                    doc["hfov_deg"] = numbers["fov"]
                if r.get("template"):
                    source = docs.get(r["template"])
                    if source is None:
                        t = held.get(r["template"]) or session.get(CameraConfigRow, r["template"])
                        source = t.config if t is not None else None
                    if source is None:
                        bad("template", f"no camera {r['template']!r} to copy analytics from")
                    else:
                        doc["analytics"] = copy.deepcopy(source.get("analytics", []))
                docs[cid] = doc
                if incomplete:
                    continue  # validating the document would repeat what is said
                try:
                    prepared.append(self.prepare(cid, site, edge_id, doc, existing))
                except CameraConfigError as exc:
                    for e in exc.errors:
                        bad(str(e.get("loc", "")), str(e["msg"]))
            if errors:
                raise CameraConfigError(
                    f"{len({e['row'] for e in errors})} of {len(rows)} rows are not valid; "
                    "nothing was imported",
                    errors[:MAX_ERRORS],
                )
            note = comment or "CSV import"
            return [
                self._write(session, p, held.get(p.camera_id), actor, note, now, edges)
                for p in prepared
            ]

        return self._transaction(work)  # type: ignore[no-any-return]

    # -- delivery --------------------------------------------------------------------------

    def entries(self, session: Session, site: str, edge_id: str) -> list[CameraConfigEntry]:
        rows = session.scalars(
            select(CameraConfigRow)
            .where(CameraConfigRow.site == site, CameraConfigRow.edge_id == edge_id)
            .order_by(CameraConfigRow.camera_id)
        )
        out = []
        for row in rows:
            doc = self.sent_config(row)
            out.append(
                CameraConfigEntry(
                    camera_id=row.camera_id, config_version=config_hash(doc), config=doc
                )
            )
        return out

    def message(self, session: Session, site: str, edge_id: str) -> EdgeConfigMessage:
        state = session.get(CameraConfigEdgeRow, (site, edge_id))
        version = int(state.version) if state is not None else 0
        updated = state.updated_at if state is not None else _now()
        return EdgeConfigMessage(
            version=version, updated_at=updated, cameras=self.entries(session, site, edge_id)
        )

    def _payload(self, session: Session, site: str, edge_id: str, version: int) -> bytes:
        msg = EdgeConfigMessage(
            version=version, updated_at=_now(), cameras=self.entries(session, site, edge_id)
        )
        return msg.model_dump_json().encode()

    def sync(self) -> int:
        """Publish each edge's message that this hub has not published yet; how many."""
        if self.publish is None:
            return 0
        with self.sessions() as session:
            states = session.execute(
                select(CameraConfigEdgeRow.site, CameraConfigEdgeRow.edge_id,
                       CameraConfigEdgeRow.version)
            ).all()  # fmt: skip
        sent = 0
        for site, edge_id, version in states:
            if self._sent.get((site, edge_id)) == version:
                continue
            try:
                with self.sessions() as session:
                    msg = self.message(session, site, edge_id)
            except InvalidToken:
                # the URL key changed (hub_secrets lost): sending this edge fewer cameras
                # would stop them; it keeps its last good configuration instead
                log.error(
                    "camera URL password cannot be decrypted; edge configuration not sent",
                    extra={"site": site, "edge_id": edge_id},
                )
                continue
            payload = msg.model_dump_json().encode()
            try:
                self.publish(contract.edge_config_topic(site, edge_id), payload)
            except Exception as exc:  # the broker went away: the next round retries
                log.warning(
                    "edge configuration not delivered; retrying",
                    extra={"site": site, "edge_id": edge_id, "error": str(exc)[:200]},
                )
                break
            self._sent[(site, edge_id)] = msg.version
            sent += 1
            log.info(
                "edge configuration published",
                extra={
                    "site": site,
                    "edge_id": edge_id,
                    "version": msg.version,
                    "cameras": len(msg.cameras),
                    "bytes": len(payload),
                },
            )
        return sent

    def start(self) -> None:
        now = _now()
        ms = int(now.timestamp() * 1000)
        st = CameraConfigEdgeRow
        try:
            self._crypto()
            with self.sessions.begin() as session:  # see "versions only grow" above
                session.execute(
                    update(st).values(
                        version=case((st.version + 1 > ms, st.version + 1), else_=ms),
                        updated_at=now,
                    )
                )
        except Exception as exc:
            log.error(
                "camera configuration versions not raised at start",
                extra={"error": str(exc)[:200]},
            )
        self.start_loop()


def _parse_csv(text: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, {column: stripped cell}) per data row; CameraConfigError when the
    file itself is wrong (header, size, shape)."""
    if len(text.encode()) > MAX_CSV_BYTES:
        raise CameraConfigError(f"the file is larger than {MAX_CSV_BYTES} bytes")
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise CameraConfigError("the file is empty") from None
    except csv.Error as exc:
        raise CameraConfigError(f"not CSV: {exc}") from None
    errors: ErrorList = []
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        errors.append(
            {"row": 1, "loc": "header",
             "msg": f"unknown columns {unknown}; known: {', '.join(CSV_COLUMNS)}"}
        )  # fmt: skip
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        errors.append({"row": 1, "loc": "header", "msg": f"missing columns {missing}"})
    if len(set(header)) != len(header):
        errors.append({"row": 1, "loc": "header", "msg": "a column is named twice"})
    if errors:
        raise CameraConfigError("the header is not valid", errors)
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # blank line
            line = reader.line_num
            if len(cells) > len(header):
                errors.append({"row": line, "loc": "", "msg": "more cells than columns"})
                continue
            rows.append((line, {h: c.strip() for h, c in zip(header, cells, strict=False)}))
            if len(rows) > MAX_CSV_ROWS:
                raise CameraConfigError(f"more than {MAX_CSV_ROWS} rows")
    except csv.Error as exc:
        raise CameraConfigError(f"not CSV (line {reader.line_num}): {exc}") from None
    if errors:
        raise CameraConfigError("some rows are not valid", errors[:MAX_ERRORS])
    if not rows:
        raise CameraConfigError("the file has no rows")
    return rows
