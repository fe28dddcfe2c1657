"""§A administration API under `/api`: bearer-token protected, JSON in and out.

Order of checks (SPEC §5): 404 when no admin token is configured (no route exists at all,
so every `/api/...` path is 404 before any authentication) → 401 → 415 for a body that is
not `application/json` → 400 (path segments and body, validated in the core) → 404 for
unknown ids. Path parameters are taken as plain strings so that Litestar never answers a
400 before the token is checked.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, delete, get, post, put
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.types import Scope

from adapters.http.body import decode_json
from adapters.presenters import (
    account_json,
    binding_json,
    issued_search_token_json,
    link_json,
    search_token_json,
    tenant_json,
)
from adapters.wiring import Container
from core.admin import bindings as admin
from core.admin.bindings import (
    AccountRef,
    BindOrg,
    LinkRef,
    MapAccount,
    OrgRef,
    PutLink,
    SearchTokenRef,
    check_admin_token,
)
from core.model.errors import Unauthorized

TENANT = "/api/tenants/{tenant_id:str}"
ORG = TENANT + "/orgs/{org:str}"
LINK = ORG + "/links/{issue_key:str}"
ACCOUNT = ORG + "/accounts/{account_id:str}"
SEARCH_TOKENS = "/api/orgs/{org:str}/search-tokens"

AnyRequest = Request[Any, Any, Any]


def authorize(request: AnyRequest, container: Container) -> None:
    """401 unless exactly one `Authorization: Bearer` header carries an admin token."""
    values = request.headers.getall("authorization", [])
    if len(values) > 1:
        raise Unauthorized("more than one Authorization header")
    check_admin_token(values[0] if values else None, container.settings.admin_tokens)


class AdminGate:
    """The requests Litestar answers by itself are admin requests too: OPTIONS on `/api/...`
    and every method on `/schema/...` need the admin token (401), exactly as the admin routes'
    own GET does. Run by the transport guard after routing, and only while the admin API is on:
    with it off these routes do not exist (404) and nothing here is needed."""

    def __init__(self, container: Container) -> None:
        self.admin_tokens = container.settings.admin_tokens
        base = container.settings.app.base_path
        self.api = f"{base}/api"
        self.schema = f"{base}/schema"

    def guarded(self, scope: Scope) -> bool:
        # The matched route's template: Litestar has already collapsed `//` and the like.
        template = str(scope.get("path_template") or scope.get("path") or "")
        if _under(template, self.schema):
            return True
        return scope.get("method") == "OPTIONS" and _under(template, self.api)

    def __call__(self, scope: Scope) -> None:
        """Raise Unauthorized unless a guarded request carries one valid admin token."""
        if self.guarded(scope):
            values = [v for k, v in scope["headers"] if k == b"authorization"]
            if len(values) > 1:
                raise Unauthorized("more than one Authorization header")
            presented = values[0].decode("latin-1") if values else None
            check_admin_token(presented, self.admin_tokens)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


async def json_body(request: AnyRequest) -> Any:
    """The decoded body of an authorised request: 415 unless JSON, 400 unless valid."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise HTTPException(status_code=415, detail="the body must be application/json")
    return decode_json(await request.body())


def routes(container: Container) -> list[HTTPRouteHandler]:
    """The admin routes; none at all when no admin token is configured (API off → 404)."""
    if not container.settings.admin_tokens:
        return []
    tenants = container.tenants
    stores = container.admin

    @get("/api/tenants", summary="List tenants (§A)")
    async def list_tenants(request: AnyRequest) -> list[dict[str, Any]]:
        authorize(request, container)
        views = await admin.list_tenants(tenants=tenants, bindings=stores.bindings)
        return [tenant_json(view) for view in views]

    @get(TENANT, summary="Show a tenant (§A)")
    async def show_tenant(request: AnyRequest, tenant_id: FromPath[str]) -> dict[str, Any]:
        authorize(request, container)
        view = await admin.show_tenant(tenant_id, tenants=tenants, bindings=stores.bindings)
        return tenant_json(view)

    @put(ORG, summary="Bind an org or change its settings (§A)")
    async def bind_org(
        request: AnyRequest, tenant_id: FromPath[str], org: FromPath[str]
    ) -> dict[str, Any]:
        authorize(request, container)
        command = BindOrg.parse(tenant_id, org, await json_body(request))
        binding = await admin.bind_org(
            command,
            tenants=tenants,
            bindings=stores.bindings,
            sentry_hosts=container.settings.app.sentry_hosts,
        )
        return binding_json(binding)

    @get(ORG, summary="Show an org binding (§A)")
    async def show_binding(
        request: AnyRequest, tenant_id: FromPath[str], org: FromPath[str]
    ) -> dict[str, Any]:
        authorize(request, container)
        ref = OrgRef.parse(tenant_id, org)
        binding = await admin.show_binding(ref, tenants=tenants, bindings=stores.bindings)
        return binding_json(binding)

    @delete(ORG, summary="Unbind an org, with its links and account mappings (§A)")
    async def unbind_org(request: AnyRequest, tenant_id: FromPath[str], org: FromPath[str]) -> None:
        authorize(request, container)
        ref = OrgRef.parse(tenant_id, org)
        await admin.unbind_org(ref, tenants=tenants, bindings=stores.bindings)

    @put(LINK, summary="Link a Jira issue key to Sentry issues, replacing the set (§A)")
    async def put_link(
        request: AnyRequest, tenant_id: FromPath[str], org: FromPath[str], issue_key: FromPath[str]
    ) -> dict[str, Any]:
        authorize(request, container)
        command = PutLink.parse(tenant_id, org, issue_key, await json_body(request))
        link = await admin.put_link(command, tenants=tenants, links=stores.links)
        return link_json(link)

    @get(LINK, summary="Show a link (§A)")
    async def get_link(
        request: AnyRequest, tenant_id: FromPath[str], org: FromPath[str], issue_key: FromPath[str]
    ) -> dict[str, Any]:
        authorize(request, container)
        target = LinkRef.parse(tenant_id, org, issue_key)
        return link_json(await admin.get_link(target, tenants=tenants, links=stores.links))

    @delete(LINK, summary="Delete a link (§A)")
    async def delete_link(
        request: AnyRequest, tenant_id: FromPath[str], org: FromPath[str], issue_key: FromPath[str]
    ) -> None:
        authorize(request, container)
        target = LinkRef.parse(tenant_id, org, issue_key)
        await admin.delete_link(target, tenants=tenants, links=stores.links)

    @put(ACCOUNT, summary="Map a Jira account to a Sentry user (§A)")
    async def map_account(
        request: AnyRequest, tenant_id: FromPath[str], org: FromPath[str], account_id: FromPath[str]
    ) -> dict[str, Any]:
        authorize(request, container)
        command = MapAccount.parse(tenant_id, org, account_id, await json_body(request))
        mapping = await admin.map_account(command, tenants=tenants, accounts=stores.accounts)
        return account_json(mapping)

    @delete(ACCOUNT, summary="Remove an account mapping (§A)")
    async def unmap_account(
        request: AnyRequest, tenant_id: FromPath[str], org: FromPath[str], account_id: FromPath[str]
    ) -> None:
        authorize(request, container)
        target = AccountRef.parse(tenant_id, org, account_id)
        await admin.unmap_account(target, tenants=tenants, accounts=stores.accounts)

    @post(SEARCH_TOKENS, summary="Issue a search token; shown once (§A, S1)")
    async def create_search_token(
        request: AnyRequest, org: FromPath[str]
    ) -> Response[dict[str, Any]]:
        authorize(request, container)
        issued = await admin.create_search_token(
            org, search_tokens=stores.search_tokens, clock=container.clock
        )
        # The token is shown this once: keep it out of every cache.
        return Response(
            issued_search_token_json(issued),
            status_code=201,
            headers={"Cache-Control": "no-store"},
        )

    @get(SEARCH_TOKENS, summary="List an org's search tokens (§A)")
    async def list_search_tokens(request: AnyRequest, org: FromPath[str]) -> list[dict[str, Any]]:
        authorize(request, container)
        found = await admin.list_search_tokens(org, search_tokens=stores.search_tokens)
        return [search_token_json(token) for token in found]

    @delete(SEARCH_TOKENS + "/{token_id:str}", summary="Revoke a search token (§A)")
    async def revoke_search_token(
        request: AnyRequest, org: FromPath[str], token_id: FromPath[str]
    ) -> None:
        authorize(request, container)
        ref = SearchTokenRef.parse(org, token_id)
        await admin.revoke_search_token(ref, search_tokens=stores.search_tokens)

    return [
        list_tenants,
        show_tenant,
        bind_org,
        show_binding,
        unbind_org,
        put_link,
        get_link,
        delete_link,
        map_account,
        unmap_account,
        create_search_token,
        list_search_tokens,
        revoke_search_token,
    ]
