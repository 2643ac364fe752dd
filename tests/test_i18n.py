"""Vietnamese and English on the hub's pages (issue 18): the catalogues, their serving, and
every page in headless Chromium in both languages with no missing key.

Why these tests: a page's strings live in one catalogue per language
(central/web/i18n/<lang>.json). A key typed in a page but absent from a catalogue shows as
⟦key⟧ to the people of Hue, and a placeholder renamed in one language only shows as
"{n}": both are caught here, statically (every key literal of central/web) and in a real
browser (window.__i18nMissing, filled by i18n.js, must stay empty on every view).
The rangers' notifications, written by the service worker while the page is closed, are
checked in both languages too. Screenshots of each view in each language go to the test's
tmp dir.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from edgewatch import contract
from tests.helpers import Hub, Mosquitto, ensure_user, wait_for

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "central" / "web"
CATALOGUES = WEB / "i18n"
LANGS = ("vi", "en")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
PLURAL_FORMS = {"zero", "one", "two", "few", "many", "other"}  # Intl.PluralRules
SITE, EDGE = "hue", "edge-i18n"
ADMIN = ("an", "admin-password-1")


def load(lang: str) -> dict[str, Any]:
    return json.loads((CATALOGUES / f"{lang}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def forms(value: Any) -> list[str]:
    """The texts of an entry: itself, or each form of a plural entry."""
    return list(value.values()) if isinstance(value, dict) else [value]


def placeholders(value: Any) -> set[str]:
    return {name for text in forms(value) for name in PLACEHOLDER.findall(text)}


# -- the catalogues ------------------------------------------------------------------------


def test_catalogues_have_the_same_keys_no_empty_text_and_the_same_placeholders() -> None:
    assert sorted(p.stem for p in CATALOGUES.glob("*.json")) == sorted(LANGS)
    cats = {lang: load(lang) for lang in LANGS}
    en = cats["en"]
    for lang, cat in cats.items():
        assert sorted(set(cat) ^ set(en)) == [], f"keys in {lang} or en only"
    for key in en:
        assert re.fullmatch(r"[a-z]+\.[a-z0-9_.]+", key), f"not a dotted key: {key}"
        for lang, cat in cats.items():
            value = cat[key]
            if isinstance(value, dict):
                assert "other" in value and set(value) <= PLURAL_FORMS, (lang, key)
            for text in forms(value):
                assert isinstance(text, str) and text.strip(), f"{lang} {key}: empty"
            assert placeholders(value) == placeholders(en[key]), f"{lang} {key}: placeholders"


def test_vietnamese_is_written_with_its_diacritics() -> None:
    """A guard against a catalogue typed without diacritics (or copied from English)."""
    vi, en = load("vi"), load("en")
    expect = {
        "dashboard.nav_alerts": "Cảnh báo trực tiếp",
        "dashboard.confirm": "Xác nhận",
        "kinds.forest_fire": "Cháy rừng",
        "kinds.straw_burning": "Đốt rơm rạ",
        "kinds.red_light": "Vượt đèn đỏ",
        "kinds.camera_offline": "Camera mất kết nối",
        "dashboard.hs_level": "Mực nước",
        "public.title": "Điểm ngập lụt",
    }
    assert {k: vi[k] for k in expect} == expect

    # sentences (3 words and more, placeholders aside) that differ from English must have
    # Vietnamese letters: a base letter with a diacritic (NFD decomposes it), or đ
    def vietnamese(text: str) -> bool:
        return any(c.isalpha() and (unicodedata.decomposition(c) or c in "đĐ") for c in text)

    plain = [
        k
        for k, v in vi.items()
        for text in forms(v)
        if len(re.findall(r"[^\W\d_]{2,}", PLACEHOLDER.sub("", text))) >= 3
        and v != en[k]
        and not vietnamese(text)
    ]
    assert plain == []


# a key literal: a string that starts with a section's name and a dot; `${` after it: built
KEY_LITERAL = r"""["'`]((?:%s)\.[a-z0-9_.]*)(\$\{)?"""
ATTR = re.compile(r"""data-i18n="([^"]+)"|data-i18n-attr="([^"]+)\"""")


def page_files() -> list[Path]:
    return sorted(p for p in WEB.iterdir() if p.suffix in {".js", ".html"})


def test_every_key_a_page_names_is_in_the_catalogues() -> None:
    """Static: each key literal in central/web/*.js|*.html exists; a key built at run time
    (`kinds.${k}`) needs only its prefix to be a section's (and must pass a fallback or
    be covered in the browser test)."""
    cat = load("en")
    sections = sorted({k.split(".", 1)[0] for k in cat})
    literal = re.compile(KEY_LITERAL % "|".join(sections))
    missing: list[str] = []
    seen = 0
    for path in page_files():
        text = path.read_text(encoding="utf-8")
        for m in literal.finditer(text):
            key, dynamic = m.group(1), m.group(2)
            seen += 1
            if dynamic:
                if not any(k.startswith(key) for k in cat):
                    missing.append(f"{path.name}: {key}${{…}} (no key with this prefix)")
            elif key not in cat and not key.endswith("."):
                missing.append(f"{path.name}: {key}")
        for m in ATTR.finditer(text) if path.suffix == ".html" else ():
            keys = (
                [m.group(1)] if m.group(1) else [p.split(":", 1)[1] for p in m.group(2).split(";")]
            )
            for key in keys:
                seen += 1
                if key.strip() not in cat:
                    missing.append(f"{path.name}: {key}")
    assert missing == []
    assert seen > 200  # the scan does see the pages' keys


def test_every_page_imports_the_one_module() -> None:
    for name in ("app.js", "login.js", "rangers.js"):
        assert 'from "/i18n/i18n.js"' in (WEB / name).read_text(), name


# -- serving -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from central.app import create_app
    from central.config import HubConfig

    db = f"sqlite:///{tmp_path_factory.mktemp('i18n') / 'hub.sqlite3'}"
    with TestClient(create_app(HubConfig(database_url=db), consume=False)) as c:
        yield c


def test_sections_are_served_alone_with_an_etag_and_a_304(client: TestClient) -> None:
    r = client.get("/i18n/vi.json?sections=common,public")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["public.title"] == "Điểm ngập lụt" and "common.loading" in doc
    assert {k.split(".")[0] for k in doc} == {"common", "public"}  # no dashboard strings
    assert r.headers["cache-control"] == "public, max-age=300"
    etag = r.headers["etag"]
    again = client.get("/i18n/vi.json?sections=common,public", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = client.get("/i18n/en.json?sections=common,public")
    assert other.headers["etag"] != etag and other.json()["public.title"] == "Flood hotspots"
    assert client.get("/i18n/en.json?sections=common").headers["etag"] != other.headers["etag"]
    assert client.get("/i18n/vi.json").json() == load("vi")  # no sections: all of them
    assert client.get("/i18n/fr.json?sections=common").status_code == 404
    assert client.get("/i18n/..%2Fi18n.json").status_code == 404
    assert client.get("/i18n/vi.json?sections=common,nope").status_code == 404
    js = client.get("/i18n/i18n.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "export function t(" in js.text
    assert client.get("/i18n/i18n.css").headers["content-type"].startswith("text/css")


# -- the pages in Chromium -----------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, own_broker: Mosquitto) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("i18n-hub")
    db = f"sqlite:///{tmp / 'hub.sqlite3'}"
    hub = Hub(
        tmp,
        db,
        own_broker,
        f"hub-{uuid.uuid4().hex[:8]}",
        extra={"hotspots_file": str((ROOT / "configs" / "hotspots.geojson").resolve())},
    )
    ensure_user(db, ADMIN[0], "admin", ADMIN[1])
    hub.start()
    pub = own_broker.client(EDGE, "edge", site=SITE)
    # something on each view: an alert of a kind with a translation, a camera's status
    now = datetime.now(UTC)
    alert = contract.EventMessage(
        id=uuid.uuid4(), type="new", seq=0, kind="forest_fire", analytic="fire", label="fire",
        site=SITE, edge_id=EDGE, camera_id="ridge-1", start_time=now, frame_time=now,
        score=0.87, zone="woods_east", attributes={"land_use": "forest"},
    )  # fmt: skip
    status = contract.CameraStatus(
        camera_id="ridge-1", state="degraded", fps=4.5, last_frame_time=now, reconnects=1,
        updated_at=now, degraded_reason="analysis 4.1/s of 10/s",
    )  # fmt: skip
    topic = contract.events_topic(SITE, EDGE)
    pub.publish(topic, alert.model_dump_json().encode(), qos=1).wait_for_publish(5)
    topic = contract.camera_status_topic(SITE, EDGE, "ridge-1")
    pub.publish(topic, status.model_dump_json().encode(), qos=1, retain=True).wait_for_publish(5)
    wait_for(lambda: hub.get("/api/v1/events")["total"] == 1, 15, what="the alert")
    wait_for(lambda: hub.get("/api/v1/cameras")["total"] == 1, 15, what="the camera")
    yield {"hub": hub, "base": hub.base, "alert": str(alert.id)}
    pub.loop_stop()
    pub.disconnect()
    hub.stop()


# view -> a selector that is there once the view is drawn
VIEWS = {
    "alerts": "#alert-table",
    "cameras": "#camera-grid",
    "hotspots": "#hotspot-table",
    "readings": "#readings-empty",
    "review": "#review-empty",
    "watchlist": "#wl-empty",
}
# a text each view shows, per language (the view's title, in the nav and its h1)
TITLES = {
    "vi": {
        "alerts": "Cảnh báo trực tiếp",
        "cameras": "Camera",
        "hotspots": "Điểm ngập lụt",
        "readings": "Số đo",
        "review": "Duyệt vi phạm giao thông",
        "watchlist": "Danh sách biển số theo dõi",
    },
    "en": {
        "alerts": "Live alerts",
        "cameras": "Cameras",
        "hotspots": "Flood hotspots",
        "readings": "Readings",
        "review": "Traffic review",
        "watchlist": "Plate watch list",
    },
}


def no_missing(page: Any, where: str) -> None:
    missing = page.evaluate("window.__i18nMissing")
    assert missing == [], f"{where}: missing keys {missing}"
    text = page.inner_text("body")
    assert "⟦" not in text and "undefined" not in text and "[object" not in text, f"{where}: {text}"


def test_every_view_in_vietnamese_and_english_with_a_remembered_switch(
    world: dict, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian chromium is required (scripts/setup.sh installs it)"
    base = world["base"]
    timings: dict[str, float] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            for lang, locale in (("vi", "vi-VN"), ("en", "en-GB")):
                # the language comes from the browser's own (no choice stored yet)
                ctx = browser.new_context(locale=locale, viewport={"width": 1360, "height": 860})
                page = ctx.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                page.goto(f"{base}/ui")
                page.wait_for_url(f"{base}/login*")
                page.wait_for_function("() => document.querySelector('.lang-switch') !== null")
                assert page.evaluate("document.documentElement.lang") == lang
                assert page.inner_text("#submit") == {"vi": "Đăng nhập", "en": "Sign in"}[lang]
                no_missing(page, f"{lang} login")
                page.fill("#username", ADMIN[0])
                page.fill("#password", "not-the-password")
                page.click("#submit")
                page.wait_for_selector("#error:not([hidden])")
                wrong = {
                    "vi": "sai tên đăng nhập hoặc mật khẩu",
                    "en": "wrong user name or password",
                }
                assert wrong[lang] in page.inner_text("#error")
                page.screenshot(path=str(tmp_path / f"{lang}_login.png"))
                page.fill("#password", ADMIN[1])
                page.click("#submit")
                page.wait_for_selector("body[data-ready='1']")
                for view, ready in VIEWS.items():
                    t0 = time.monotonic()
                    page.goto(f"{base}/ui#/{view}")
                    page.wait_for_selector(ready)
                    timings[f"{lang}/{view}"] = round(time.monotonic() - t0, 3)
                    assert page.inner_text("#view h1") == TITLES[lang][view], view
                    no_missing(page, f"{lang} {view}")
                    page.screenshot(path=str(tmp_path / f"{lang}_{view}.png"), full_page=True)
                nav = page.inner_text("nav")
                assert TITLES[lang]["alerts"] in nav
                # the alert in the list and on its page: kind name, states, numbers
                page.goto(f"{base}/ui#/alerts")
                row = page.wait_for_selector(f"tr[data-id='{world['alert']}']")
                assert {"vi": "Cháy rừng", "en": "Forest fire"}[lang] in row.inner_text()
                assert {"vi": "0,87", "en": "0.87"}[lang] in row.inner_text()  # decimal comma
                page.goto(f"{base}/ui#/alert/{world['alert']}")
                page.wait_for_selector("#audit-empty")
                no_missing(page, f"{lang} alert detail")
                facts = page.inner_text("dl.facts")
                assert {"vi": "vẫn đang diễn ra", "en": "still active"}[lang] in facts
                # dd/mm/yyyy and a 24 h clock in both
                assert re.search(r"\d\d/\d\d/20\d\d", facts) and not re.search(r"[AP]M", facts)
                page.screenshot(path=str(tmp_path / f"{lang}_alert.png"), full_page=True)
                # a camera's set-up page (no edge has sent its frame: the page says so)
                page.goto(f"{base}/ui#/setup/ridge-1")
                page.wait_for_selector("#setup-canvas")
                page.wait_for_timeout(300)
                no_missing(page, f"{lang} setup")
                page.screenshot(path=str(tmp_path / f"{lang}_setup.png"), full_page=True)
                # the rangers' page
                page.goto(f"{base}/rangers")
                page.wait_for_function("() => document.querySelector('.lang-switch') !== null")
                assert page.evaluate("document.documentElement.lang") == lang
                heading = {"vi": "Cảnh báo cháy rừng cho kiểm lâm", "en": "Fire alerts for rangers"}
                assert page.inner_text("h1") == heading[lang]
                no_link = {"vi": "thiếu tên tổ", "en": "no team or token"}
                assert no_link[lang] in page.inner_text("#status")
                no_missing(page, f"{lang} rangers")
                page.screenshot(path=str(tmp_path / f"{lang}_rangers.png"))
                assert errors == []
                ctx.close()

            # the switcher: an English browser switched to Vietnamese, kept after a reload
            ctx = browser.new_context(locale="en-GB", viewport={"width": 1360, "height": 860})
            page = ctx.new_page()
            page.goto(f"{base}/login")
            page.wait_for_function("() => document.querySelector('.lang-switch') !== null")
            page.fill("#username", ADMIN[0])
            page.fill("#password", ADMIN[1])
            page.click("#submit")
            page.wait_for_selector("body[data-ready='1']")
            page.goto(f"{base}/ui#/cameras")
            page.wait_for_selector("#camera-grid")
            vi_button = page.locator(".lang-switch button[lang=vi]")
            en_button = page.locator(".lang-switch button[lang=en]")
            assert en_button.get_attribute("aria-pressed") == "true"
            assert vi_button.get_attribute("aria-pressed") == "false"
            assert vi_button.inner_text() == "Tiếng Việt" and en_button.inner_text() == "English"
            vi_button.click()
            page.wait_for_function("() => document.documentElement.lang === 'vi'")
            page.wait_for_function(
                "() => document.querySelector('#camera-counts')?.textContent.includes('trực tuyến')"
            )
            assert "Cảnh báo trực tiếp" in page.inner_text("nav")  # static texts refilled
            assert page.inner_text("#logout") == "Đăng xuất"
            assert "suy giảm" in page.inner_text("#camera-grid").lower()  # the view drawn again
            assert vi_button.get_attribute("aria-pressed") == "true"
            assert page.evaluate("localStorage.getItem('edgewatch.lang')") == "vi"
            no_missing(page, "switched to vi")
            page.screenshot(path=str(tmp_path / "switched_vi_cameras.png"), full_page=True)
            page.reload()
            page.wait_for_selector("#camera-grid")
            assert page.evaluate("document.documentElement.lang") == "vi"
            assert page.inner_text("#view h1") == "Camera"
            assert "Cảnh báo trực tiếp" in page.inner_text("nav")
            page.goto(f"{base}/rangers")
            page.wait_for_function("() => document.querySelector('.lang-switch') !== null")
            assert page.inner_text("h1") == "Cảnh báo cháy rừng cho kiểm lâm"  # remembered
            page.locator(".lang-switch button[lang=en]").click()
            page.wait_for_function("() => document.documentElement.lang === 'en'")
            assert page.inner_text("h1") == "Fire alerts for rangers"
            assert "no team or token" in page.inner_text("#status")  # redrawn in English
            no_missing(page, "rangers switched to en")
            ctx.close()
        finally:
            browser.close()
    (tmp_path / "timings.json").write_text(json.dumps(timings, indent=2))
    print(f"\nview load times (s): {timings}")


def notifications(page: Any) -> list[dict]:
    return page.evaluate(  # type: ignore[no-any-return]
        """async () => {
            const reg = await navigator.serviceWorker.getRegistration('/rangers');
            return (await reg.getNotifications()).map((n) => ({
                title: n.title, body: n.body, lang: n.lang, actions: n.actions.map((a) => a.title),
            }));
        }"""
    )


def test_ranger_notifications_follow_the_pages_language(world: dict) -> None:
    """The service worker writes the notifications while the page is closed: in the
    language the page chose, and in the other one once the ranger switches (a push is
    delivered through the DevTools protocol: this machine has no push service)."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian chromium is required (scripts/setup.sh installs it)"
    base = world["base"]
    push = {
        "kind": "forest_fire",
        "urgent": True,
        "alerts": [{}, {}],
        "location": {"lat": 16.4637, "lon": 107.5909},
        "reason": "escalation",
        "ack_url": f"{base}/api/v1/incidents/x/ack?token=t",
    }
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            ctx = browser.new_context(locale="vi-VN", permissions=["notifications"])
            page = ctx.new_page()
            cdp = ctx.new_cdp_session(page)
            regs: dict[str, str] = {}

            def updated(event: dict) -> None:
                for r in event["registrations"]:
                    regs[r["scopeURL"]] = r["registrationId"]

            cdp.on("ServiceWorker.workerRegistrationUpdated", updated)
            cdp.send("ServiceWorker.enable")
            page.goto(f"{base}/rangers?team=rangers-north&token=enrol-123")
            page.wait_for_function("() => document.querySelector('.lang-switch') !== null")
            page.click("#enable")  # registers sw.js?lang=vi, then fails to subscribe here
            page.wait_for_function(
                "() => /Đã đăng ký|Không đăng ký được|từ chối/"
                ".test(document.querySelector('#status').textContent)"
            )

            def script() -> str:
                return page.evaluate(  # type: ignore[no-any-return]
                    "navigator.serviceWorker.getRegistration('/rangers')"
                    ".then((r) => r && r.active ? r.active.scriptURL : '')"
                )

            wait_for(lambda: script().endswith("sw.js?lang=vi"), 10, what="the vi worker")
            wait_for(lambda: f"{base}/rangers" in regs, 10, what="the registration's id")

            def deliver(incident: str) -> dict:
                data = json.dumps({**push, "incident_id": incident})
                cdp.send(
                    "ServiceWorker.deliverPushMessage",
                    {"origin": base, "registrationId": regs[f"{base}/rangers"], "data": data},
                )
                shown = wait_for(
                    lambda: notifications(page), 10, what=f"the notification of {incident}"
                )
                assert len(shown) == 1, shown  # the earlier one was closed
                return shown[0]  # type: ignore[no-any-return]

            vi = deliver("inc-vi")
            assert vi["title"] == "KHẨN CẤP Cháy rừng" and vi["lang"] == "vi"
            assert vi["body"] == (
                "2 cảnh báo từ camera - gần 16.4637, 107.5909"
                " - đã chuyển lên cấp trên: chưa ai xác nhận"
            )
            assert vi["actions"] == ["Xác nhận"]
            page.locator(".lang-switch button[lang=en]").click()
            wait_for(lambda: script().endswith("sw.js?lang=en"), 10, what="the en worker")
            page.evaluate(
                "navigator.serviceWorker.getRegistration('/rangers')"
                ".then((r) => r.getNotifications()).then((ns) => ns.forEach((n) => n.close()))"
            )
            en = deliver("inc-en")
            assert en["title"] == "URGENT Forest fire" and en["lang"] == "en"
            assert en["body"] == (
                "2 camera alerts - near 16.4637, 107.5909 - escalated: nobody acknowledged"
            )
            assert en["actions"] == ["Acknowledge"]
            ctx.close()
        finally:
            browser.close()
