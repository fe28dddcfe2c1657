"""`POST /extensions/jira/webhook/{site_id}/` (§8.1, then W2–W4, W10): the webhook
transport's hot path, a raw ASGI handler shaped like the Connect route
(`adapters/http/connect/issue_updated.py`).

Routing (404/405) and the transport guard (431/413/415) run first; then the site is found by
id and `X-Hub-Signature` checked over the raw body before anything parses it (one 401 for
every failure, nothing recorded, no egress); then the same acknowledgement as Connect. The
delivery id is a hash of the raw body: `X-Atlassian-Webhook-Identifier` is not signed, so it
is only logged (debug), never used.
"""

from __future__ import annotations

import logging

from litestar import asgi
from litestar.exceptions import NotFoundException
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from adapters.http.acknowledgement import acknowledge_and_answer, counted
from adapters.http.body import read_body
from adapters.http.transport import ALLOWED_METHODS_OPT, JSON_BODY_OPT
from adapters.wiring import Container
from core.describe import WEBHOOK_PATH
from core.jira_webhooks.site import verify_webhook_site
from core.jira_webhooks.verify import webhook_delivery_id

log = logging.getLogger("sentry_jira.webhook")

_MAX_LOGGED_IDENTIFIER = 128
_PREFIX = WEBHOOK_PATH.split("{site_id}", 1)[0].rstrip("/")  # /extensions/jira/webhook


def routes(container: Container) -> list[ASGIRouteHandler]:
    settings = container.settings
    lookup = container.tenant_lookup or container.tenants

    # A mount: Litestar (2.x) cannot route a raw ASGI handler with a path parameter for an
    # HTTP method (it keys the parameters by "asgi", then looks them up by "POST"), so the
    # handler takes `<prefix>/<site_id>/` and reads the id itself. Every method reaches it:
    # the transport guard answers 405 for all but POST, as for the Connect route.
    @asgi(_PREFIX, is_mount=True, copy_scope=True,
          opt={JSON_BODY_OPT: True, ALLOWED_METHODS_OPT: ("POST",)},
          summary="Jira webhook, signed with X-Hub-Signature (§8.1)")
    @counted("webhook", container)
    async def webhook(scope: Scope, receive: Receive, send: Send) -> str:
        # The mount hands over the rest of the path: exactly one segment, else no such route.
        rest = scope["path"].strip("/")
        if not rest or "/" in rest:
            raise NotFoundException()
        # The id as sent, still percent-encoded (`%31` is not `1`): the raw path's last segment.
        raw_path = (scope.get("raw_path") or b"").split(b"?", 1)[0].rstrip(b"/")
        site_id = raw_path.rsplit(b"/", 1)[-1].decode("latin-1") if raw_path else rest
        signatures: list[str] = []
        identifier: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"x-hub-signature":
                signatures.append(value.decode("latin-1"))
            elif name == b"x-atlassian-webhook-identifier":
                identifier = value
        raw_body = await read_body(receive, settings.max_body_bytes)
        site = await verify_webhook_site(
            site_id, raw_body, signatures,
            tenants=lookup, clock=container.clock)
        delivery_id = webhook_delivery_id(raw_body)
        if identifier is not None and log.isEnabledFor(logging.DEBUG):
            shown = identifier[:_MAX_LOGGED_IDENTIFIER].decode("ascii", "replace")
            log.debug("webhook site %d delivery %s: identifier header %r (not trusted)",
                      site.tenant.id, delivery_id, shown)
        return await acknowledge_and_answer(site, raw_body, webhook_id=delivery_id,
                                            container=container, send=send)

    return [webhook]
