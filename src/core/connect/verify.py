"""Connect as a transport (§8.0): the verifier that turns a signed request into a site."""

from __future__ import annotations

from core.connect.tokens import ConnectRequest, verify_tenant_token
from core.model.settings import AppSettings
from core.model.tenant import VerifiedSite
from ports.clock import Clock
from ports.tenants import TenantLookup


async def verify_connect_site(request: ConnectRequest, *, tenants: TenantLookup,
                              settings: AppSettings, clock: Clock) -> VerifiedSite:
    """W1: the request's HS256 token (§4.2) names an installed site and is signed with its
    secret; else Unauthorized (401), before anything reads the body."""
    verified = await verify_tenant_token(request, tenants=tenants, settings=settings, clock=clock)
    return VerifiedSite(verified.tenant)
