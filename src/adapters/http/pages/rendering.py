"""§10 page rendering: Jinja2 with autoescape on for every template, and the page headers.

Headers of every page (and error page):
- `Content-Security-Policy`: nothing by default; scripts only from this app ('self') and
  Atlassian's `all.js`; styles, images and fetches only from this app; no forms posted
  anywhere; `frame-ancestors` = the site's base URL and display URL (origins only). An error
  page, whose site may be unknown, may be framed by the configured Jira host patterns.
- `Referrer-Policy: no-referrer` (the page URL carries a token), `X-Content-Type-Options:
  nosniff`, `Cache-Control: no-store`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import urlsplit

import jinja2
from litestar import Response

from core.model.host_patterns import HostPattern
from core.model.tenant import Tenant

ALL_JS: Final = "https://connect-cdn.atl-paas.net/all.js"
HTML: Final = "text/html; charset=utf-8"

_HOST = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?", re.ASCII)
_IPV6 = re.compile(r"\[[0-9a-f:.]{2,45}\]", re.ASCII)
_STAR_HOST = re.compile(r"\*\.[a-z0-9.-]{1,251}", re.ASCII)

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("adapters.http.pages", "templates"),
    autoescape=True,  # every template, whatever its name: every value escaped
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, **values: Any) -> str:
    return _templates.get_template(template).render(**values)


def origin_of(url: str | None) -> str | None:
    """`scheme://host[:port]` of an http(s) URL whose host is a plain DNS name or IP literal;
    None for anything else (nothing odd may reach a CSP header)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc:
        return None
    if ":" in host:
        host = f"[{host}]"
        if not _IPV6.fullmatch(host):
            return None
    elif not _HOST.fullmatch(host):
        return None
    return f"{parts.scheme.lower()}://{host}" + ("" if port is None else f":{port}")


def site_ancestors(tenant: Tenant) -> list[str]:
    """§10: the site's base URL and display URL may frame its pages."""
    found = [origin_of(tenant.base_url), origin_of(tenant.display_url)]
    return sorted({origin for origin in found if origin is not None})


def pattern_ancestors(patterns: Iterable[HostPattern]) -> list[str]:
    """Host patterns as CSP sources (only the shapes CSP can say: a leading `*.` wildcard)."""
    sources = []
    for pattern in patterns:
        host = pattern.host
        if ":" in host:
            host = f"[{host}]"
        elif "*" in host and not _STAR_HOST.fullmatch(host):
            continue
        elif "*" not in host and not _HOST.fullmatch(host):
            continue
        port = "" if pattern.port is None else f":{pattern.port}"
        sources.append(f"{pattern.scheme}://{host}{port}")
    return sources


def page_headers(ancestors: list[str]) -> dict[str, str]:
    framing = " ".join(ancestors) if ancestors else "'none'"
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {ALL_JS}",
            "style-src 'self'",
            "img-src 'self'",
            "connect-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            f"frame-ancestors {framing}",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


def html_response(body: str, *, status: int, ancestors: list[str]) -> Response[str]:
    return Response(body, status_code=status, media_type=HTML, headers=page_headers(ancestors))
