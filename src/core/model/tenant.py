"""The tenant: one Jira Cloud site that installed the app (SPEC §1, L3–L5)."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime

import attrs

from core.model.credentials import (
    ConnectSecret,
    ForgeSystemToken,
    JiraCredential,
    JiraFlavor,
    SiteCredential,
    WebhookSecrets,
)
from core.model.forge import SystemToken

# §8.0: the transports a site can be reached through (the `transport` of §A answers).
CONNECT = "connect"
WEBHOOK = "webhook"
FORGE = "forge"


class TenantStatus(enum.StrEnum):
    INSTALLED = "installed"
    UNINSTALLED = "uninstalled"


@attrs.frozen
class Installation:
    """What a verified `installed` callback asks to store (L3/L4)."""

    client_key: str
    shared_secret: str = attrs.field(repr=False)
    base_url: str
    display_url: str | None
    installed_at: datetime
    # §8.2 Connect on Forge: the `installed` payload's `installationId`, when it has one.
    installation_id: str | None = None


@attrs.frozen
class NewSite:
    """What registering a webhook site stores (§8.1), once its credential was tried."""

    base_url: str
    flavor: JiraFlavor
    credential: SiteCredential = attrs.field(repr=False)
    webhook_secret: str = attrs.field(repr=False)
    registered_at: datetime


@attrs.frozen
class Tenant:
    """A stored Jira site. `shared_secret` is None once uninstalled (L5)."""

    id: int
    client_key: str
    base_url: str
    display_url: str | None
    status: TenantStatus
    installed_at: datetime
    shared_secret: str | None = attrs.field(repr=False)
    # Bumped on every rotation so caches of the secret can be keyed by it (L4).
    secret_version: int = 1
    # §8.0: the one transport that reaches this site (`connect`, later `forge`, `webhook`).
    transport: str = "connect"
    # §8.0/§8.1 (#13): how calls to this site's Jira authenticate. None: Connect, signed with
    # `shared_secret`; else a webhook site's API token (Cloud) or PAT (Data Center).
    site_credential: SiteCredential | None = attrs.field(default=None, repr=False)
    flavor: JiraFlavor = JiraFlavor.CLOUD
    # §8.1: a webhook site's `X-Hub-Signature` secrets; None for other transports and once
    # the site is removed (erased as L5 erases a shared secret).
    webhook_secrets: WebhookSecrets | None = attrs.field(default=None, repr=False)
    # §8.2: the Forge (or Connect-on-Forge) installation id, and a Forge site's app system
    # token (None until one arrives, after a 401 from Jira, and once uninstalled).
    installation_id: str | None = None
    system_token: SystemToken | None = attrs.field(default=None, repr=False)

    @property
    def jira_credential(self) -> JiraCredential | None:
        """The credential outbound Jira calls carry; None once uninstalled (nothing to send)."""
        if self.status is not TenantStatus.INSTALLED:
            return None
        if self.site_credential is not None and self.transport == WEBHOOK:
            return self.site_credential
        if self.transport == FORGE:
            # The token's expiry is the adapter's to judge (it holds the clock): a Forge
            # site without one still has a credential kind, and waits for a token (§8.2).
            token = self.system_token
            return ForgeSystemToken(None if token is None else token)
        return None if not self.shared_secret else ConnectSecret(self.shared_secret)

    @property
    def is_installed(self) -> bool:
        """Installed and holding a credential to call Jira with, whatever the transport
        (`jira_credential is not None`, without building the credential: the ack path asks)."""
        if self.status is not TenantStatus.INSTALLED:
            return False
        if self.transport == WEBHOOK:
            return self.site_credential is not None
        if self.transport == FORGE:
            return True  # the FIT authenticates it; its system token may come later (§8.2)
        return bool(self.shared_secret)


@attrs.frozen
class VerifiedSite:
    """A site whose request its transport's verifier accepted (§8.0); only verifiers build one.

    The issue-update use case takes this instead of a transport's request, so it never learns
    how the delivery was authenticated (Connect JWT, webhook signature, Forge token).
    """

    tenant: Tenant


def forge_client_key(installation_id: str) -> str:
    """A Forge site has no clientKey; its row carries this stand-in (the API shows null)."""
    return "forge-site:" + installation_id


def synthetic_client_key() -> str:
    """A webhook site has no clientKey; its row carries an unguessable stand-in (never shown:
    the API answers `client_key: null`), so the one `client_key` index stays unique."""
    return "webhook-site:" + secrets.token_hex(16)
