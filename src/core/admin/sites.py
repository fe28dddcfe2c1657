"""administer webhook sites (SPEC §8.1, §A): register, rotate the secret, set the credential,
remove. Plain functions taking ports, like `core.admin.bindings`.

Order of a registration: the body (400) → the base URL against SENTRY_JIRA_JIRA_HOSTS (400) →
an installed site with that base URL (409, before anything is sent to Jira) → the credential
tried once with `myself` (refused → 400 naming the problem; unreachable → 502) → stored, the
base URL checked again in the same transaction (409). Nothing is stored when any step fails.

Decisions where the SPEC is silent:
- `api-token` goes with `cloud`, `pat` with `data-center` (the outbound rules of §8.1); the
  other pairs are a 400.
- A Data Center base URL keeps its context path, without a trailing slash; a Cloud one is
  `scheme://host[:port]`. Two sites are the same site when these strings are equal.
- Rotating the secret or setting the credential of a removed site is a 404 (register it
  again); removing a removed site is a no-op (204), as L5 answers a repeated uninstall.
- Every Jira failure but a refusal (timeout, 5xx, 429, odd answer, refused address) is "Jira
  unreachable" (502).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

import attrs

from core import describe
from core.admin.validation import json_object, parse_header_token, parse_id, required
from core.jira_webhooks.verify import new_webhook_secret
from core.model.credentials import ApiToken, JiraFlavor, PersonalAccessToken, SiteCredential
from core.model.errors import (
    BadRequest,
    Conflict,
    NotFound,
    UpstreamError,
    UpstreamFailed,
    UpstreamRefused,
)
from core.model.host_patterns import HostPattern, HostRefused, check_origin
from core.model.tenant import WEBHOOK, NewSite, Tenant, TenantStatus
from ports.clock import Clock
from ports.jira import JiraApi
from ports.tenants import TenantStore

SITE_FIELDS: Final = ("base_url", "flavor", "auth", "credential")
CREDENTIAL_FIELDS: Final = ("auth", "credential")
WEBHOOK_PATH: Final = describe.WEBHOOK_PATH
MAX_CREDENTIAL_LENGTH: Final = 4096
MAX_EMAIL_LENGTH: Final = 254
MAX_BASE_URL_LENGTH: Final = 2048
# A context path: segments of unreserved characters, no `.` / `..` segment (the outbound
# client accepts exactly these).
_CONTEXT_PATH: Final = re.compile(r"(/(?!\.\.?(?:/|$))[A-Za-z0-9._~-]+)*")
# An e-mail for `Basic base64(email:token)`: printable ASCII, one `@`, no `:` or whitespace.
_EMAIL: Final = re.compile(r"[!-9;-?A-~]+@[!-9;-?A-~]+", re.ASCII)
_NOT_A_SITE: Final = "no webhook site with this id"


def webhook_url(base_url: str, site_id: int) -> str:
    """§8.1: the URL to paste into Jira, under this app's configured base URL."""
    return base_url.rstrip("/") + WEBHOOK_PATH.format(site_id=site_id)


# -- parsing -------------------------------------------------------------------------------


def parse_flavor(value: object) -> JiraFlavor:
    if not isinstance(value, str) or value not in {f.value for f in JiraFlavor}:
        raise BadRequest('flavor must be "cloud" or "data-center"')
    return JiraFlavor(value)


def parse_secret_text(value: object, field: str = "credential") -> str:
    """A Jira API token or PAT (§8.1): it goes into a header like a Sentry token."""
    return parse_header_token(value, field, MAX_CREDENTIAL_LENGTH)


def parse_auth(auth: object) -> tuple[str, str | None]:
    """`auth` {"kind": "api-token", "email"} or {"kind": "pat"}: (kind, e-mail or None).
    Needs no site, so a bad `auth` is 400 before any id is looked up (§5 admin order)."""
    fields = json_object(auth, ("kind", "email"), what="auth")
    kind = required(fields, "kind") if fields else None
    if kind == "api-token":
        email = fields.get("email")
        if (not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH
                or not _EMAIL.fullmatch(email)):
            raise BadRequest("auth.email must be the e-mail address of the API token's account")
        return kind, email
    if kind == "pat":
        if "email" in fields:
            raise BadRequest('auth kind "pat" takes no email')
        return kind, None
    raise BadRequest('auth.kind must be "api-token" or "pat"')


def credential_for(auth: tuple[str, str | None], token: str,
                   flavor: JiraFlavor) -> SiteCredential:
    """The credential of a parsed `auth`, if it fits the site's flavor (else 400)."""
    kind, email = auth
    if kind == "api-token":
        if flavor is not JiraFlavor.CLOUD:
            raise BadRequest('auth kind "api-token" is for flavor "cloud"; use "pat"')
        assert email is not None
        return ApiToken(email=email, token=token)
    if flavor is not JiraFlavor.DATA_CENTER:
        raise BadRequest('auth kind "pat" is for flavor "data-center"; use "api-token"')
    return PersonalAccessToken(token)


def parse_credential(auth: object, credential: object, flavor: JiraFlavor) -> SiteCredential:
    """`auth` and `credential` of a request body, for a site of `flavor`."""
    parsed = parse_auth(auth)
    return credential_for(parsed, parse_secret_text(credential), flavor)


def check_site_base_url(url: object, flavor: JiraFlavor, patterns: tuple[HostPattern, ...]) -> str:
    """§8.1 `base_url`: allowed by SENTRY_JIRA_JIRA_HOSTS; `cloud` has no path, `data-center`
    may carry a context path. The normalised URL, without a trailing slash."""
    refused = BadRequest("base_url is not an allowed Jira site (SENTRY_JIRA_JIRA_HOSTS)")
    if not isinstance(url, str) or len(url) > MAX_BASE_URL_LENGTH:
        raise refused
    try:
        origin = check_origin(url, patterns)
    except HostRefused:
        raise refused from None
    path = origin.path.rstrip("/")
    if path and flavor is JiraFlavor.CLOUD:
        raise BadRequest("base_url of a cloud site has no path")
    if not _CONTEXT_PATH.fullmatch(path):
        raise BadRequest("base_url's context path may hold only letters, digits and ._~-")
    return str(origin) + path


@attrs.frozen
class RegisterSite:
    base_url: str
    flavor: JiraFlavor
    credential: SiteCredential = attrs.field(repr=False)

    @classmethod
    def parse(cls, body: object, jira_hosts: tuple[HostPattern, ...]) -> RegisterSite:
        fields = json_object(body, SITE_FIELDS)
        for name in SITE_FIELDS:
            required(fields, name)
        flavor = parse_flavor(fields["flavor"])
        base_url = check_site_base_url(fields["base_url"], flavor, jira_hosts)
        return cls(base_url=base_url, flavor=flavor,
                   credential=parse_credential(fields["auth"], fields["credential"], flavor))


@attrs.frozen
class SetCredential:
    site_id: int
    auth: tuple[str, str | None]  # (kind, e-mail): see parse_auth
    credential: str = attrs.field(repr=False)

    @classmethod
    def parse(cls, site_id: object, body: object) -> SetCredential:
        number = parse_id(site_id, "site id")
        fields = json_object(body, CREDENTIAL_FIELDS)
        for name in CREDENTIAL_FIELDS:
            required(fields, name)
        return cls(site_id=number, auth=parse_auth(fields["auth"]),
                   credential=parse_secret_text(fields["credential"]))


@attrs.frozen
class RegisteredSite:
    """A new site and its webhook secret, shown this once."""

    site: Tenant
    webhook_secret: str = attrs.field(repr=False)


# -- use cases -----------------------------------------------------------------------------


async def try_credential(site: Tenant, *, jira: JiraApi) -> None:
    """§8.1: call `myself` once. Refused → 400 naming the problem; any other failure → 502."""
    try:
        await jira.myself(site)
    except UpstreamRefused as refusal:
        raise BadRequest(f"Jira refused the credential: {refusal.detail}") from None
    except UpstreamError:
        raise UpstreamFailed("Jira could not be reached to check the credential") from None


def _candidate(base_url: str, flavor: JiraFlavor, credential: SiteCredential,
               now: datetime) -> Tenant:
    """The site as it would be stored, for the credential check (never stored itself)."""
    return Tenant(id=0, client_key="", base_url=base_url, display_url=None,
                  status=TenantStatus.INSTALLED, installed_at=now, shared_secret=None,
                  transport=WEBHOOK, site_credential=credential, flavor=flavor)


async def register_site(
    command: RegisterSite, *, tenants: TenantStore, jira: JiraApi, clock: Clock
) -> RegisteredSite:
    """§8.1 register: 409 before anything is sent, the credential tried, then stored."""
    if await tenants.base_url_taken(command.base_url):  # again inside the insert's transaction
        raise Conflict("an installed site already has this base_url")
    now = clock.now()
    await try_credential(_candidate(command.base_url, command.flavor, command.credential, now),
                         jira=jira)
    secret = new_webhook_secret()
    site = await tenants.register_site(NewSite(
        base_url=command.base_url, flavor=command.flavor, credential=command.credential,
        webhook_secret=secret, registered_at=now))
    return RegisteredSite(site=site, webhook_secret=secret)


async def find_webhook_site(site_id: object, *, tenants: TenantStore) -> Tenant:
    """The webhook site `site_id` (400 unless an integer id; 404 unless a webhook site)."""
    number = parse_id(site_id, "site id")
    site = await tenants.get(number)
    if site is None or site.transport != WEBHOOK:
        raise NotFound(_NOT_A_SITE)
    return site


async def rotate_webhook_secret(
    site_id: object, *, tenants: TenantStore, clock: Clock
) -> RegisteredSite:
    """§8.1 rotate: a new secret; the previous one verifies for one hour more."""
    number = parse_id(site_id, "site id")
    secret = new_webhook_secret()
    site = await tenants.rotate_webhook_secret(number, secret, now=clock.now())
    if site is None:
        raise NotFound(_NOT_A_SITE)
    return RegisteredSite(site=site, webhook_secret=secret)


async def set_site_credential(
    command: SetCredential, *, tenants: TenantStore, jira: JiraApi, clock: Clock
) -> Tenant:
    """§8.1 credentials: tried once like at registration, then stored."""
    site = await find_webhook_site(command.site_id, tenants=tenants)
    if site.status is not TenantStatus.INSTALLED:
        raise NotFound(_NOT_A_SITE)
    credential = credential_for(command.auth, command.credential, site.flavor)
    await try_credential(_candidate(site.base_url, site.flavor, credential, clock.now()),
                         jira=jira)
    updated = await tenants.set_site_credential(site.id, credential)
    if updated is None:  # removed meanwhile
        raise NotFound(_NOT_A_SITE)
    return updated


async def remove_site(site_id: object, *, tenants: TenantStore) -> Tenant:
    """§8.1 remove: `uninstalled`, every secret and credential erased; bindings, links and
    journal kept (as L5)."""
    removed = await tenants.remove_site(parse_id(site_id, "site id"))
    if removed is None:
        raise NotFound(_NOT_A_SITE)
    return removed
