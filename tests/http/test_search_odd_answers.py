"""S8 (issue #11 item 6): a Jira answer that cannot be read — nested too deeply, not JSON,
of the wrong shape — is a 502 with the generic text on every search route, never a 500."""

from __future__ import annotations

import pytest

from tests.http.test_search import GENERIC_TEXT, SearchApi, api, jira  # noqa: F401
from tests.support.fake_jira import Reply, Route

DEEP = 100_000  # far past the JSON decoder's recursion limit: a RecursionError, unmapped
DEEP_ARRAY = Reply(body=b"[" * DEEP + b"]" * DEEP)
DEEP_OBJECT = Reply(body=b'{"a":' * DEEP + b"1" + b"}" * DEEP)

# (route, the search parameters that reach it)
ROUTES: list[tuple[Route, dict[str, str]]] = [
    ("issue", {"field": "externalIssue", "query": "APP-1"}),
    ("search", {"field": "externalIssue", "query": "crash"}),
    ("users", {"field": "assignee", "query": "ada"}),
    ("assignable", {"field": "reporter", "query": "ada", "project": "APP"}),
    ("projects", {"field": "project", "query": "app"}),
    ("autocomplete", {"field": "customfield_10010", "query": "x"}),
]

ODD = {
    "deep-array": DEEP_ARRAY,
    "deep-object": DEEP_OBJECT,
    "not-json": Reply(body=b"\xff\xfe not json at all"),
    "a-number": Reply.json(7),
    "list-of-lists": Reply.json([[1, 2], [3]]),
    "objects-of-lists": Reply.json(
        {"issues": [[]], "values": [[]], "results": [[]], "key": [], "fields": []}),
    "wrong-field-types": Reply.json(
        {"issues": [{"key": ["APP-1"], "fields": {"summary": {"x": 1}}}],
         "values": [{"id": {}, "key": [], "name": 3}],
         "results": [{"value": [], "displayName": {}}],
         "key": {"k": 1}, "fields": "summary"}),
}


@pytest.mark.parametrize(("route", "params"), ROUTES, ids=[r for r, _ in ROUTES])
@pytest.mark.parametrize("odd", list(ODD), ids=list(ODD))
async def test_S8_an_unreadable_answer_is_502_on_every_route(
    api: SearchApi, route: Route, params: dict[str, str], odd: str  # noqa: F811
) -> None:
    api.site.reply(route, ODD[odd])
    response = await api.search(params)
    assert response.status_code == 502, response.text
    assert response.json() == {"detail": GENERIC_TEXT}
    assert [r.route for r in api.jira.requests] == [route]
