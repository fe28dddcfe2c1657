"""Field encryption at rest with Fernet keys (SENTRY_JIRA_SECRET_KEY or the key file)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBoxError(Exception):
    """A stored value cannot be decrypted with the configured keys."""


# Decrypted values kept per process, keyed by the stored ciphertext (docs/security.md,
# "Secrets in memory"): the worker reads a tenant's secret and a binding's token for every
# delivery, and a Fernet decryption (HMAC + AES) costs more than the read itself.
DECRYPTED_CACHE_SIZE = 1024


class SecretBox:
    """Encrypts with the first key, decrypts with any (key rotation)."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._fernet = MultiFernet([Fernet(key) for key in keys])
        # ciphertext → plaintext, oldest first (bounded; a failure is never kept)
        self._decrypted: dict[str, str] = {}

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def rotate(self, token: str) -> str:
        """The same plaintext re-encrypted under the first key (read with any key)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as err:
            raise SecretBoxError(
                "stored value cannot be decrypted with the configured keys"
            ) from err

    def decrypt(self, token: str) -> str:
        known = self._decrypted.get(token)
        if known is not None:
            return known
        try:
            plain = self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as err:
            raise SecretBoxError(
                "stored value cannot be decrypted with the configured keys"
            ) from err
        if len(self._decrypted) >= DECRYPTED_CACHE_SIZE:
            del self._decrypted[next(iter(self._decrypted))]
        self._decrypted[token] = plain
        return plain


def read_or_create_key_file(path: Path, *, may_create: bool) -> str | None:
    """The key in `path`; create it (mode 0600) when absent and `may_create`, else None."""
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        if not may_create:
            return None
    key = Fernet.generate_key().decode("ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it first: use theirs.
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key
