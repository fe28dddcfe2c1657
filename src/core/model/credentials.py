"""How the app proves itself to a site's Jira (SPEC "Outbound calls to Jira", §8.0, §8.1).

Every transport reaches Jira through the one Jira port; only the credential and the REST
flavor differ. The adapter chooses the `Authorization` header and the paths from these
values, call by call; the use cases never see them. Secrets are left out of every repr.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Final

import attrs

from core.model.forge import SystemToken

# §8.1: after a rotation the previous webhook secret verifies for one hour, so Jira can be updated.
ROTATION_OVERLAP: Final = timedelta(hours=1)


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


@attrs.frozen
class ForgeSystemToken:
    """§8.2: a Forge site's app system token, sent as `Bearer <token>` to its `apiBaseUrl`
    while unexpired; `token` None: none has arrived yet (calls wait, search answers 503)."""

    token: SystemToken | None = attrs.field(repr=False)


JiraCredential = ConnectSecret | ApiToken | PersonalAccessToken | ForgeSystemToken
# What a site stores besides a Connect shared secret (a webhook site's credential).
SiteCredential = ApiToken | PersonalAccessToken


@attrs.frozen
class WebhookSecrets:
    """A site's webhook secrets: the current one and, during a rotation, the previous one,
    which verifies strictly before `previous_valid_until` (§8.1)."""

    current: str = attrs.field(repr=False)
    previous: str | None = attrs.field(default=None, repr=False)
    previous_valid_until: datetime | None = None

    def __attrs_post_init__(self) -> None:
        if (self.previous is None) != (self.previous_valid_until is None):
            raise ValueError("a previous secret needs the instant it stops verifying, and only it")
        if self.previous_valid_until is not None and self.previous_valid_until.tzinfo is None:
            raise ValueError("previous_valid_until must carry a time zone")

    def valid_at(self, now: datetime) -> tuple[str, ...]:
        """The secrets a delivery received at `now` may be signed with."""
        if self.previous is not None and self.previous_valid_until is not None \
                and now < self.previous_valid_until:
            return (self.current, self.previous)
        return (self.current,)

    def rotated(self, new_secret: str, *, now: datetime) -> WebhookSecrets:
        """§8.1 rotate: `new_secret` becomes current; the current one verifies for an hour."""
        return WebhookSecrets(current=new_secret, previous=self.current,
                              previous_valid_until=now + ROTATION_OVERLAP)
