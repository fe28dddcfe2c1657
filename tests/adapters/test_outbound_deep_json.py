"""Issue #11 item 6: an answer nested too deeply for the JSON decoder is an invalid answer of
that upstream (a mapped failure), never a RecursionError escaping the adapter."""

from __future__ import annotations

import httpx
import pytest

from adapters.outbound import jira, sentry
from adapters.outbound.calls import Answer
from core.model.errors import SentryRejected, UpstreamFailed

DEEP = 100_000  # far past the decoder's recursion limit


@pytest.mark.parametrize("body", [b"[" * DEEP + b"]" * DEEP, b'{"a":' * DEEP + b"1" + b"}" * DEEP])
def test_S8_a_jira_answer_nested_too_deeply_is_upstream_failed(body: bytes) -> None:
    answer = Answer(200, httpx.Headers({"Content-Type": "application/json"}), body)
    with pytest.raises(UpstreamFailed, match="invalid JSON"):
        jira._parse_json(answer)


@pytest.mark.parametrize("body", [b"[" * DEEP + b"]" * DEEP, b'{"a":' * DEEP + b"1" + b"}" * DEEP])
def test_W9_a_sentry_answer_nested_too_deeply_is_rejected(body: bytes) -> None:
    with pytest.raises(SentryRejected, match="invalid JSON"):
        sentry._json(sentry._Answer(200, None, body), "members")
