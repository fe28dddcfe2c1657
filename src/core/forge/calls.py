"""§8.2 use case: a Forge route's call, verified then recorded (site, token, single use)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from core.forge.sites import jti_forget_after
from core.forge.verify import read_fit, read_system_token, verify_fit
from core.model.errors import Unauthorized
from core.model.forge import ForgeCall, VerifiedForgeCall
from core.model.settings import AppSettings
from core.model.tenant import VerifiedSite
from ports.clock import Clock
from ports.forge import ForgeKeys, ForgeSites

REPLAYED = "the Forge invocation token was used before"


async def verify_forge_call(authorization: Sequence[str], *, module_keys: frozenset[str],
                            keys: ForgeKeys, settings: AppSettings,
                            clock: Clock,
                            decode: Callable[[bytes], Any] | None = None) -> VerifiedForgeCall:
    """§8.2 before the body is read: the header rules, the key by `kid` (the only egress a
    refused call may cause), then the signature and every claim. Else Unauthorized (401) or
    Unavailable (503: the key set cannot be fetched now). `decode`: the claims' JSON decoder
    the adapter injects (default: the standard library's)."""
    token = read_fit(authorization) if decode is None else read_fit(authorization,
                                                                     decode=decode)
    key = await keys.signing_key(token.kid)
    return verify_fit(token, key=key, module_keys=module_keys, settings=settings,
                      now=clock.now())


async def record_forge_call(call: VerifiedForgeCall, system_token_headers: Sequence[str], *,
                            uninstall: bool, sites: ForgeSites, settings: AppSettings,
                            clock: Clock) -> VerifiedSite | None:
    """§8.2: spend the `jti` and record what the call says about its site (created,
    reactivated or switched; a newer system token; uninstalled). A spent `jti` → 401.
    None: a `preUninstall` for an installation never seen (nothing stored)."""
    now = clock.now()
    offered = None if uninstall else read_system_token(
        system_token_headers, now=now, leeway=settings.jwt_leeway_seconds)
    result = await sites.record_call(
        ForgeCall(call=call, system_token=offered, uninstall=uninstall,
                  remember_jti_until=jti_forget_after(
                      call, leeway_seconds=settings.jwt_leeway_seconds)),
        now=now)
    if result.replayed:
        raise Unauthorized(REPLAYED)
    return None if result.tenant is None else VerifiedSite(result.tenant)
