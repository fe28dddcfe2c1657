"""In-memory install keys: PEMs by kid, and kids switched to "unavailable"."""

from __future__ import annotations

from collections import Counter

from core.model.errors import Unauthorized, Unavailable


class MemoryInstallKeys:
    def __init__(self, keys: dict[str, str] | None = None) -> None:
        self.keys: dict[str, str] = dict(keys or {})
        self.unavailable: set[str] = set()
        self.fetches: Counter[str] = Counter()

    def add(self, kid: str, pem: str) -> None:
        self.keys[kid] = pem

    async def public_key(self, kid: str) -> str:
        self.fetches[kid] += 1
        if kid in self.unavailable:
            raise Unavailable("the install key service is unavailable", retry_after=5)
        pem = self.keys.get(kid)
        if pem is None:
            raise Unauthorized("the token's signing key is unknown")
        return pem
