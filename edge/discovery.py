"""Finding the ONVIF cameras on an edge's network, and their RTSP stream URLs.

Why: a box is installed next to cameras whose addresses nobody wrote down, and typing
``rtsp://`` paths from a vendor's manual is where set-up goes wrong. ONVIF cameras answer a
WS-Discovery probe (a multicast UDP datagram on 239.255.255.250:3702) with their device
service address and scopes (name, hardware, location); the device service then tells,
once given credentials, where its Media service is, which profiles it has (main stream,
sub stream, ...) and each profile's RTSP URI.

- :func:`discover` sends the probe for ``dn:NetworkVideoTransmitter`` with the maintained
  ``WSDiscovery`` package (the ``discovery`` extra; imported only here, when called). It runs
  IPv4 only: the package's IPv6 thread takes IPv4 replies too and dies on them, and ONVIF
  cameras all answer on IPv4.
- :func:`stream_uris` speaks ONVIF SOAP 1.2 over HTTP with ``urllib`` alone (no zeep, no
  WSDL download): ``GetSystemDateAndTime`` (the camera's clock, so the token's time is
  the camera's), ``GetCapabilities`` (``GetServices`` as a fallback) for the Media service
  address, then ``GetProfiles`` and one ``GetStreamUri`` (RTP-Unicast over RTSP) per profile.
  Requests carry a WS-Security UsernameToken with a PasswordDigest as the ONVIF Core
  specification says: ``Base64(SHA-1(nonce + created + password))``, so the password never
  crosses the network. Answers are parsed with ``xml.etree`` (``defusedxml`` when it is
  installed; otherwise any document with a DTD is refused, so no entity is ever expanded).

The URIs returned carry no credentials (a camera that puts them in is stripped): the caller
adds them where it keeps secrets. Errors are :class:`Unreachable`, :class:`NotAuthorized`,
:class:`NotOnvif` and, for any other SOAP fault, :class:`OnvifError` (their base).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import ipaddress
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

NS_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_DIGEST = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    "#PasswordDigest"
)
NONCE_BASE64 = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
NS_DEVICE = "http://www.onvif.org/ver10/device/wsdl"
NS_MEDIA = "http://www.onvif.org/ver10/media/wsdl"
NS_SCHEMA = "http://www.onvif.org/ver10/schema"
NS_NETWORK = "http://www.onvif.org/ver10/network/wsdl"
NVT_TYPE = (NS_NETWORK, "NetworkVideoTransmitter", "dn")
SCOPE_PREFIX = "onvif://www.onvif.org/"
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
# Faults (SOAP 1.2 subcodes) that mean the credentials were refused.
_AUTH_FAULTS = {"NotAuthorized", "FailedAuthentication", "InvalidSecurity", "FailedCheck"}


class DiscoveryUnavailable(RuntimeError):
    """The WSDiscovery package is not installed."""


class OnvifError(Exception):
    """A camera did not give what was asked (the base of the errors below)."""


class Unreachable(OnvifError):
    """No HTTP answer: refused, timed out, no route, unknown host."""


class NotAuthorized(OnvifError):
    """The camera refused the user name or password (HTTP 401 or ter:NotAuthorized)."""


class NotOnvif(OnvifError):
    """Something answered, but not as an ONVIF device does."""


# -- discovery -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    """One camera that answered the probe."""

    epr: str
    xaddrs: tuple[str, ...]
    scopes: tuple[str, ...] = ()
    name: str | None = None
    hardware: str | None = None
    location: str | None = None
    host: str | None = None

    @property
    def url(self) -> str | None:
        """The device service address to use: the first HTTP one on an IPv4 host."""
        for xaddr in self.xaddrs:
            if _is_ipv4_http(xaddr):
                return xaddr
        return self.xaddrs[0] if self.xaddrs else None


def _is_ipv4_http(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    try:
        return ipaddress.ip_address(parts.hostname).version == 4
    except ValueError:
        return True  # a host name


def parse_scopes(scopes: list[str] | tuple[str, ...]) -> dict[str, str | None]:
    """``name``, ``hardware`` and ``location`` from ONVIF scope URIs (``None`` where absent).

    ``onvif://www.onvif.org/location/country/vietnam`` and ``.../location/city/hue`` give
    ``country/vietnam, city/hue``.
    """
    found: dict[str, list[str]] = {"name": [], "hardware": [], "location": []}
    for scope in scopes:
        if not scope.startswith(SCOPE_PREFIX):
            continue
        key, _, value = scope[len(SCOPE_PREFIX) :].partition("/")
        value = urllib.parse.unquote(value).strip()
        if key in found and value:
            found[key].append(value)
    return {
        "name": found["name"][0] if found["name"] else None,
        "hardware": found["hardware"][0] if found["hardware"] else None,
        "location": ", ".join(found["location"]) or None,
    }


def _device(epr: str, xaddrs: list[str], scopes: list[str]) -> Device:
    bare = Device(epr=epr, xaddrs=tuple(xaddrs), scopes=tuple(scopes), **parse_scopes(scopes))
    host = urllib.parse.urlsplit(bare.url).hostname if bare.url else None
    return dataclasses.replace(bare, host=host)


class IPv4Only:
    """Mixin for ``wsdiscovery``'s threaded classes: start the IPv4 networking only.

    ``ThreadedNetworking`` queues every unicast reply on both its IPv4 and IPv6 threads, and
    the thread of the other family dies on it (``socket.gaierror``), so a publisher or a
    searcher with both stops working after its first answer. Put it first in the bases:
    ``class Searcher(IPv4Only, ThreadedWSDiscovery)``.
    """

    def _startThreads(self) -> None:  # the package's (private) hook, overridden
        me: Any = self
        try:
            from wsdiscovery.threaded import AddressMonitorThread, NetworkingThreadIPv4
        except ImportError:  # another layout of the package: its own start, both families
            super()._startThreads()  # type: ignore[misc]
            return
        if me._networkingThread_v4 is not None:
            return
        me._networkingThread_v4 = NetworkingThreadIPv4(me)
        me._networkingThread_v4.start()
        me._addrsMonitorThread_v4 = AddressMonitorThread(me, socket.AF_INET)
        me._addrsMonitorThread_v4.start()


def _wsdiscovery() -> Any:
    try:
        from wsdiscovery.discovery import ThreadedWSDiscovery
        from wsdiscovery.qname import QName
    except ImportError as exc:
        raise DiscoveryUnavailable(
            "camera discovery needs the WSDiscovery package: pip install 'edgewatch[discovery]'"
        ) from exc

    class _Searcher(IPv4Only, ThreadedWSDiscovery):  # type: ignore[misc]
        pass

    return _Searcher, QName


def discover(timeout_s: float = 3.0) -> list[Device]:
    """Probe the local networks for ONVIF cameras (NetworkVideoTransmitter); wait ``timeout_s``.

    Multicast does not cross routers: this finds the cameras on the box's own subnets.
    Sorted by host, then name.
    """
    searcher_cls, qname = _wsdiscovery()
    nvt = qname(*NVT_TYPE)
    searcher = searcher_cls()
    searcher.start()
    try:
        services = searcher.searchServices(types=[nvt], timeout=timeout_s)
    finally:
        searcher.stop()
    devices = [
        _device(
            str(s.getEPR()),
            [str(x) for x in (s.getXAddrs() or [])],
            [str(sc.getValue()) for sc in (s.getScopes() or [])],
        )
        for s in services
    ]
    return sorted(devices, key=lambda d: (d.host or "", d.name or "", d.epr))


# -- ONVIF SOAP ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """One media profile and its RTSP stream (``uri`` is ``None`` where the camera refused)."""

    token: str
    name: str | None = None
    width: int | None = None
    height: int | None = None
    encoding: str | None = None
    uri: str | None = None
    error: str | None = None

    @property
    def resolution(self) -> str | None:
        return f"{self.width}x{self.height}" if self.width and self.height else None


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _local(qname: str | None) -> str:
    """``ter:NotAuthorized`` or ``{ns}NotAuthorized`` -> ``NotAuthorized``."""
    text = (qname or "").strip()
    return text.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


try:  # pragma: no cover - which one depends on what is installed
    from defusedxml.ElementTree import fromstring as _defused_fromstring  # type: ignore
except ImportError:  # pragma: no cover
    _defused_fromstring = None


class _NoDtdBuilder(ET.TreeBuilder):
    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise ValueError("a document type declaration (DTD) is not accepted")


def parse_xml(data: bytes) -> ET.Element:
    """Parse an untrusted answer: defusedxml if installed, else the stdlib refusing any DTD."""
    if _defused_fromstring is not None:
        return _defused_fromstring(data)
    parser = ET.XMLParser(target=_NoDtdBuilder())
    parser.feed(data)
    return parser.close()


def strip_credentials(url: str) -> str:
    """``rtsp://user:pass@host/x`` -> ``rtsp://host/x``."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def device_service_url(device: str) -> str:
    """A device service URL from a URL, ``host`` or ``host:port`` (the ONVIF default path)."""
    if "://" in device:
        return device
    return f"http://{device}/onvif/device_service"


@dataclass
class OnvifClient:
    """Authenticated SOAP 1.2 calls to one camera (WS-Security UsernameToken, digest)."""

    device_url: str
    username: str
    password: str
    timeout_s: float = 5.0
    clock_offset_s: float = 0.0  # the camera's clock minus ours
    _opener: urllib.request.OpenerDirector = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.device_url = device_service_url(self.device_url)
        # Cameras are on the local network: never through an HTTP proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # WS-Security -----------------------------------------------------------------------------

    def _security_header(self) -> str:
        nonce = os.urandom(16)
        created = dt.datetime.fromtimestamp(time.time() + self.clock_offset_s, dt.UTC)
        created_s = created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created.microsecond // 1000:03d}Z"
        digest = password_digest(nonce, created_s, self.password)
        return (
            f'<wsse:Security xmlns:wsse="{NS_WSSE}" xmlns:wsu="{NS_WSU}" s:mustUnderstand="1">'
            "<wsse:UsernameToken>"
            f"<wsse:Username>{escape(self.username)}</wsse:Username>"
            f'<wsse:Password Type="{PASSWORD_DIGEST}">{digest}</wsse:Password>'
            f'<wsse:Nonce EncodingType="{NONCE_BASE64}">'
            f"{base64.b64encode(nonce).decode()}</wsse:Nonce>"
            f"<wsu:Created>{created_s}</wsu:Created>"
            "</wsse:UsernameToken></wsse:Security>"
        )

    # transport -------------------------------------------------------------------------------

    def call(self, url: str, action: str, body: str, *, auth: bool = True) -> ET.Element:
        """POST one SOAP 1.2 request; the first element in the answer's Body."""
        header = f"<s:Header>{self._security_header()}</s:Header>" if auth else ""
        envelope = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<s:Envelope xmlns:s="{NS_SOAP12}" xmlns:tds="{NS_DEVICE}" xmlns:trt="{NS_MEDIA}"'
            f' xmlns:tt="{NS_SCHEMA}">{header}<s:Body>{body}</s:Body></s:Envelope>'
        ).encode()
        req = urllib.request.Request(
            url,
            data=envelope,
            method="POST",
            headers={"Content-Type": f'application/soap+xml; charset=utf-8; action="{action}"'},
        )
        op = action.rsplit("/", 1)[-1]
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                data = resp.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            data = exc.read(MAX_RESPONSE_BYTES) if exc.fp is not None else b""
            fault = _fault(data)
            if fault is not None:
                raise _fault_error(url, op, *fault) from None
            if exc.code == 401:
                challenge = exc.headers.get("WWW-Authenticate", "") if exc.headers else ""
                hint = (
                    " (it asks for HTTP Digest, which is not supported: enable WS-Security"
                    " UsernameToken on the camera)"
                    if challenge.lower().startswith("digest")
                    else ""
                )
                raise NotAuthorized(f"{url}: {op}: user name or password refused{hint}") from None
            if exc.code in (404, 405, 415):
                raise NotOnvif(f"{url}: {op}: HTTP {exc.code}: no ONVIF service here") from None
            raise OnvifError(f"{url}: {op}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise Unreachable(f"cannot reach {url}: {reason}") from None
        try:
            root = parse_xml(data)
        except (ET.ParseError, ValueError) as exc:
            raise NotOnvif(f"{url}: {op}: the answer is not SOAP XML ({exc})") from None
        if root.tag not in (_q(NS_SOAP12, "Envelope"), _q(NS_SOAP11, "Envelope")):
            raise NotOnvif(f"{url}: {op}: the answer is not a SOAP envelope ({root.tag})")
        ns = root.tag[1:].split("}", 1)[0]
        body_el = root.find(_q(ns, "Body"))
        if body_el is None or len(body_el) == 0:
            raise NotOnvif(f"{url}: {op}: the SOAP answer has an empty body")
        first = body_el[0]
        if first.tag == _q(ns, "Fault"):
            raise _fault_error(url, op, *_fault_parts(first, ns))
        return first

    # the ONVIF operations ------------------------------------------------------------------

    def sync_clock(self) -> None:
        """Take the camera's UTC clock (unauthenticated, as ONVIF allows); keep ours if none."""
        try:
            answer = self.call(
                self.device_url,
                f"{NS_DEVICE}/GetSystemDateAndTime",
                "<tds:GetSystemDateAndTime/>",
                auth=False,
            )
        except (Unreachable, NotOnvif):
            raise
        except OnvifError:
            return  # it wants credentials even for this (or has no clock): ours will do
        utc = answer.find(f".//{_q(NS_SCHEMA, 'UTCDateTime')}")
        if utc is None:
            return
        try:
            values = {
                k: int(_text(utc, f"{part}/{{{NS_SCHEMA}}}{k}") or "")
                for part, keys in (
                    (f"{{{NS_SCHEMA}}}Date", ("Year", "Month", "Day")),
                    (f"{{{NS_SCHEMA}}}Time", ("Hour", "Minute", "Second")),
                )
                for k in keys
            }
            camera = dt.datetime(
                values["Year"],
                values["Month"],
                values["Day"],
                values["Hour"],
                values["Minute"],
                values["Second"],
                tzinfo=dt.UTC,
            )
        except ValueError:
            return
        self.clock_offset_s = camera.timestamp() - time.time()

    def media_xaddr(self) -> str:
        """The Media service address: GetCapabilities, else GetServices."""
        try:
            caps = self.call(
                self.device_url,
                f"{NS_DEVICE}/GetCapabilities",
                "<tds:GetCapabilities><tds:Category>Media</tds:Category></tds:GetCapabilities>",
            )
            xaddr = _text(caps, f".//{_q(NS_SCHEMA, 'Media')}/{_q(NS_SCHEMA, 'XAddr')}")
            if xaddr:
                return xaddr
        except (NotAuthorized, Unreachable, NotOnvif):
            raise
        except OnvifError:
            pass  # some devices only implement GetServices
        services = self.call(
            self.device_url,
            f"{NS_DEVICE}/GetServices",
            "<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability>"
            "</tds:GetServices>",
        )
        for svc in services.iter(_q(NS_DEVICE, "Service")):
            if _text(svc, _q(NS_DEVICE, "Namespace")) == NS_MEDIA:
                xaddr = _text(svc, _q(NS_DEVICE, "XAddr"))
                if xaddr:
                    return xaddr
        raise NotOnvif(f"{self.device_url}: the device names no Media service (ver10)")

    def profiles(self, media_url: str) -> list[Profile]:
        answer = self.call(media_url, f"{NS_MEDIA}/GetProfiles", "<trt:GetProfiles/>")
        out = []
        for p in answer.iter(_q(NS_MEDIA, "Profiles")):
            token = p.get("token")
            if not token:
                continue
            venc = p.find(_q(NS_SCHEMA, "VideoEncoderConfiguration"))
            width = height = None
            encoding = None
            if venc is not None:
                width = _int(_text(venc, f"{_q(NS_SCHEMA, 'Resolution')}/{_q(NS_SCHEMA, 'Width')}"))
                height = _int(
                    _text(venc, f"{_q(NS_SCHEMA, 'Resolution')}/{_q(NS_SCHEMA, 'Height')}")
                )
                encoding = _text(venc, _q(NS_SCHEMA, "Encoding"))
            out.append(
                Profile(
                    token=token,
                    name=_text(p, _q(NS_SCHEMA, "Name")),
                    width=width,
                    height=height,
                    encoding=encoding,
                )
            )
        return out

    def stream_uri(self, media_url: str, token: str) -> str:
        answer = self.call(
            media_url,
            f"{NS_MEDIA}/GetStreamUri",
            "<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream>"
            "<tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup>"
            f"<trt:ProfileToken>{escape(token)}</trt:ProfileToken></trt:GetStreamUri>",
        )
        uri = _text(answer, f".//{_q(NS_SCHEMA, 'Uri')}")
        if not uri:
            raise OnvifError(f"{media_url}: GetStreamUri({token}): no Uri in the answer")
        return strip_credentials(uri)


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """ONVIF Core / WS-Security: ``Base64(SHA-1(nonce + created + password))``."""
    raw = hashlib.sha1(nonce + created.encode() + password.encode())
    return base64.b64encode(raw.digest()).decode()


def stream_uris(
    device_url: str, username: str, password: str, timeout_s: float = 5.0
) -> list[Profile]:
    """Every media profile of the camera at ``device_url`` with its RTSP URI (no credentials).

    ``device_url`` is a device service address (a discovered ``Device.url``), or a bare
    ``host[:port]``. Raises :class:`Unreachable`, :class:`NotAuthorized`, :class:`NotOnvif`
    or :class:`OnvifError`. A profile whose URI the camera refuses (other than for the
    credentials) comes back with ``uri=None`` and the ``error``.
    """
    client = OnvifClient(device_url, username, password, timeout_s)
    client.sync_clock()
    media = client.media_xaddr()
    out = []
    for prof in client.profiles(media):
        try:
            uri: str | None = client.stream_uri(media, prof.token)
            error = None
        except (NotAuthorized, Unreachable):
            raise
        except OnvifError as exc:
            uri, error = None, str(exc)
        out.append(
            Profile(prof.token, prof.name, prof.width, prof.height, prof.encoding, uri, error)
        )
    return out


# -- helpers -----------------------------------------------------------------------------------


def _text(el: ET.Element, path: str) -> str | None:
    found = el.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _fault_parts(fault: ET.Element, ns: str) -> tuple[list[str], str]:
    """(code and subcode local names, reason text) of a SOAP 1.2 or 1.1 Fault."""
    codes: list[str] = []
    if ns == NS_SOAP12:
        node = fault.find(_q(ns, "Code"))
        while node is not None:
            codes.append(_local(_text(node, _q(ns, "Value"))))
            node = node.find(_q(ns, "Subcode"))
        reason = _text(fault, f"{_q(ns, 'Reason')}/{_q(ns, 'Text')}") or ""
    else:
        codes.append(_local(_text(fault, "faultcode")))
        reason = _text(fault, "faultstring") or ""
    return codes, reason


def _fault(data: bytes) -> tuple[list[str], str] | None:
    """The fault in an error answer's body, if it is one."""
    try:
        root = parse_xml(data)
    except (ET.ParseError, ValueError):
        return None
    for ns in (NS_SOAP12, NS_SOAP11):
        fault = root.find(f"{_q(ns, 'Body')}/{_q(ns, 'Fault')}")
        if fault is not None:
            return _fault_parts(fault, ns)
    return None


def _fault_error(url: str, op: str, codes: list[str], reason: str) -> OnvifError:
    said = f"{' / '.join(c for c in codes if c)}{': ' + reason if reason else ''}"
    if _AUTH_FAULTS.intersection(codes) or "not authorized" in reason.lower():
        return NotAuthorized(f"{url}: {op}: user name or password refused ({said})")
    return OnvifError(f"{url}: {op}: SOAP fault {said}")
