"""§8.1 inbound check of the `webhook` transport: `X-Hub-Signature` parsing, the HMAC of the
raw body, constant-time comparison, rotation overlap, delivery id and secret generation."""

from __future__ import annotations

import hmac
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from tests.support.hub_signature import hub_signature, hub_signed_delivery
from tests.support.paths import SHARED

from core.jira_webhooks import (
    ROTATION_OVERLAP,
    WebhookSecrets,
    new_webhook_secret,
    parse_hub_signature,
    verify_hub_signature,
    webhook_delivery_id,
)
from core.jira_webhooks.verify import REFUSED
from core.model.errors import Unauthorized

# The raw bytes Jira would send, exactly as stored (whitespace and all).
DC_BODY = (SHARED / "fixtures" / "jira-datacenter-issue-updated.json").read_bytes()
CLOUD_BODY = (SHARED / "fixtures" / "jira-issue-updated-status.json").read_bytes()
SECRET = "site-a-webhook-secret-3f9a1c0d7e5b4a6c8d2e0f1a"
OTHER_SITE_SECRET = "site-b-webhook-secret-0b1c2d3e4f5a6b7c8d9e0f1a"
ROTATED_AT = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def refused(body: bytes, values: object, secrets: tuple[str, ...] = (SECRET,)) -> str:
    """Run the verifier expecting a refusal; return the detail it gave."""
    with pytest.raises(Unauthorized) as caught:
        verify_hub_signature(body, values, secrets)  # type: ignore[arg-type]
    return caught.value.detail


@pytest.mark.parametrize("body", [DC_BODY, CLOUD_BODY], ids=["data-center", "cloud"])
def test_8_1_a_body_signed_as_jira_signs_it_verifies(body: bytes) -> None:
    verify_hub_signature(body, [hub_signature(body, SECRET)], (SECRET,))
    verify_hub_signature(body, hub_signature(body, SECRET), (SECRET,))  # a single value


def test_8_1_the_signer_matches_a_published_x_hub_signature_vector() -> None:
    # GitHub's documented example of the same `sha256=` HMAC-SHA256 header Jira sends.
    assert hub_signature(b"Hello, World!", "It's a Secret to Everybody") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_8_1_uppercase_or_mixed_case_hex_verifies() -> None:
    digest = hub_signature(DC_BODY, SECRET).removeprefix("sha256=")
    verify_hub_signature(DC_BODY, ["sha256=" + digest.upper()], (SECRET,))
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(digest))
    verify_hub_signature(DC_BODY, ["sha256=" + mixed], (SECRET,))


def _good_hex() -> str:
    return hub_signature(DC_BODY, SECRET).removeprefix("sha256=")


MALFORMED = {
    "missing header": [],
    "None": None,
    "empty value": [""],
    "missing prefix": [_good_hex()],
    "prefix only": ["sha256="],
    "another method": ["sha1=" + hmac.new(SECRET.encode(), DC_BODY, "sha1").hexdigest()],
    "sha512 prefix on a sha256 digest": ["sha512=" + _good_hex()],
    "method in uppercase": ["SHA256=" + _good_hex()],
    "one hex digit short": ["sha256=" + _good_hex()[:-1]],
    "one hex digit long": ["sha256=" + _good_hex() + "0"],
    "twice the length": ["sha256=" + _good_hex() * 2],
    "non-hex digit": ["sha256=" + _good_hex()[:-1] + "g"],
    "non-ASCII digit": ["sha256=" + _good_hex()[:-1] + "\u0661"],  # Arabic-Indic one
    "leading space": [" sha256=" + _good_hex()],
    "trailing space": ["sha256=" + _good_hex() + " "],
    "trailing newline": ["sha256=" + _good_hex() + "\n"],
    "space after =": ["sha256= " + _good_hex()],
    "space inside the hex": ["sha256=" + _good_hex()[:32] + " " + _good_hex()[32:]],
    "two headers, both right": ["sha256=" + _good_hex(), "sha256=" + _good_hex()],
    "two headers, one right": ["sha256=" + "0" * 64, "sha256=" + _good_hex()],
    "two values joined in one header": ["sha256=" + _good_hex() + ",sha256=" + _good_hex()],
    "base64 instead of hex": ["sha256=" + "A" * 43 + "="],
}


@pytest.mark.parametrize("values", MALFORMED.values(), ids=MALFORMED.keys())
def test_8_1_a_malformed_signature_header_is_the_same_401(values: object) -> None:
    with pytest.raises(Unauthorized) as caught:
        parse_hub_signature(values)  # type: ignore[arg-type]
    assert caught.value.detail == REFUSED
    assert refused(DC_BODY, values) == REFUSED


def test_8_1_a_body_changed_by_one_byte_is_refused() -> None:
    signature = [hub_signature(DC_BODY, SECRET)]
    for at in (0, len(DC_BODY) // 2, len(DC_BODY) - 1):
        changed = bytearray(DC_BODY)
        changed[at] ^= 0x01
        assert refused(bytes(changed), signature) == REFUSED
    assert refused(DC_BODY + b" ", signature) == REFUSED
    assert refused(DC_BODY[:-1], signature) == REFUSED


def test_8_1_the_raw_body_is_signed_not_its_json_value() -> None:
    # Same JSON value, other bytes (re-serialised): a verifier that parsed first would pass it.
    reserialised = json.dumps(json.loads(DC_BODY)).encode()
    assert reserialised != DC_BODY
    assert refused(reserialised, [hub_signature(DC_BODY, SECRET)]) == REFUSED


def test_8_1_a_delivery_signed_with_another_sites_secret_is_refused() -> None:
    headers, raw = hub_signed_delivery(OTHER_SITE_SECRET, DC_BODY)
    assert refused(raw, [headers["X-Hub-Signature"]], (SECRET,)) == REFUSED
    verify_hub_signature(raw, [headers["X-Hub-Signature"]], (OTHER_SITE_SECRET,))


def test_8_1_an_unknown_site_has_no_secret_and_refuses_every_signature() -> None:
    assert refused(DC_BODY, [hub_signature(DC_BODY, SECRET)], ()) == REFUSED


def test_8_1_an_empty_secret_never_verifies() -> None:
    # Anyone can compute the HMAC under an empty key.
    assert refused(DC_BODY, [hub_signature(DC_BODY, "")], ("",)) == REFUSED


def test_8_1_the_refusal_names_no_secret_and_no_header_value() -> None:
    claimed = hub_signature(DC_BODY, OTHER_SITE_SECRET)
    detail = refused(DC_BODY, [claimed])
    for leaked in (SECRET, OTHER_SITE_SECRET, claimed, claimed.removeprefix("sha256=")[:16]):
        assert leaked not in detail
    secrets = WebhookSecrets(SECRET, OTHER_SITE_SECRET, ROTATED_AT + ROTATION_OVERLAP)
    assert SECRET not in repr(secrets) and OTHER_SITE_SECRET not in repr(secrets)


# -- constant-time comparison -------------------------------------------------------------


def test_8_1_digests_are_compared_with_compare_digest_under_every_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = hmac.compare_digest
    calls: list[tuple[bytes, bytes]] = []

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    claimed = hub_signature(DC_BODY, SECRET)
    verify_hub_signature(DC_BODY, [claimed], (SECRET, OTHER_SITE_SECRET))
    # Both secrets compared although the first matched: no early exit tells which one did.
    assert len(calls) == 2
    assert all(len(a) == len(b) == 32 for a, b in calls)
    assert {b for _, b in calls} == {bytes.fromhex(claimed.removeprefix("sha256="))}


@pytest.mark.parametrize("answer", [True, False])
def test_8_1_compare_digest_alone_decides(monkeypatch: pytest.MonkeyPatch, answer: bool) -> None:
    # If any `==` on digests decided, forcing compare_digest would not change the outcome.
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: answer)
    right = [hub_signature(DC_BODY, SECRET)]
    wrong = [hub_signature(DC_BODY, OTHER_SITE_SECRET)]
    if answer:
        verify_hub_signature(DC_BODY, wrong, (SECRET,))
    else:
        assert refused(DC_BODY, right) == REFUSED


# -- rotation overlap ---------------------------------------------------------------------


def rotated_site() -> WebhookSecrets:
    return WebhookSecrets(current=SECRET).rotated("new-" + SECRET, now=ROTATED_AT)


def test_8_1_rotation_keeps_the_previous_secret_for_one_hour() -> None:
    site = rotated_site()
    assert site.current == "new-" + SECRET
    assert site.previous == SECRET
    assert site.previous_valid_until == ROTATED_AT + timedelta(hours=1)


@pytest.mark.parametrize(
    ("after_rotation", "old_verifies"),
    [
        (timedelta(0), True),
        (timedelta(minutes=59, seconds=59), True),
        (timedelta(hours=1) - timedelta(microseconds=1), True),
        (timedelta(hours=1), False),  # exactly at the hour: no longer
        (timedelta(hours=1, microseconds=1), False),
        (timedelta(days=3), False),
    ],
    ids=["at rotation", "59m59s", "1h - 1us", "exactly 1h", "1h + 1us", "3 days"],
)
def test_8_1_the_previous_secret_verifies_strictly_before_the_hour(
    after_rotation: timedelta, old_verifies: bool
) -> None:
    now = ROTATED_AT + after_rotation
    valid = rotated_site().valid_at(now)
    new_signed = [hub_signature(CLOUD_BODY, "new-" + SECRET)]
    old_signed = [hub_signature(CLOUD_BODY, SECRET)]
    verify_hub_signature(CLOUD_BODY, new_signed, valid)  # the new one always verifies
    if old_verifies:
        verify_hub_signature(CLOUD_BODY, old_signed, valid)
    else:
        assert refused(CLOUD_BODY, old_signed, valid) == REFUSED


def test_8_1_a_second_rotation_drops_the_first_secret_at_once() -> None:
    later = ROTATED_AT + timedelta(minutes=10)
    twice = rotated_site().rotated("third-" + SECRET, now=later)
    valid = twice.valid_at(later + timedelta(minutes=1))
    assert refused(CLOUD_BODY, [hub_signature(CLOUD_BODY, SECRET)], valid) == REFUSED
    verify_hub_signature(CLOUD_BODY, [hub_signature(CLOUD_BODY, "new-" + SECRET)], valid)
    assert twice.previous_valid_until == later + ROTATION_OVERLAP


def test_8_1_inconsistent_rotation_state_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="previous"):
        WebhookSecrets(SECRET, previous=OTHER_SITE_SECRET)
    with pytest.raises(ValueError, match="previous"):
        WebhookSecrets(SECRET, previous_valid_until=ROTATED_AT)
    with pytest.raises(ValueError, match="time zone"):
        WebhookSecrets(SECRET, OTHER_SITE_SECRET, datetime(2026, 12, 4, 11, 0))


# -- delivery id and secrets --------------------------------------------------------------


def test_8_1_the_delivery_id_is_a_hash_of_the_raw_body_in_the_W3_shape() -> None:
    delivery = webhook_delivery_id(DC_BODY)
    assert re.fullmatch(r"sha256:[0-9a-f]{32}", delivery)
    assert webhook_delivery_id(bytes(DC_BODY)) == delivery  # a replay is the same delivery
    assert webhook_delivery_id(DC_BODY + b" ") != delivery
    assert webhook_delivery_id(CLOUD_BODY) != delivery


def test_8_1_the_identifier_header_does_not_change_the_delivery_id() -> None:
    first, raw_1 = hub_signed_delivery(SECRET, DC_BODY, identifier="id-1")
    second, raw_2 = hub_signed_delivery(SECRET, DC_BODY, identifier="id-2")
    assert first != second
    assert webhook_delivery_id(raw_1) == webhook_delivery_id(raw_2)


def test_8_1_new_secrets_are_url_safe_and_carry_32_random_bytes() -> None:
    made = {new_webhook_secret() for _ in range(50)}
    assert len(made) == 50
    for secret in made:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", secret)  # 32 bytes, base64url, no padding
