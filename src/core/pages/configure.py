"""§10 configure page: what it shows, and the changes it makes through the §A use cases.

A binding changed here follows the §A rules (`BindingChanges.apply`: a new Sentry URL needs a
token). A new Sentry URL or token is tried once against Sentry
(`GET /api/0/organizations/{org}/`) before anything is saved; a refusal is told with a message
from a fixed set (`SENTRY_REFUSALS`), never Sentry's own text. The status map is not edited on
the page: it keeps what the admin API set.
"""

from __future__ import annotations

from typing import Final

import attrs

from core.admin import bindings as admin
from core.admin.bindings import BindingChanges, BindOrg, OrgRef
from core.admin.validation import check_sentry_url_allowed, json_object, parse_id, parse_org
from core.connect.pages import PageUser, mint_action_token
from core.model.bindings import Binding
from core.model.errors import BadRequest, NotFound, SentryError, Unauthorized
from core.model.host_patterns import HostPattern
from core.model.tenant import Tenant
from ports.admin import BindingStore
from ports.clock import Clock
from ports.journal import DeadLetter, Journal
from ports.sentry import SentryApi
from ports.sync_store import JournalEntry
from ports.tenants import TenantStore

JOURNAL_ON_PAGE: Final = 20
DEAD_LETTERS_ON_PAGE: Final = 50
# The fields the bind / edit form may send (status_map: the admin API only).
PAGE_BINDING_FIELDS: Final = (
    "sentry_url",
    "sentry_token",
    "sync_status",
    "sync_assignee",
    "resolution_strategy",
    "skip_archived",
)

# §10: what the page says when Sentry refuses a bind; never Sentry's own words.
TOKEN_REFUSED: Final = (
    "Sentry refused this token for that organization: check the token and its scopes."
)
ORG_NOT_FOUND: Final = "Sentry does not know this organization at that URL."
SENTRY_UNREACHABLE: Final = "Sentry could not be reached; nothing was saved. Try again later."
SENTRY_REFUSED: Final = "Sentry did not accept the request; nothing was saved."
SENTRY_REFUSALS: Final = (TOKEN_REFUSED, ORG_NOT_FOUND, SENTRY_UNREACHABLE, SENTRY_REFUSED)


class SentryCheckFailed(BadRequest):
    """The bind was not saved: Sentry refused the org, URL or token (400, a fixed message)."""


def refusal_message(error: SentryError) -> str:
    """The fixed message for a Sentry failure (bind check and glance alike)."""
    if error.transient:
        return SENTRY_UNREACHABLE
    if error.status in (401, 403):
        return TOKEN_REFUSED
    if error.status == 404:
        return ORG_NOT_FOUND
    return SENTRY_REFUSED


@attrs.frozen
class ConfigureView:
    """Everything the configure page shows; `action_token` goes into the page for its POSTs."""

    tenant: Tenant
    account_id: str
    bindings: tuple[Binding, ...]
    journal: tuple[JournalEntry, ...]
    dead_letters: tuple[DeadLetter, ...]
    action_token: str = attrs.field(repr=False)
    sync_state_available: bool = True


@attrs.frozen
class PageBind:
    """A bind or edit from the page: the org (a path segment) and the settings it sets."""

    org: str
    changes: BindingChanges

    @classmethod
    def parse(cls, org: object, body: object) -> PageBind:
        slug = parse_org(org)
        fields = json_object(body, PAGE_BINDING_FIELDS)
        if fields.get("sentry_token") == "":
            del fields["sentry_token"]  # an empty token field keeps the stored token
        return cls(org=slug, changes=BindingChanges.parse(fields))


async def show_configure_page(
    user: PageUser, *, bindings: BindingStore, journal: Journal | None, clock: Clock
) -> ConfigureView:
    """§10: the site's bound orgs, its latest journal entries and its own dead letters."""
    if user.account_id is None:
        raise Unauthorized("the page token names no user (sub)")
    tenant = user.tenant
    entries: list[JournalEntry] = []
    letters: list[DeadLetter] = []
    if journal is not None:
        entries = await journal.journal(tenant.id, limit=JOURNAL_ON_PAGE)
        letters = await journal.dead_letters(limit=DEAD_LETTERS_ON_PAGE, tenant_id=tenant.id)
    return ConfigureView(
        tenant=tenant,
        account_id=user.account_id,
        bindings=tuple(await bindings.of_tenant(tenant.id)),
        journal=tuple(entries),
        dead_letters=tuple(letters),
        action_token=mint_action_token(tenant, user.account_id, clock.now()),
        sync_state_available=journal is not None,
    )


async def bind_from_page(
    user: PageUser,
    command: PageBind,
    *,
    tenants: TenantStore,
    bindings: BindingStore,
    sentry: SentryApi,
    sentry_hosts: tuple[HostPattern, ...],
) -> Binding:
    """§10 bind / edit: §A rules, then one try against Sentry when the URL or token is given,
    then the §A bind use case (which applies the change atomically)."""
    tenant_id = user.tenant.id
    changes = command.changes
    existing = await bindings.get(tenant_id, command.org)
    candidate = changes.apply(tenant_id, command.org, existing)  # §A: 400 before any call
    moved = changes.sentry_url is not None and (
        existing is None or changes.sentry_url != existing.sentry_url)
    if moved or changes.sentry_token is not None:  # a new credential pair: try it first
        check_sentry_url_allowed(candidate.sentry_url, sentry_hosts)  # §8.3: nothing sent
        try:
            await sentry.check_organization(candidate)
        except SentryError as error:
            raise SentryCheckFailed(refusal_message(error)) from None
    bind = BindOrg(ref=OrgRef(tenant_id=tenant_id, org=command.org), changes=changes)
    return await admin.bind_org(
        bind, tenants=tenants, bindings=bindings, sentry_hosts=sentry_hosts
    )


async def unbind_from_page(
    user: PageUser, org: object, *, tenants: TenantStore, bindings: BindingStore
) -> None:
    """§10 unbind: the §A use case, for the page's own site."""
    ref = OrgRef(tenant_id=user.tenant.id, org=parse_org(org))
    await admin.unbind_org(ref, tenants=tenants, bindings=bindings)


async def retry_from_page(
    user: PageUser, dead_letter_id: object, *, journal: Journal, clock: Clock
) -> int:
    """§10 retry: only a dead letter of the page's own site (another site's → 404)."""
    number = parse_id(dead_letter_id, "dead letter id")
    if not await journal.retry_dead_letter(number, now=clock.now(), tenant_id=user.tenant.id):
        raise NotFound(f"no dead letter {number}")
    return number
