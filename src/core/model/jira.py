"""What the Jira REST API answers, as plain values (S3–S6, W5).

These carry Jira's text exactly as received: labels, HTML stripping and entity
decoding belong to the search use case (S7), not to the values or the adapter.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class JiraIssueSummary:
    """An issue found by key or by JQL search (S3)."""

    key: str
    summary: str


@attrs.frozen
class JiraUser:
    """A Jira user (S4, W5, §8.1). `id` is what identifies it on its site: the `accountId` on
    Cloud, the user `key` on Data Center (e.g. `JIRAUSER10100` or `john.smith`).
    `email_address` is None when the site hides it."""

    id: str
    display_name: str
    email_address: str | None = None


@attrs.frozen
class JiraProject:
    """A project found by `project/search` (S5); `id` is Jira's numeric id as text."""

    id: str
    key: str
    name: str


@attrs.frozen
class JqlSuggestion:
    """One JQL autocomplete suggestion (S6); `display_name` may contain HTML."""

    value: str
    display_name: str


@attrs.frozen
class JiraStatus:
    """A workflow status (W5): `category_key` is the status category key ("done", …)."""

    id: str
    name: str
    category_key: str

    @property
    def is_done(self) -> bool:
        return self.category_key == "done"
