"""§10 issue glance: per bound org, the Sentry issues linked to the viewed Jira issue.

Read through the Sentry port (the adapter caches answers ≤ 60 s); a Sentry failure is a fixed
message for that org, never a broken page. Links point at Sentry's permalink when it is on the
org's Sentry host (or a subdomain of it, as `acme.sentry.io` is of `sentry.io`), else at the
issue's page built from the binding's Sentry URL.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote, urlsplit

import attrs

from core.admin.validation import parse_issue_key
from core.connect.pages import PageUser
from core.model.bindings import Binding
from core.model.errors import SentryError
from core.model.sentry import SentryIssue
from core.pages.configure import refusal_message
from ports.admin import BindingStore, LinkStore
from ports.sentry import SentryApi


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
        return refusal_message(error)
    return GlanceIssue(
        short_id=issue.short_id, title=issue.title, status=issue.status,
        url=issue_url(binding, issue),
    )


def issue_url(binding: Binding, issue: SentryIssue) -> str:
    """Sentry's permalink when it is an http(s) URL on the binding's Sentry host (or a
    subdomain of it); otherwise the issue page under the binding's Sentry URL."""
    own = urlsplit(binding.sentry_url)
    if issue.permalink is not None:
        link = urlsplit(issue.permalink)
        host, own_host = (link.hostname or "").lower(), (own.hostname or "").lower()
        if (
            link.scheme in ("https", own.scheme)
            and link.scheme in ("http", "https")
            and "@" not in link.netloc
            and own_host
            and (host == own_host or host.endswith("." + own_host))
        ):
            return issue.permalink
    org, number = quote(binding.org, safe=""), quote(issue.id, safe="")
    return f"{binding.sentry_url}/organizations/{org}/issues/{number}/"
