"""administer (SPEC §A): tenants, org bindings, links, account mappings and search tokens.

Every operation is a command parsed from raw input (`parse` raises BadRequest naming the
field: the 400 comes before any lookup) and a use case that applies it through ports
(unknown tenant, binding, link, mapping or token → NotFound).

Decisions where the SPEC is silent (docs/operations.md repeats them):
- Binding an org that already exists updates it: fields left out keep their stored values
  (the Sentry token included), except that a new `sentry_url` needs a new `sentry_token`: a
  stored token never follows a new URL (400; the same normalised URL counts as unchanged).
  Creating needs `sentry_url` and `sentry_token`; the other
  fields default to sync_status true, sync_assignee true, resolution_strategy `resolve`,
  skip_archived false and an empty status_map. `status_map`, when given, replaces the whole map.
- Unknown body fields are refused (a typo such as `sync_stauts` must not pass silently).
- Uninstalled tenants can still be administered: L5 keeps their bindings and links.
- Unbinding an org deletes its links and account mappings with it.
- A link PUT with an empty `sentry_issue_ids` is a 400: removing a link is a DELETE.
- Search tokens belong to an org, whether or not any tenant binds it yet.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import attrs

from core.admin.search_tokens import new_search_token
from core.admin.validation import (
    check_sentry_url_allowed,
    json_object,
    parse_account_id,
    parse_bool,
    parse_digit_string,
    parse_id,
    parse_issue_key,
    parse_org,
    parse_sentry_issue_ids,
    parse_sentry_token,
    parse_sentry_url,
    parse_status_map,
    parse_strategy,
    required,
)
from core.model.bindings import (
    AccountMapping,
    Binding,
    Link,
    ResolutionStrategy,
    SearchToken,
    StatusRule,
)
from core.model.errors import BadRequest, NotFound, Unauthorized
from core.model.host_patterns import HostPattern
from core.model.tenant import Tenant
from ports.admin import AccountMappingStore, BindingStore, LinkStore, SearchTokenStore
from ports.clock import Clock
from ports.tenants import TenantStore

BINDING_FIELDS = (
    "sentry_url",
    "sentry_token",
    "sync_status",
    "sync_assignee",
    "resolution_strategy",
    "skip_archived",
    "status_map",
)

# -- authentication -------------------------------------------------------------------------


def check_admin_token(authorization: str | None, admin_tokens: tuple[str, ...]) -> None:
    """§A: `Authorization: Bearer <token>` must equal one of the configured admin tokens.

    Every configured token is compared in constant time, whichever matches, so that two
    tokens can be accepted at once during a rotation without timing telling them apart.
    """
    if not authorization:
        raise Unauthorized("missing Authorization: Bearer token")
    scheme, _, presented = authorization.strip().partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise Unauthorized("the admin API takes Authorization: Bearer <token>")
    if not matches_admin_token(presented, admin_tokens):
        raise Unauthorized("invalid admin token")


def matches_admin_token(presented: str, admin_tokens: tuple[str, ...]) -> bool:
    """Constant time against every configured token, whichever matches. The SHA-256 digests
    are compared, never the tokens: `compare_digest` on values of different lengths returns
    at once, which would tell a prober each configured token's length."""
    candidate = _digest(presented)
    accepted = False
    for token in admin_tokens:
        accepted |= hmac.compare_digest(candidate, _digest(token))
    return accepted


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "replace")).digest()


# -- commands ------------------------------------------------------------------------------


@attrs.frozen
class OrgRef:
    """A tenant and one of its (possibly bound) orgs."""

    tenant_id: int
    org: str

    @classmethod
    def parse(cls, tenant_id: object, org: object) -> OrgRef:
        return cls(tenant_id=parse_id(tenant_id, "tenant id"), org=parse_org(org))


@attrs.frozen
class BindingChanges:
    """What a bind request sets; None = left out (kept on update, defaulted on create)."""

    sentry_url: str | None = None
    sentry_token: str | None = attrs.field(default=None, repr=False)
    sync_status: bool | None = None
    sync_assignee: bool | None = None
    resolution_strategy: ResolutionStrategy | None = None
    skip_archived: bool | None = None
    status_map: dict[str, StatusRule] | None = None

    @classmethod
    def parse(cls, body: object) -> BindingChanges:
        fields = json_object(body, BINDING_FIELDS)
        parsers: dict[str, Any] = {
            "sentry_url": parse_sentry_url,
            "sentry_token": parse_sentry_token,
            "sync_status": lambda v: parse_bool(v, "sync_status"),
            "sync_assignee": lambda v: parse_bool(v, "sync_assignee"),
            "resolution_strategy": parse_strategy,
            "skip_archived": lambda v: parse_bool(v, "skip_archived"),
            "status_map": parse_status_map,
        }
        return cls(**{name: parsers[name](value) for name, value in fields.items()})

    def apply(self, tenant_id: int, org: str, existing: Binding | None) -> Binding:
        """The binding after this change (pure; raises BadRequest when creating is impossible)."""
        if existing is None:
            if self.sentry_url is None:
                raise BadRequest("sentry_url is required when binding a new org")
            if self.sentry_token is None:
                raise BadRequest("sentry_token is required when binding a new org")
            existing = Binding(
                tenant_id=tenant_id,
                org=org,
                sentry_url=self.sentry_url,
                sentry_token=self.sentry_token,
            )
        elif (
            self.sentry_url is not None
            and self.sentry_url != existing.sentry_url
            and self.sentry_token is None
        ):
            # §A: the stored token was issued for the old host; sending it elsewhere leaks it.
            raise BadRequest(
                "changing sentry_url requires sentry_token: "
                "a stored Sentry token never follows a new URL"
            )
        changed = {
            name: getattr(self, name) for name in BINDING_FIELDS if getattr(self, name) is not None
        }
        return attrs.evolve(existing, **changed)


@attrs.frozen
class BindOrg:
    ref: OrgRef
    changes: BindingChanges

    @classmethod
    def parse(cls, tenant_id: object, org: object, body: object) -> BindOrg:
        return cls(ref=OrgRef.parse(tenant_id, org), changes=BindingChanges.parse(body))


@attrs.frozen
class LinkRef:
    ref: OrgRef
    issue_key: str

    @classmethod
    def parse(cls, tenant_id: object, org: object, issue_key: object) -> LinkRef:
        return cls(ref=OrgRef.parse(tenant_id, org), issue_key=parse_issue_key(issue_key))


@attrs.frozen
class PutLink:
    target: LinkRef
    sentry_issue_ids: tuple[str, ...]

    @classmethod
    def parse(cls, tenant_id: object, org: object, issue_key: object, body: object) -> PutLink:
        target = LinkRef.parse(tenant_id, org, issue_key)
        fields = json_object(body, ("sentry_issue_ids",))
        ids = parse_sentry_issue_ids(required(fields, "sentry_issue_ids"))
        return cls(target=target, sentry_issue_ids=ids)


@attrs.frozen
class AccountRef:
    ref: OrgRef
    account_id: str

    @classmethod
    def parse(cls, tenant_id: object, org: object, account_id: object) -> AccountRef:
        return cls(ref=OrgRef.parse(tenant_id, org), account_id=parse_account_id(account_id))


@attrs.frozen
class MapAccount:
    target: AccountRef
    sentry_user_id: str

    @classmethod
    def parse(cls, tenant_id: object, org: object, account_id: object, body: object) -> MapAccount:
        target = AccountRef.parse(tenant_id, org, account_id)
        fields = json_object(body, ("sentry_user_id",))
        user_id = parse_digit_string(required(fields, "sentry_user_id"), "sentry_user_id")
        return cls(target=target, sentry_user_id=user_id)


@attrs.frozen
class SearchTokenRef:
    org: str
    token_id: int

    @classmethod
    def parse(cls, org: object, token_id: object) -> SearchTokenRef:
        return cls(org=parse_org(org), token_id=parse_id(token_id, "search token id"))


@attrs.frozen
class TenantView:
    """A tenant as the admin API shows it: never its shared secret."""

    tenant: Tenant
    orgs: tuple[str, ...]


@attrs.frozen
class IssuedSearchToken:
    """A new search token: `token` is shown this once and only its hash is stored."""

    search_token: SearchToken
    token: str = attrs.field(repr=False)


# -- use cases ------------------------------------------------------------------------------


async def list_tenants(*, tenants: TenantStore, bindings: BindingStore) -> list[TenantView]:
    """§A list tenants, each with the org slugs bound to it."""
    orgs = await bindings.orgs_by_tenant()
    return [TenantView(t, tuple(orgs.get(t.id, ()))) for t in await tenants.list_all()]


async def show_tenant(
    tenant_id: object, *, tenants: TenantStore, bindings: BindingStore
) -> TenantView:
    """§A show one tenant."""
    number = parse_id(tenant_id, "tenant id")
    tenant = await _tenant(number, tenants)
    orgs = await bindings.orgs_by_tenant()
    return TenantView(tenant, tuple(orgs.get(tenant.id, ())))


async def bind_org(
    command: BindOrg,
    *,
    tenants: TenantStore,
    bindings: BindingStore,
    sentry_hosts: tuple[HostPattern, ...],
) -> Binding:
    """§A bind an org (create) or change its settings (update), in one write transaction.

    §8.3: a Sentry URL given is checked against SENTRY_JIRA_SENTRY_HOSTS first (400, nothing
    stored); `sentry_hosts` () means unset (any public https host)."""
    ref = command.ref
    if command.changes.sentry_url is not None:
        check_sentry_url_allowed(command.changes.sentry_url, sentry_hosts)
    await _tenant(ref.tenant_id, tenants)
    return await bindings.change(
        ref.tenant_id,
        ref.org,
        lambda existing: command.changes.apply(ref.tenant_id, ref.org, existing),
    )


async def show_binding(ref: OrgRef, *, tenants: TenantStore, bindings: BindingStore) -> Binding:
    await _tenant(ref.tenant_id, tenants)
    binding = await bindings.get(ref.tenant_id, ref.org)
    if binding is None:
        raise _not_bound(ref)
    return binding


async def unbind_org(ref: OrgRef, *, tenants: TenantStore, bindings: BindingStore) -> None:
    """§A unbind; the org's links and account mappings go with it."""
    await _tenant(ref.tenant_id, tenants)
    if not await bindings.delete(ref.tenant_id, ref.org):
        raise _not_bound(ref)


async def put_link(command: PutLink, *, tenants: TenantStore, links: LinkStore) -> Link:
    """§A link: replace the set of Sentry issues linked to a Jira issue key in an org."""
    target = command.target
    await _tenant(target.ref.tenant_id, tenants)
    link = Link(
        tenant_id=target.ref.tenant_id,
        org=target.ref.org,
        issue_key=target.issue_key,
        sentry_issue_ids=command.sentry_issue_ids,
    )
    if not await links.replace(link):
        raise _not_bound(target.ref)
    return link


async def get_link(target: LinkRef, *, tenants: TenantStore, links: LinkStore) -> Link:
    await _tenant(target.ref.tenant_id, tenants)
    link = await links.get(target.ref.tenant_id, target.ref.org, target.issue_key)
    if link is None:
        raise NotFound(f"no link for {target.issue_key} in org {target.ref.org}")
    return link


async def delete_link(target: LinkRef, *, tenants: TenantStore, links: LinkStore) -> None:
    await _tenant(target.ref.tenant_id, tenants)
    if not await links.delete(target.ref.tenant_id, target.ref.org, target.issue_key):
        raise NotFound(f"no link for {target.issue_key} in org {target.ref.org}")


async def map_account(
    command: MapAccount, *, tenants: TenantStore, accounts: AccountMappingStore
) -> AccountMapping:
    """§A map a Jira account to a Sentry user in an org (W5 assignee, first choice)."""
    target = command.target
    await _tenant(target.ref.tenant_id, tenants)
    mapping = AccountMapping(
        tenant_id=target.ref.tenant_id,
        org=target.ref.org,
        account_id=target.account_id,
        sentry_user_id=command.sentry_user_id,
    )
    if not await accounts.put(mapping):
        raise _not_bound(target.ref)
    return mapping


async def unmap_account(
    target: AccountRef, *, tenants: TenantStore, accounts: AccountMappingStore
) -> None:
    await _tenant(target.ref.tenant_id, tenants)
    if not await accounts.delete(target.ref.tenant_id, target.ref.org, target.account_id):
        raise NotFound(f"no mapping for that account in org {target.ref.org}")


async def create_search_token(
    org: object, *, search_tokens: SearchTokenStore, clock: Clock
) -> IssuedSearchToken:
    """§A issue a search token for an org; only its hash is stored."""
    slug = parse_org(org)
    token = new_search_token()
    stored = await search_tokens.create(slug, token, clock.now())
    return IssuedSearchToken(search_token=stored, token=token)


async def list_search_tokens(org: object, *, search_tokens: SearchTokenStore) -> list[SearchToken]:
    return await search_tokens.of_org(parse_org(org))


async def revoke_search_token(ref: SearchTokenRef, *, search_tokens: SearchTokenStore) -> None:
    if not await search_tokens.revoke(ref.org, ref.token_id):
        raise NotFound(f"no search token {ref.token_id} in org {ref.org}")


# -- helpers --------------------------------------------------------------------------------


async def _tenant(tenant_id: int, tenants: TenantStore) -> Tenant:
    tenant = await tenants.get(tenant_id)
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}")
    return tenant


def _not_bound(ref: OrgRef) -> NotFound:
    return NotFound(f"org {ref.org} is not bound to tenant {ref.tenant_id}")
