"""The Atlassian install-key port (SPEC §4.3): public keys of signed lifecycle tokens."""

from __future__ import annotations

from typing import Protocol


class InstallKeys(Protocol):
    async def public_key(self, kid: str) -> str:
        """The PEM text of the RSA public key named `kid`.

        Raises `Unauthorized` when there is no such key (404, a body that is not a PEM
        public key, a redirect) and `Unavailable(retry_after)` when the key source cannot
        answer now (timeout, connection failure, 5xx).
        """
        ...
