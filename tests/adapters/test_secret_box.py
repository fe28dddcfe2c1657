"""adapters/crypto.py: decrypted values kept per process (issue 15: the worker decrypts a
tenant's secret and a binding's token for every delivery), bounded, never for a failure."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from adapters import crypto
from adapters.crypto import SecretBox, SecretBoxError


def test_a_decrypted_value_is_kept_and_given_again_without_decrypting() -> None:
    box = SecretBox((Fernet.generate_key().decode(),))
    token = box.encrypt("shared-secret")
    assert box.decrypt(token) == "shared-secret"
    calls = []
    real = box._fernet.decrypt
    box._fernet.decrypt = lambda raw: calls.append(raw) or real(raw)  # type: ignore[method-assign]
    assert box.decrypt(token) == "shared-secret"
    assert calls == []  # kept: no second decryption
    other = box.encrypt("shared-secret")  # the same plaintext under a new IV: its own entry
    assert box.decrypt(other) == "shared-secret"
    assert len(calls) == 1


def test_the_kept_values_are_bounded_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crypto, "DECRYPTED_CACHE_SIZE", 3)
    box = SecretBox((Fernet.generate_key().decode(),))
    tokens = [box.encrypt(f"secret-{n}") for n in range(5)]
    for n, token in enumerate(tokens):
        assert box.decrypt(token) == f"secret-{n}"
    assert list(box._decrypted) == tokens[2:]
    assert box.decrypt(tokens[0]) == "secret-0"  # forgotten, decrypted again
    assert len(box._decrypted) == 3


def test_a_token_of_another_key_is_refused_every_time_and_never_kept() -> None:
    box = SecretBox((Fernet.generate_key().decode(),))
    foreign = SecretBox((Fernet.generate_key().decode(),)).encrypt("not ours")
    for _ in range(2):
        with pytest.raises(SecretBoxError):
            box.decrypt(foreign)
    assert box._decrypted == {}


def test_a_box_without_the_old_key_does_not_read_what_another_box_kept() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    both = SecretBox((new, old))
    token = SecretBox((old,)).encrypt("rotated away")
    assert both.decrypt(token) == "rotated away"
    with pytest.raises(SecretBoxError):  # the cache is per box: a new key set reads afresh
        SecretBox((new,)).decrypt(token)
