"""How the app proves itself to a site's Jira (SPEC "Outbound calls to Jira", §8.0, §8.1).

Every transport reaches Jira through the one Jira port; only the credential and the REST
flavor differ. The adapter chooses the `Authorization` header and the paths from these
values, call by call; the use cases never see them. Secrets are left out of every repr.
"""

from __future__ import annotations

import enum

import attrs


class JiraFlavor(enum.StrEnum):
    """Which Jira answers: Cloud (REST v3, `accountId` users) or Data Center (REST v2,
    users identified by `key`, often under a context path)."""

    CLOUD = "cloud"
    DATA_CENTER = "data-center"


@attrs.frozen
class ConnectSecret:
    """A Connect app's shared secret: each call carries a fresh HS256 JWT with a qsh."""

    shared_secret: str = attrs.field(repr=False)


@attrs.frozen
class ApiToken:
    """§8.1 `cloud`: an Atlassian account's API token, sent as `Basic base64(email:token)`."""

    email: str
    token: str = attrs.field(repr=False)


@attrs.frozen
class PersonalAccessToken:
    """§8.1 `data-center`: a personal access token, sent as `Bearer <PAT>`."""

    token: str = attrs.field(repr=False)


JiraCredential = ConnectSecret | ApiToken | PersonalAccessToken
# What a site stores besides a Connect shared secret (a webhook site's credential).
SiteCredential = ApiToken | PersonalAccessToken
