"""§10 in a real browser: headless Chromium (Debian's `chromium` + `chromium-driver`) loads a
test page that plays Jira; it frames a real `sentry-jira serve` with correctly signed `?jwt=`
URLs and answers the stub AP bridge with context tokens. Against the fake Sentry the test binds
an org, sees it listed, edits it, retries a dead letter and opens the glance of a linked issue.

Screenshots of both pages (1000 px and 400 px wide) are written to the test's directory, and
to `$PAGES_SCREENSHOTS_DIR` when set (`docs/images/` holds the committed ones).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from core.describe import CONFIGURE_PATH, ISSUE_GLANCE_PATH
from tests.support.browser import CHROMEDRIVER, CHROMIUM, JiraHost, chromium, stub_all_js
from tests.support.leak_scan import database_files, find_leaks
from tests.support.pages import ADMIN_ACCOUNT, JIRA_PAGE_PARAMS, context_token, signed_page_url
from tests.support.process import free_port, running_server
from tests.support.sync_e2e import (
    TimedFakeSentry,
    admin,
    deliver,
    install,
    status_body,
    sync_env,
    wait_for,
)

pytestmark = pytest.mark.e2e

CLIENT = "browser-site"
SECRET = "browser-site-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
SENTRY_TOKEN = "sntrys_browser-token-never-shown-0123456789"
TITLE = "<b>Checkout</b> crashed: TypeError"
WAIT = 20.0


@pytest.fixture(scope="module", autouse=True)
def browser_available() -> None:
    """`.ci/run` installs Chromium when it is missing; a machine without it fails loudly."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are needed (apt-get install chromium "
                    "chromium-driver; .ci/run does it)")


@attrs.define
class Scene:
    app: str
    host: str
    tenant_id: int
    sentry: TimedFakeSentry
    jira: JiraHost
    env: dict[str, str]
    shots: Path
    log: Path


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    host_port, app_port = free_port(), free_port()
    app = f"http://127.0.0.1:{app_port}"
    host = f"http://127.0.0.1:{host_port}"

    def page_url(query: dict[str, str]) -> str:
        now = datetime.now(UTC)
        if query.get("page") == "glance":
            path, params = ISSUE_GLANCE_PATH, f"issueKey={query.get('issueKey', '')}&"
        else:
            path, params = CONFIGURE_PATH, ""
        return app + signed_page_url(client_key=CLIENT, secret=SECRET, now=now, path=path,
                                     query=params + JIRA_PAGE_PARAMS)

    jira = JiraHost(page_url, lambda: context_token(client_key=CLIENT, secret=SECRET,
                                                    now=datetime.now(UTC)), app)
    with TimedFakeSentry() as sentry, jira.running(host_port):
        sentry.add_org("acme", SENTRY_TOKEN)
        sentry.add_issue("acme", "4711", title=TITLE, short_id="ACME-9Z")
        env = sync_env(tmp_path)
        tenant_id = install(env, CLIENT, SECRET, host)  # the site's base URL frames the app
        with running_server(env, port=app_port, log=tmp_path / "serve.log"):
            shots = tmp_path / "screenshots"
            shots.mkdir()
            yield Scene(app, host, tenant_id, sentry, jira, env, shots, tmp_path / "serve.log")
            target = os.environ.get("PAGES_SCREENSHOTS_DIR")
            if target:
                Path(target).mkdir(parents=True, exist_ok=True)
                for shot in shots.iterdir():
                    shutil.copy(shot, Path(target) / shot.name)


def until(driver: Any, check: Callable[[Any], Any], what: str) -> Any:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def safe(d: Any) -> Any:
        try:
            return check(d)
        except WebDriverException:  # the frame is reloading
            return False

    return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(safe, message=what)


def into_app_frame(driver: Any, ready_css: str) -> None:
    """Switch into the app's iframe once its page shows `ready_css`."""
    from selenium.webdriver.common.by import By

    def ready(d: Any) -> bool:
        d.switch_to.default_content()
        d.switch_to.frame("app")
        return bool(d.find_elements(By.CSS_SELECTOR, ready_css))

    until(driver, ready, f"the app page with {ready_css}")


def reloads(driver: Any) -> int:
    driver.switch_to.default_content()
    return int(driver.execute_script("return window.reloads"))


def after_change(driver: Any, before: int, ready_css: str) -> None:
    """The page asked Jira to reload it (AP.navigator.reload): wait for the new page."""
    until(driver, lambda d: reloads(d) > before, "the page's reload through the AP bridge")
    into_app_frame(driver, ready_css)


def status_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, "status").text)


def shoot(driver: Any, scene: Scene, name: str, url: str, width: int) -> None:
    """A full-page screenshot of the app page alone (opened directly: framing is not needed
    to look), through Chromium's DevTools protocol."""
    import base64

    driver.switch_to.default_content()
    driver.set_window_size(width, 900)
    driver.get(url)
    time.sleep(0.2)
    height = driver.execute_script(
        "return Math.ceil(document.querySelector('main').getBoundingClientRect().bottom) + 8")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
    })
    (scene.shots / f"{name}-{width}.png").write_bytes(base64.b64decode(shot["data"]))


def test_section10_configure_and_glance_in_a_real_browser(scene: Scene) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with stub_all_js(scene.shots.parent) as all_js_port, chromium(all_js_port) as driver:
        # -- bind an org from the configure page, framed by the site's Jira -----------------
        driver.get(scene.host + JiraHost.path(page="configure"))
        into_app_frame(driver, "#bind-form")
        assert driver.execute_script("return typeof window.AP") == "object"  # all.js loaded
        driver.find_element(By.ID, "bind-url").send_keys(scene.sentry.url)
        driver.find_element(By.ID, "bind-org").send_keys("acme")
        token_field = driver.find_element(By.ID, "bind-token")
        token_field.send_keys(SENTRY_TOKEN)
        before = reloads(driver)
        driver.switch_to.frame("app")
        driver.find_element(By.ID, "bind-token").send_keys(Keys.ENTER)  # keyboard submit
        after_change(driver, before, 'article.binding[data-org="acme"]')
        card = driver.find_element(By.CSS_SELECTOR, 'article.binding[data-org="acme"]')
        assert scene.sentry.url in card.text
        assert SENTRY_TOKEN not in driver.page_source
        checks = scene.sentry.requests_to("GET", scene.sentry.org_path("acme"))
        assert [r.authorization for r in checks] == [f"Bearer {SENTRY_TOKEN}"]  # tried once
        assert scene.jira.tokens_minted >= 1  # the POST used a context token from the bridge

        # -- a wrong token is refused with a fixed message, nothing saved ---------------------
        driver.find_element(By.ID, "bind-url").send_keys(scene.sentry.url)
        driver.find_element(By.ID, "bind-org").send_keys("other")
        driver.find_element(By.ID, "bind-token").send_keys("sntrys_wrong")
        driver.find_element(By.CSS_SELECTOR, "#bind-form button[type=submit]").click()
        until(driver, lambda d: "does not know this organization" in status_text(d),
              "the refusal message")
        orgs = admin(scene.app, "GET", f"/api/tenants/{scene.tenant_id}").json()["orgs"]
        assert orgs == ["acme"]

        # -- edit: sync assignee off ----------------------------------------------------------
        card = driver.find_element(By.CSS_SELECTOR, 'article.binding[data-org="acme"]')
        card.find_element(By.TAG_NAME, "summary").click()
        card.find_element(By.ID, "edit-1-sync-assignee").click()
        before = reloads(driver)
        driver.switch_to.frame("app")
        driver.find_element(By.CSS_SELECTOR, 'form[data-org="acme"] button[type=submit]').click()
        after_change(driver, before, 'article.binding[data-org="acme"]')
        shown = admin(scene.app, "GET", f"/api/tenants/{scene.tenant_id}/orgs/acme").json()
        assert shown["sync_assignee"] is False and shown["sync_status"] is True
        assert "Sync assignee\noff" in driver.find_element(
            By.CSS_SELECTOR, 'article.binding[data-org="acme"] dl').text

        # -- a dead letter (Sentry refuses the write), retried from the page -------------------
        status_map = {"10000": {"resolve": ["10101"], "unresolve": ["4"]}}
        assert admin(scene.app, "PUT", f"/api/tenants/{scene.tenant_id}/orgs/acme",
                     {"status_map": status_map}).status_code == 200
        assert admin(scene.app, "PUT", f"/api/tenants/{scene.tenant_id}/orgs/acme/links/APP-1",
                     {"sentry_issue_ids": ["4711"]}).status_code == 200
        scene.sentry.fail("PUT", scene.sentry.issue_path("acme", "4711"), 400)
        deliver(scene.app, CLIENT, SECRET, status_body("10001", "APP-1"), "d-browser-1")
        wait_for(lambda: len(admin(scene.app, "GET", "/api/dead-letters").json()) == 1,
                 what="the dead letter")
        # Screenshots of the configure page while it shows the dead letter.
        configure = scene.app + signed_page_url(client_key=CLIENT, secret=SECRET,
                                                now=datetime.now(UTC), path=CONFIGURE_PATH)
        for width in (1000, 400):
            shoot(driver, scene, "configure-page", configure, width)
        driver.set_window_size(1000, 1400)
        driver.get(scene.host + JiraHost.path(page="configure"))
        into_app_frame(driver, "button.retry")
        before = reloads(driver)
        driver.switch_to.frame("app")
        driver.find_element(By.CSS_SELECTOR, "button.retry").click()
        after_change(driver, before, "#dead-heading")
        wait_for(lambda: scene.sentry.issue("acme", "4711").status == "resolved",
                 what="the retried write")
        assert admin(scene.app, "GET", "/api/dead-letters").json() == []

        # -- the glance of the linked issue --------------------------------------------------
        driver.switch_to.default_content()
        driver.get(scene.host + JiraHost.path(page="glance", issueKey="APP-1"))
        into_app_frame(driver, "li.issue")
        issue = driver.find_element(By.CSS_SELECTOR, "li.issue")
        assert "ACME-9Z" in issue.text and TITLE in issue.text  # markup shown as text
        assert not driver.find_elements(By.CSS_SELECTOR, "li.issue b")
        assert "RESOLVED" in issue.text.upper()
        link = issue.find_element(By.TAG_NAME, "a").get_attribute("href")
        assert link == f"{scene.sentry.url}/organizations/acme/issues/4711/"

        # -- screenshots ------------------------------------------------------------------------
        glance = scene.app + signed_page_url(client_key=CLIENT, secret=SECRET,
                                             now=datetime.now(UTC), path=ISSUE_GLANCE_PATH,
                                             query="issueKey=APP-1&" + JIRA_PAGE_PARAMS)
        for width in (1000, 400):
            shoot(driver, scene, "issue-glance", glance, width)
        assert len(list(scene.shots.glob("*.png"))) == 4

    # §3, §4.2: no secret, token or JWT in the server's log; the Sentry token encrypted at rest.
    log = scene.log.read_bytes()
    assert find_leaks({"shared secret": SECRET, "sentry token": SENTRY_TOKEN},
                      {"serve.log": log, **database_files(scene.log.parent)}) == []
    assert b"jwt=" not in log and b"eyJ" not in log


def test_section10_csp_stops_another_site_framing_the_page(scene: Scene) -> None:
    """frame-ancestors: a page framed by any origin but the site's is refused by the browser."""
    from selenium.webdriver.common.by import By

    intruder = JiraHost(scene.jira.page_url, scene.jira.context_token, scene.app)
    with stub_all_js(scene.shots.parent) as all_js_port, chromium(all_js_port) as driver, \
            intruder.running() as port:
        driver.get(f"http://127.0.0.1:{port}" + JiraHost.path(page="configure"))
        seen: list[str] = []

        def refused(d: Any) -> bool:
            seen.extend(entry["message"] for entry in d.get_log("browser"))
            return any("frame-ancestors" in message for message in seen)

        until(driver, refused, "Chromium's frame-ancestors refusal")
        driver.switch_to.frame("app")
        assert not driver.find_elements(By.ID, "bind-form")  # nothing rendered in the frame
        driver.switch_to.default_content()
        # The same page framed by the site itself renders.
        driver.get(scene.host + JiraHost.path(page="configure"))
        into_app_frame(driver, "#bind-form")
        assert ADMIN_ACCOUNT not in driver.page_source
