"""§10 issue glance: per bound org, the Sentry issues linked to the viewed Jira issue.

Read through the Sentry port (the adapter caches answers ≤ 60 s); a Sentry failure is a fixed
message for that org, never a broken page. Links point at Sentry's permalink when it is on the
org's Sentry host (or a subdomain of it, as `acme.sentry.io` is of `sentry.io`), else at the
issue's page built from the binding's Sentry URL.
"""

from __future__ import annotations

import asyncio
import re
from typing import Final
from urllib.parse import quote, urlsplit

import attrs

from core.admin.validation import parse_issue_key
from core.connect.pages import PageUser
from core.model.bindings import Binding
from core.model.errors import SentryError
from core.model.sentry import SentryIssue
from ports.admin import BindingStore, LinkStore
from ports.sentry import SentryApi

# A permalink's `host[:port]` as browsers and `urlsplit` read it alike: DNS labels only (no
# backslash, `%`, `@`, brackets or empty labels), an optional port.
_LINK_NETLOC: Final = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
    r"(?::[0-9]{1,5})?",
    re.ASCII,
)


# §10: what the panel says when Sentry fails for an org; never Sentry's own words (the
# configure page's bind messages speak of saving, which a read never does).
GLANCE_UNREACHABLE: Final = "Sentry could not be reached; these issues are shown again later."
GLANCE_TOKEN_REFUSED: Final = "Sentry refused this site's token for the organization."
GLANCE_NOT_FOUND: Final = "Sentry does not know some of these issues (any more)."
GLANCE_REFUSED: Final = "Sentry did not answer with these issues."
GLANCE_MESSAGES: Final = (GLANCE_UNREACHABLE, GLANCE_TOKEN_REFUSED, GLANCE_NOT_FOUND,
                          GLANCE_REFUSED)


def glance_message(error: SentryError) -> str:
    """The fixed panel message for a failed Sentry read."""
    if error.transient:
        return GLANCE_UNREACHABLE
    if error.status in (401, 403):
        return GLANCE_TOKEN_REFUSED
    if error.status == 404:
        return GLANCE_NOT_FOUND
    return GLANCE_REFUSED


@attrs.frozen
class GlanceIssue:
    short_id: str
    title: str
    status: str
    url: str


@attrs.frozen
class GlanceOrg:
    org: str
    issues: tuple[GlanceIssue, ...]
    problem: str | None = None  # one fixed message when Sentry failed for some of them


@attrs.frozen
class GlanceView:
    issue_key: str
    orgs: tuple[GlanceOrg, ...]


async def show_glance(
    user: PageUser,
    issue_key: object,
    *,
    bindings: BindingStore,
    links: LinkStore,
    sentry: SentryApi,
) -> GlanceView:
    """§10: the linked Sentry issues of `issue_key` in every org bound to the page's site."""
    key = parse_issue_key(issue_key, "issueKey")
    tenant_id = user.tenant.id
    orgs: list[GlanceOrg] = []
    for binding in await bindings.of_tenant(tenant_id):
        link = await links.get(tenant_id, binding.org, key)
        if link is None:
            continue
        answers = await asyncio.gather(
            *(_read(sentry, binding, issue_id) for issue_id in link.sentry_issue_ids)
        )
        issues = tuple(a for a in answers if isinstance(a, GlanceIssue))
        problems = [a for a in answers if isinstance(a, str)]
        orgs.append(GlanceOrg(binding.org, issues, problems[0] if problems else None))
    return GlanceView(issue_key=key, orgs=tuple(orgs))


async def _read(sentry: SentryApi, binding: Binding, issue_id: str) -> GlanceIssue | str:
    try:
        issue = await sentry.get_issue(binding, issue_id)
    except SentryError as error:
        return glance_message(error)
    return GlanceIssue(
        short_id=issue.short_id, title=issue.title, status=issue.status,
        url=issue_url(binding, issue),
    )


def issue_url(binding: Binding, issue: SentryIssue) -> str:
    """Sentry's permalink when it is an http(s) URL on the binding's Sentry host (or a
    subdomain of it) that a browser reads the same way; otherwise the issue page under the
    binding's Sentry URL."""
    if issue.permalink is not None and _on_sentry_host(issue.permalink, binding.sentry_url):
        return issue.permalink
    org, number = quote(binding.org, safe=""), quote(issue.id, safe="")
    return f"{binding.sentry_url}/organizations/{org}/issues/{number}/"


def _on_sentry_host(permalink: str, sentry_url: str) -> bool:
    # Browsers drop tabs and newlines, read a backslash as `/` and decode `%` in a host, where
    # `urlsplit` does not: only plain printable ASCII with a plain host is compared at all.
    if not permalink.isascii() or not permalink.isprintable() or any(
        c in permalink for c in " \\"
    ):
        return False
    own, link = urlsplit(sentry_url), urlsplit(permalink)
    if not _LINK_NETLOC.fullmatch(link.netloc.lower()):
        return False
    try:
        link.port  # noqa: B018 - a port over 65535 raises
    except ValueError:
        return False
    host, own_host = (link.hostname or "").lower(), (own.hostname or "").lower()
    return (
        link.scheme in ("https", own.scheme)
        and link.scheme in ("http", "https")
        and bool(own_host)
        and (host == own_host or host.endswith("." + own_host))
    )
