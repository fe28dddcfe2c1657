"""§10 browser tests: headless Chromium from the distribution (Selenium, the system
chromedriver given explicitly), a test page that plays Jira, and a stub of Atlassian's all.js.

No traffic leaves loopback:
- `--host-resolver-rules` maps `connect-cdn.atl-paas.net` to a loopback TLS server that serves
  the stub all.js (self-signed; `--ignore-certificate-errors`), and makes every other name
  unresolvable (`MAP * ~NOTFOUND`);
- every request to a name that is not loopback goes to a proxy address where nothing listens
  (`--proxy-server`), except the mapped all.js host;
- background networking, component updates and sync are off.

The app's pages stay exactly as in production: they load all.js from Atlassian's URL (the CSP
names it) and call `AP.context.getToken` / `AP.navigator.reload`. The stub all.js implements
those two with `postMessage` to the framing page, and the host page answers with tokens its
server mints with the site's shared secret, as Jira would.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ALL_JS_HOST = "connect-cdn.atl-paas.net"

STUB_ALL_JS = b"""/* Test stub of all.js: AP.context.getToken and AP.navigator.reload over
 * postMessage to the page that frames this one (the test's Jira). */
(function () {
  "use strict";
  var pending = {};
  var next = 1;
  window.addEventListener("message", function (event) {
    var data = event.data;
    if (event.source !== window.parent || !data || data.bridge !== "test-ap") { return; }
    var callback = pending[data.id];
    delete pending[data.id];
    if (callback) { callback(data.token); }
  });
  function call(method, callback) {
    var id = next++;
    if (callback) { pending[id] = callback; }
    window.parent.postMessage({bridge: "test-ap", id: id, method: method}, "*");
  }
  window.AP = {
    context: { getToken: function (callback) { call("getToken", callback); } },
    navigator: { reload: function () { call("reload"); } },
    resize: function () {}
  };
}());
"""

HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Jira (test)</title>
<style>body {{ margin: 0; font-family: sans-serif; }} header {{ padding: 8px 16px;
background: #0747a6; color: #fff; }} iframe {{ width: 100%; height: {height}px; border: 0; }}
</style></head>
<body><header>Jira (test page)</header>
<iframe id="app" name="app" title="Sentry" src="{src}"></iframe>
<script>
var appOrigin = {app_origin};
window.reloads = 0;
window.tokensGiven = 0;
window.addEventListener("message", function (event) {{
  var data = event.data;
  if (event.origin !== appOrigin || !data || data.bridge !== "test-ap") {{ return; }}
  var frame = document.getElementById("app");
  if (data.method === "getToken") {{
    fetch("/mint/context").then(function (r) {{ return r.text(); }}).then(function (token) {{
      window.tokensGiven += 1;
      frame.contentWindow.postMessage({{bridge: "test-ap", id: data.id, token: token}}, appOrigin);
    }});
  }} else if (data.method === "reload") {{
    fetch("/mint/page" + location.search).then(function (r) {{ return r.text(); }})
      .then(function (url) {{ frame.src = url; window.reloads += 1; }});
  }}
}});
</script></body></html>
"""


def self_signed(host: str, directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[int]:
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def stub_all_js(directory: Path) -> Iterator[int]:
    """A loopback TLS server for the stub all.js; yields its port."""

    class Handler(_Quiet):
        def do_GET(self) -> None:
            if urlsplit(self.path).path == "/all.js":
                self.answer(200, STUB_ALL_JS, "text/javascript; charset=utf-8")
            else:
                self.answer(404, b"", "text/plain")

    cert, key = self_signed(ALL_JS_HOST, directory)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with serving(server) as port:
        yield port


class JiraHost:
    """The test's Jira: serves the host page that frames an app page, and mints the tokens.

    `page_url(query)` answers the signed app URL for a host query (`page=configure` or
    `page=glance&issueKey=…`); `context_token()` a context token of the signed-in admin."""

    def __init__(self, page_url: Callable[[dict[str, str]], str],
                 context_token: Callable[[], str], app_origin: str, height: int = 1400) -> None:
        self.page_url = page_url
        self.context_token = context_token
        self.app_origin = app_origin
        self.height = height
        self.tokens_minted = 0

    @contextmanager
    def running(self, port: int = 0) -> Iterator[int]:
        host = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/":
                    page = HOST_PAGE.format(src=host.page_url(query).replace('"', "&quot;"),
                                            app_origin=json.dumps(host.app_origin),
                                            height=host.height)
                    self.answer(200, page.encode(), "text/html; charset=utf-8")
                elif parts.path == "/mint/context":
                    host.tokens_minted += 1
                    self.answer(200, host.context_token().encode(), "text/plain")
                elif parts.path == "/mint/page":
                    self.answer(200, host.page_url(query).encode(), "text/plain")
                else:
                    self.answer(404, b"", "text/plain")

        with serving(ThreadingHTTPServer(("127.0.0.1", port), Handler)) as bound:
            yield bound

    @staticmethod
    def path(**query: str) -> str:
        return "/?" + urlencode(query)


def chromium_options(all_js_port: int, user_data_dir: Path, width: int = 1000,
                     height: int = 1400) -> Any:
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={user_data_dir}",
        f"--window-size={width},{height}",
        # Only loopback: all.js's host is mapped to the stub, every other name unresolvable.
        f"--host-resolver-rules=MAP {ALL_JS_HOST} 127.0.0.1:{all_js_port}, "
        "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9", f"--proxy-bypass-list={ALL_JS_HOST}",
        "--ignore-certificate-errors",
    ]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


@contextmanager
def chromium(all_js_port: int, width: int = 1000, height: int = 1400) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(tempfile.mkdtemp(prefix="sentry-jira-chromium-"))
    driver = webdriver.Chrome(options=chromium_options(all_js_port, profile, width, height),
                              service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
