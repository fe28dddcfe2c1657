"""Pure parts of §A: admin token check, bind merge rules, URL normalisation."""

from __future__ import annotations

import pytest

from core.admin.bindings import BindingChanges, check_admin_token
from core.admin.validation import parse_id, parse_issue_key, parse_sentry_url
from core.model.bindings import Binding, ResolutionStrategy, StatusRule
from core.model.errors import BadRequest, Unauthorized

OLD = "old-admin-token-0123456789"
NEW = "new-admin-token-9876543210"


@pytest.mark.parametrize(
    "header", [f"Bearer {OLD}", f"Bearer {NEW}", f"bearer  {NEW} ", f"BEARER {OLD}"]
)
def test_A_either_configured_admin_token_is_accepted(header: str) -> None:
    check_admin_token(header, (OLD, NEW))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Basic {OLD}",
        OLD,
        f"Bearer {OLD}{NEW}",
        f"Bearer {OLD[:-1]}",
        "Bearer \udcff",
    ],
)
def test_A_anything_else_is_unauthorized_and_names_no_token(header: str | None) -> None:
    with pytest.raises(Unauthorized) as caught:
        check_admin_token(header, (OLD, NEW))
    assert OLD not in caught.value.detail and NEW not in caught.value.detail


def test_A_no_configured_token_accepts_nothing() -> None:
    with pytest.raises(Unauthorized):
        check_admin_token(f"Bearer {OLD}", ())


def test_A_create_applies_the_defaults() -> None:
    changes = BindingChanges.parse({"sentry_url": "https://sentry.io/", "sentry_token": "tok"})
    binding = changes.apply(1, "acme", None)
    assert binding == Binding(
        tenant_id=1, org="acme", sentry_url="https://sentry.io", sentry_token="tok"
    )
    assert binding.sync_status and binding.sync_assignee and not binding.skip_archived
    assert binding.resolution_strategy is ResolutionStrategy.RESOLVE and binding.status_map == {}


def test_A_update_keeps_what_is_left_out() -> None:
    existing = Binding(
        tenant_id=1,
        org="acme",
        sentry_url="https://sentry.io",
        sentry_token="tok",
        skip_archived=True,
        status_map={"1": StatusRule(resolve=frozenset({"2"}))},
    )
    updated = BindingChanges.parse({"sync_status": False}).apply(1, "acme", existing)
    assert updated.sync_status is False
    assert updated.sentry_token == "tok" and updated.skip_archived is True
    assert updated.status_map == existing.status_map
    cleared = BindingChanges.parse({"status_map": {}}).apply(1, "acme", existing)
    assert cleared.status_map == {}


def test_A_the_sentry_token_never_shows_in_a_repr() -> None:
    changes = BindingChanges.parse({"sentry_token": "very-secret-token"})
    assert "very-secret-token" not in repr(changes)
    assert "very-secret-token" not in repr(
        changes.apply(1, "a", Binding(1, "a", "https://s.io", "x"))
    )


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://sentry.io/", "https://sentry.io"),
        ("https://sentry.io///", "https://sentry.io"),
        ("HTTPS://sentry.io", "https://sentry.io"),
        ("http://10.0.0.5:9000/sentry/", "http://10.0.0.5:9000/sentry"),
    ],
)
def test_A_sentry_urls_are_normalised(url: str, normalised: str) -> None:
    assert parse_sentry_url(url) == normalised


def test_A_refusals_never_repeat_the_value() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_sentry_url("https://user:hunter2secret@sentry.io")
    assert "hunter2secret" not in caught.value.detail


@pytest.mark.parametrize("value", ["0", "7", "123", 5])
def test_integer_ids(value: object) -> None:
    assert parse_id(value, "id") == int(value)  # type: ignore[call-overload]


@pytest.mark.parametrize("value", ["", "a", "-1", "+1", "01", "1 ", "١٢", True, -3, None, 1.0])
def test_bad_integer_ids(value: object) -> None:
    with pytest.raises(BadRequest):
        parse_id(value, "id")


@pytest.mark.parametrize("key", ["PROJ-1\n", "PROJ-١", "PROJ-1-2", "P-"])
def test_issue_keys_match_exactly(key: str) -> None:
    with pytest.raises(BadRequest):
        parse_issue_key(key)


@pytest.mark.parametrize("presented", ["x", "a" * 16, "b" * 64, "é" * 40])
def test_A_S1_token_checks_compare_equal_lengths_only(
    monkeypatch: pytest.MonkeyPatch, presented: str
) -> None:
    """`hmac.compare_digest` returns at once on values of different lengths: comparing a
    presented token with the configured ones directly would tell a prober each token's
    length. Admin, metrics and search's admin-token checks compare equal-length digests
    (review of #18)."""
    import hmac

    from core.search.search import is_admin_token

    lengths: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        lengths.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    configured = ("short-token-0123456789", "a-much-longer-admin-token-" + "z" * 40)
    with pytest.raises(Unauthorized):
        check_admin_token(f"Bearer {presented}", configured)
    assert not is_admin_token(presented, configured)
    check_admin_token(f"Bearer {configured[1]}", configured)
    assert len(lengths) == 6
    assert all(a == b for a, b in lengths), lengths
