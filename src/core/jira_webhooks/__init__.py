"""The pure half of the `webhook` transport (SPEC §8.1): Jira Cloud admin webhooks and Jira
Data Center, signed with `X-Hub-Signature`. No I/O, no framework: bytes and secrets in, a
refusal (`Unauthorized`) or nothing out."""

from core.jira_webhooks.verify import (
    ROTATION_OVERLAP,
    SIGNATURE_HEADER,
    WebhookSecrets,
    new_webhook_secret,
    parse_hub_signature,
    verify_hub_signature,
    webhook_delivery_id,
)

__all__ = [
    "ROTATION_OVERLAP",
    "SIGNATURE_HEADER",
    "WebhookSecrets",
    "new_webhook_secret",
    "parse_hub_signature",
    "verify_hub_signature",
    "webhook_delivery_id",
]
