"""In-memory administration stores sharing one `MemoryAdminData` (unbind cascades like SQL)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime

import attrs

from core.admin.search_tokens import hash_search_token, matches_any
from core.model.bindings import AccountMapping, Binding, Link, SearchToken

OrgKey = tuple[int, str]


@attrs.define
class MemoryAdminData:
    bindings: dict[OrgKey, Binding] = attrs.Factory(dict)
    # (tenant, org) → issue key → Sentry issue ids
    links: dict[OrgKey, dict[str, frozenset[str]]] = attrs.Factory(dict)
    # (tenant, org) → account id → Sentry user id
    accounts: dict[OrgKey, dict[str, str]] = attrs.Factory(dict)
    # id → (org, hash, created_at)
    search_tokens: dict[int, tuple[str, str, datetime]] = attrs.Factory(dict)
    next_token_id: itertools.count[int] = attrs.Factory(lambda: itertools.count(1))


class MemoryBindingStore:
    def __init__(self, data: MemoryAdminData | None = None) -> None:
        self.data = data or MemoryAdminData()

    async def get(self, tenant_id: int, org: str) -> Binding | None:
        return self.data.bindings.get((tenant_id, org))

    async def of_tenant(self, tenant_id: int) -> list[Binding]:
        return sorted(
            (b for (t, _), b in self.data.bindings.items() if t == tenant_id), key=lambda b: b.org
        )

    async def orgs_by_tenant(self) -> dict[int, list[str]]:
        result: dict[int, list[str]] = {}
        for tenant_id, org in sorted(self.data.bindings):
            result.setdefault(tenant_id, []).append(org)
        return result

    async def change(
        self, tenant_id: int, org: str, decide: Callable[[Binding | None], Binding]
    ) -> Binding:
        binding = decide(self.data.bindings.get((tenant_id, org)))
        self.data.bindings[(tenant_id, org)] = binding
        return binding

    async def delete(self, tenant_id: int, org: str) -> bool:
        key = (tenant_id, org)
        self.data.links.pop(key, None)
        self.data.accounts.pop(key, None)
        return self.data.bindings.pop(key, None) is not None


class MemoryLinkStore:
    def __init__(self, data: MemoryAdminData | None = None) -> None:
        self.data = data or MemoryAdminData()

    async def get(self, tenant_id: int, org: str, issue_key: str) -> Link | None:
        ids = self.data.links.get((tenant_id, org), {}).get(issue_key)
        if not ids:
            return None
        return Link(tenant_id, org, issue_key, tuple(sorted(ids, key=int)))

    async def replace(self, link: Link) -> bool:
        key = (link.tenant_id, link.org)
        if key not in self.data.bindings:
            return False
        self.data.links.setdefault(key, {})[link.issue_key] = frozenset(link.sentry_issue_ids)
        return True

    async def delete(self, tenant_id: int, org: str, issue_key: str) -> bool:
        return self.data.links.get((tenant_id, org), {}).pop(issue_key, None) is not None

    async def rekey(self, tenant_id: int, from_key: str, to_key: str) -> int:
        if from_key == to_key:
            return 0
        moved = 0
        for (t, _), by_key in self.data.links.items():
            if t != tenant_id or from_key not in by_key:
                continue
            by_key[to_key] = by_key.get(to_key, frozenset()) | by_key.pop(from_key)
            moved += 1
        return moved


class MemoryAccountMappingStore:
    def __init__(self, data: MemoryAdminData | None = None) -> None:
        self.data = data or MemoryAdminData()

    async def get(self, tenant_id: int, org: str, account_id: str) -> AccountMapping | None:
        user_id = self.data.accounts.get((tenant_id, org), {}).get(account_id)
        return None if user_id is None else AccountMapping(tenant_id, org, account_id, user_id)

    async def put(self, mapping: AccountMapping) -> bool:
        key = (mapping.tenant_id, mapping.org)
        if key not in self.data.bindings:
            return False
        self.data.accounts.setdefault(key, {})[mapping.account_id] = mapping.sentry_user_id
        return True

    async def delete(self, tenant_id: int, org: str, account_id: str) -> bool:
        return self.data.accounts.get((tenant_id, org), {}).pop(account_id, None) is not None


class MemorySearchTokenStore:
    def __init__(self, data: MemoryAdminData | None = None) -> None:
        self.data = data or MemoryAdminData()

    async def create(self, org: str, token: str, created_at: datetime) -> SearchToken:
        token_id = next(self.data.next_token_id)
        self.data.search_tokens[token_id] = (org, hash_search_token(token), created_at)
        return SearchToken(id=token_id, org=org, created_at=created_at)

    async def of_org(self, org: str) -> list[SearchToken]:
        return [
            SearchToken(id=token_id, org=o, created_at=at)
            for token_id, (o, _, at) in sorted(self.data.search_tokens.items())
            if o == org
        ]

    async def revoke(self, org: str, token_id: int) -> bool:
        entry = self.data.search_tokens.get(token_id)
        if entry is None or entry[0] != org:
            return False
        del self.data.search_tokens[token_id]
        return True

    async def verify(self, org: str, token: str) -> bool:
        hashes = [h for (o, h, _) in self.data.search_tokens.values() if o == org]
        return matches_any(token, hashes)
