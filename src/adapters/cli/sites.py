"""`sentry-jira sites …`: the webhook sites of §8.1 (add, rotate-secret, set-credential,
remove) through the same use cases as `/api/sites`.

The Jira credential (a Cloud API token or a Data Center PAT) comes from
SENTRY_JIRA_JIRA_CREDENTIAL or, when that is unset, from standard input; never from the
command line (an option or an extra argument carrying one is a usage error that repeats no
typed value). The webhook secret is printed once, with the exact URL to paste into Jira.
Exit status as the other admin commands: 0 done, 1 refused or not found, 2 usage.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from adapters.cli.admin import CONTEXT, AdminGroup, emit, fields, json_option, run

if TYPE_CHECKING:
    from adapters.wiring import Container

CREDENTIAL_ENV = "SENTRY_JIRA_JIRA_CREDENTIAL"
log = logging.getLogger("sentry_jira")


def _refuse_credential_on_command_line(
    ctx: click.Context, _: click.Parameter, value: str | None
) -> None:
    if value is not None:
        raise click.UsageError(
            f"the Jira credential is never taken from the command line; set {CREDENTIAL_ENV} "
            "or give it on standard input",
            ctx,
        )


F = TypeVar("F", bound=Callable[..., Any])


def _refusing(name: str) -> Callable[[F], F]:
    return click.option(name, hidden=True, expose_value=False,
                        callback=_refuse_credential_on_command_line,
                        help="Refused: secrets never go on the command line.")


def _credential() -> str:
    """SENTRY_JIRA_JIRA_CREDENTIAL, else the first line of standard input ('' if none)."""
    value = os.environ.get(CREDENTIAL_ENV)
    if value is not None and value.strip():
        return value.strip()
    return sys.stdin.readline().strip()


def _auth(email: str | None, pat: bool) -> dict[str, Any]:
    if email is not None and pat:
        raise click.UsageError("give --email (a Cloud API token) or --pat (a Data Center "
                               "personal access token), not both")
    if email is not None:
        return {"kind": "api-token", "email": email}
    if pat:
        return {"kind": "pat"}
    raise click.UsageError("give --email <address> (Cloud API token) or --pat (Data Center)")


@click.group(cls=AdminGroup, context_settings=CONTEXT)
def sites() -> None:
    """Webhook sites: Jira Cloud admin webhooks and Jira Data Center, no app install (§8.1)."""


def _added_lines(answer: dict[str, Any]) -> list[str]:
    return [
        f"site {answer['id']} registered ({answer['flavor']}, {answer['base_url']})",
        "In Jira, create a webhook (event: issue updated) with:",
        f"  URL:    {answer['webhook_url']}",
        f"  Secret: {answer['webhook_secret']}",
        "The secret is shown this once.",
    ]


@sites.command("add")
@click.argument("base_url")
@click.option("--flavor", type=click.Choice(["cloud", "data-center"]), required=True,
              help="cloud (API token, REST v3) or data-center (PAT, REST v2).")
@click.option("--email", help="Cloud: the e-mail of the account that owns the API token.")
@click.option("--pat", is_flag=True, help="Data Center: the credential is a personal access token.")
@_refusing("--credential")
@_refusing("--api-token")
@_refusing("--token")
@json_option
def sites_add(base_url: str, flavor: str, email: str | None, pat: bool, as_json: bool) -> None:
    """Register a site; the credential from $SENTRY_JIRA_JIRA_CREDENTIAL or standard input.

    The credential is tried once against Jira before anything is stored. Prints the webhook
    URL to paste into Jira and its secret, once."""
    from adapters.presenters import registered_site_json
    from core.admin import sites as use_cases

    auth = _auth(email, pat)
    credential = _credential()

    async def operation(c: Container) -> dict[str, Any]:
        body = {"base_url": base_url, "flavor": flavor, "auth": auth, "credential": credential}
        command = use_cases.RegisterSite.parse(body, c.settings.app.jira_hosts)
        registered = await use_cases.register_site(command, tenants=c.tenants, jira=_jira(c),
                                                   clock=c.clock)
        log.info("webhook site %d registered (%s)", registered.site.id, flavor)
        return registered_site_json(registered, c.settings.app.base_url)

    emit(run(operation), as_json, _added_lines)


@sites.command("rotate-secret")
@click.argument("site_id")
@json_option
def sites_rotate_secret(site_id: str, as_json: bool) -> None:
    """A new webhook secret, printed once; the previous one verifies for one more hour."""
    from adapters.presenters import registered_site_json
    from core.admin import sites as use_cases

    async def operation(c: Container) -> dict[str, Any]:
        rotated = await use_cases.rotate_webhook_secret(site_id, tenants=c.tenants, clock=c.clock)
        body = registered_site_json(rotated, c.settings.app.base_url)
        return {key: body[key] for key in ("id", "webhook_url", "webhook_secret")}

    emit(run(operation), as_json, lambda answer: [
        f"  URL:    {answer['webhook_url']}",
        f"  Secret: {answer['webhook_secret']}",
        "Paste the new secret into the site's Jira webhook within the hour: the previous one "
        "stops verifying then.",
    ])


@sites.command("set-credential")
@click.argument("site_id")
@click.option("--email", help="Cloud: the e-mail of the account that owns the API token.")
@click.option("--pat", is_flag=True, help="Data Center: the credential is a personal access token.")
@_refusing("--credential")
@_refusing("--api-token")
@_refusing("--token")
@json_option
def sites_set_credential(site_id: str, email: str | None, pat: bool, as_json: bool) -> None:
    """Replace a site's Jira credential ($SENTRY_JIRA_JIRA_CREDENTIAL or standard input);
    tried once against Jira first. Without --email or --pat, the site's flavor decides
    (a Cloud site keeps its e-mail)."""
    from adapters.presenters import site_json
    from core.admin import sites as use_cases
    from core.model.credentials import ApiToken

    chosen = _auth(email, pat) if email is not None or pat else None
    credential = _credential()

    async def operation(c: Container) -> dict[str, Any]:
        auth = chosen
        if auth is None:
            current = await use_cases.find_webhook_site(site_id, tenants=c.tenants)
            stored = current.site_credential
            auth = ({"kind": "api-token", "email": stored.email}
                    if isinstance(stored, ApiToken) else {"kind": "pat"})
        command = use_cases.SetCredential.parse(site_id, {"auth": auth,
                                                          "credential": credential})
        site = await use_cases.set_site_credential(command, tenants=c.tenants, jira=_jira(c),
                                                   clock=c.clock)
        return site_json(site, c.settings.app.base_url)

    emit(run(operation), as_json, fields)


@sites.command("remove")
@click.argument("site_id")
@json_option
def sites_remove(site_id: str, as_json: bool) -> None:
    """Remove a site: uninstalled, its secrets and credential erased; bindings, links and
    journal kept."""
    from adapters.presenters import site_json
    from core.admin import sites as use_cases

    async def operation(c: Container) -> dict[str, Any]:
        site = await use_cases.remove_site(site_id, tenants=c.tenants)
        log.info("webhook site %d removed", site.id)
        return site_json(site, c.settings.app.base_url)

    emit(run(operation), as_json, fields)


def _jira(c: Container) -> Any:
    from core.model.errors import UpstreamFailed

    if c.jira is None:
        raise UpstreamFailed("no Jira client is configured")
    return c.jira


sites_commands = [sites]
