"""§A administration commands of `sentry-jira` (tenants, orgs, links, accounts, search tokens).

They work on the configured database (the same environment as `serve`, also while servers
run: every write is one `BEGIN IMMEDIATE` transaction) through the same core use cases as
the HTTP API. Exit status: 0 done, 1 refused (bad value, unknown id, database busy),
2 usage or configuration error. Errors are one line on stderr. A Sentry token is read from
SENTRY_JIRA_SENTRY_TOKEN or standard input, never from the command line.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import re
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from adapters.cli.messages import cli_message

if TYPE_CHECKING:
    from adapters.config import Settings
    from adapters.wiring import Container

T = TypeVar("T")

SENTRY_TOKEN_ENV = "SENTRY_JIRA_SENTRY_TOKEN"
CONTEXT = {"help_option_names": ["-h", "--help"]}

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def usage_line(message: str, where: str) -> str:
    """The one shape of a usage error (exit 2), click's and the commands' own alike."""
    return f"error: {message} (see '{where} --help')"


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"sentry-jira: {message}", err=True)
    sys.exit(code)


def open_configured(*, read_only: bool = False) -> Container:
    """Settings from the environment, the one logging setup (§3), then the container."""
    from adapters.config import ConfigError, load_settings
    from adapters.logs import start_logging

    try:
        settings = load_settings(os.environ)
    except ConfigError as err:
        fail(f"configuration error: {err}", 2)
    start_logging(settings)
    return open_container(settings, read_only=read_only)


def open_container(settings: Settings, *, read_only: bool = False) -> Container:
    """Open the configured database; every configuration or environment mistake is one line
    on stderr, exit 2, never a traceback (§3). A read-only command never creates a database
    or a key file: with none at the configured path it says so, exit 1; nor does it migrate:
    a database without this version's schema (either engine) is one line, exit 1."""
    import sqlite3

    from adapters.config import ConfigError, check_database_file
    from adapters.wiring import SchemaNotReady, bootstrap

    if read_only and settings.postgres_url is None and not settings.database.exists():
        fail(f"no database at {settings.database} (set SENTRY_JIRA_DATABASE)", 1)
    try:
        check_database_file(settings)
        return bootstrap(settings, read_only=read_only)
    except SchemaNotReady as err:
        fail(str(err), 1)
    except ConfigError as err:
        fail(f"configuration error: {err}", 2)
    except sqlite3.DatabaseError as err:
        fail(f"configuration error: SENTRY_JIRA_DATABASE: cannot use {settings.database}: "
             f"{err}", 2)
    except OSError as err:
        fail(f"configuration error: SENTRY_JIRA_DATABASE: cannot use {settings.database}: "
             f"{err.strerror}", 2)


def run(
    operation: Callable[[Container], Coroutine[Any, Any, T]], *, read_only: bool = False
) -> T:
    """Open the configured database, run one use case, close; map errors to exit codes."""
    from core.model.errors import ServiceError

    container = open_configured(read_only=read_only)

    async def operate() -> T:
        try:
            return await operation(container)
        finally:
            await container.close_pools()  # §9: the pool belongs to this loop

    try:
        return asyncio.run(operate())
    except ServiceError as err:
        fail(cli_message(err.detail), 1)  # in the CLI's words: --sentry-url, not sentry_url
    finally:
        container.close()


def emit(value: Any, as_json: bool, lines: Callable[[Any], list[str]]) -> None:
    if as_json:
        click.echo(json.dumps(value, indent=2, sort_keys=False))
    else:
        for line in lines(value):
            click.echo(line)


def emit_table(
    rows: list[dict[str, Any]],
    as_json: bool,
    *,
    header: Sequence[str],
    row: Callable[[dict[str, Any]], Sequence[str]],
    empty: str,
) -> None:
    """A list: `--json`, or tab-separated lines under a header line; an empty list says so."""
    if as_json:
        emit(rows, True, list)
    elif not rows:
        click.echo(empty)
    else:
        click.echo("\t".join(header))
        for found in rows:
            click.echo("\t".join(row(found)))


def fields(value: dict[str, Any]) -> list[str]:
    return [f"{name}: {_shown(item)}" for name, item in value.items()]


def _shown(item: Any) -> str:
    plain = isinstance(item, str | int) and not isinstance(item, bool)
    return str(item) if plain else json.dumps(item)


# The words of the command line being run (set by `AdminGroup.main`): a usage error must not
# repeat them, since a token pasted by mistake (`orgs bind 1 acme sntrys_…`) is one of them.
_ARGV: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("argv", default=())
HIDDEN = "<argument>"
# An option name as typed (`--token`, `-x`): shown, it says which option was wrong.
OPTION_NAME = re.compile(r"--?[a-z][a-z0-9-]{0,40}", re.ASCII)


def _names(command: click.Command) -> Iterator[str]:
    """Every command name, option name and choice value under `command`: safe to repeat."""
    if command.name:
        yield command.name
    for param in command.params:
        yield from param.opts
        yield from param.secondary_opts
        if isinstance(param.type, click.Choice):
            yield from (str(choice) for choice in param.type.choices)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            yield from _names(sub)


def _typed_values(argv: Sequence[str], known: set[str]) -> list[str]:
    """The words of argv that may be secrets: all but known names, option names and tiny words."""
    values: list[str] = []
    for word in argv:
        name, eq, value = word.partition("=")
        if eq and OPTION_NAME.fullmatch(name):
            word = value
        if len(word) <= 3 or word in known or OPTION_NAME.fullmatch(word):
            continue
        values.append(word)
    return sorted(set(values), key=len, reverse=True)


def usage_message(err: click.UsageError, argv: Sequence[str], root: click.Command) -> str:
    """Click's message for a usage error with every value typed on the command line hidden."""
    message = err.format_message()
    for value in _typed_values(argv, set(_names(root))):
        message = message.replace(value, HIDDEN)
    return message


class AdminGroup(click.Group):
    """A command group whose usage errors are one line on stderr (exit 2) that never repeats
    a value typed on the command line (§A: a secret given by mistake is not echoed back)."""

    def main(self, args: Sequence[str] | None = None, *rest: Any, **extra: Any) -> Any:
        argv = tuple(sys.argv[1:] if args is None else args)
        reset = _ARGV.set(argv)
        try:
            return super().main(list(argv), *rest, **extra)
        finally:
            _ARGV.reset(reset)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as err:
            self._refuse(err, info_name or self.name or "", parent)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as err:
            self._refuse(err, ctx.command_path, ctx)

    def _refuse(self, err: click.UsageError, where: str, ctx: click.Context | None) -> NoReturn:
        if err.ctx is not None:
            where = err.ctx.command_path
        root = ctx.find_root().command if ctx is not None else self
        argv = _ARGV.get() or tuple(sys.argv[1:])
        fail(usage_line(usage_message(err, argv, root), where), 2)


# -- tenants --------------------------------------------------------------------------------


@click.group(cls=AdminGroup, context_settings=CONTEXT)
def tenants() -> None:
    """List and show tenants (Jira sites that installed the app)."""


TENANT_HEADER = ("id", "status", "client_key", "base_url", "orgs")
NO_TENANTS = ("no tenants yet: install the app in Jira (see README, Installing it in Jira) "
              "or `sentry-jira sites add`")


def _tenant_row(tenant: dict[str, Any]) -> list[str]:
    orgs = ",".join(tenant["orgs"]) or "-"
    return [str(tenant["id"]), tenant["status"], tenant["client_key"] or tenant["transport"],
            tenant["base_url"], orgs]


@tenants.command("list")
@json_option
def tenants_list(as_json: bool) -> None:
    """List every tenant with its bound orgs (id, status, client key, base URL, orgs)."""
    from adapters.presenters import tenant_json
    from core.admin import bindings as admin

    async def operation(c: Container) -> list[dict[str, Any]]:
        views = await admin.list_tenants(tenants=c.tenants, bindings=c.admin.bindings)
        return [tenant_json(view) for view in views]

    emit_table(run(operation, read_only=True), as_json, header=TENANT_HEADER, row=_tenant_row,
               empty=NO_TENANTS)


@tenants.command("show")
@click.argument("tenant_id")
@json_option
def tenants_show(tenant_id: str, as_json: bool) -> None:
    """Show one tenant."""
    from adapters.presenters import tenant_json
    from core.admin import bindings as admin

    async def operation(c: Container) -> dict[str, Any]:
        view = await admin.show_tenant(tenant_id, tenants=c.tenants, bindings=c.admin.bindings)
        return tenant_json(view)

    emit(run(operation, read_only=True), as_json, fields)


# -- orgs -----------------------------------------------------------------------------------


@click.group(cls=AdminGroup, context_settings=CONTEXT)
def orgs() -> None:
    """Bind Sentry orgs to a tenant, show and unbind them."""


def _refuse_token_on_command_line(ctx: click.Context, _: click.Parameter, value: Any) -> None:
    if value is not None:
        raise click.UsageError(
            f"the Sentry token is never taken from the command line; set {SENTRY_TOKEN_ENV} "
            "or pass --sentry-token-stdin",
            ctx,
        )


def _sentry_token(from_stdin: bool) -> str | None:
    if from_stdin:
        text = sys.stdin.read()
        return text.strip()
    value = os.environ.get(SENTRY_TOKEN_ENV)
    return value.strip() if value is not None and value.strip() else None


def _status_map(_: click.Context, __: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise click.BadParameter("not valid JSON") from None


@orgs.command("bind")
@click.argument("tenant_id")
@click.argument("org")
@click.option("--sentry-url", help="Sentry base URL, e.g. https://sentry.io (needed to create).")
@click.option(
    "--sentry-token-stdin",
    is_flag=True,
    help=f"Read the Sentry token from standard input (else from ${SENTRY_TOKEN_ENV}).",
)
@click.option(
    "--sentry-token",
    hidden=True,
    expose_value=False,
    callback=_refuse_token_on_command_line,
    help="Refused: secrets never go on the command line.",
)
@click.option("--sync-status/--no-sync-status", default=None, help="Sync Jira status changes.")
@click.option(
    "--sync-assignee/--no-sync-assignee", default=None, help="Sync Jira assignee changes."
)
@click.option(
    "--resolution-strategy",
    type=click.Choice(["resolve", "resolve_current_release", "resolve_next_release"]),
    help="How a Jira 'done' resolves the Sentry issue.",
)
@click.option(
    "--skip-archived/--no-skip-archived", default=None, help="Leave archived issues alone."
)
@click.option(
    "--status-map",
    callback=_status_map,
    help='JSON: {"<project id>": {"resolve": ["<status id>"], "unresolve": [...]}}.',
)
@json_option
def orgs_bind(
    tenant_id: str,
    org: str,
    sentry_url: str | None,
    sentry_token_stdin: bool,
    sync_status: bool | None,
    sync_assignee: bool | None,
    resolution_strategy: str | None,
    skip_archived: bool | None,
    status_map: Any,
    as_json: bool,
) -> None:
    """Bind ORG to TENANT_ID, or change its settings; options left out keep their values.

    Creating a binding needs --sentry-url and a Sentry token (from $SENTRY_JIRA_SENTRY_TOKEN
    or --sentry-token-stdin).
    """
    from adapters.presenters import binding_json
    from core.admin import bindings as admin
    from core.admin.bindings import BindOrg

    body: dict[str, Any] = {
        "sentry_url": sentry_url,
        "sentry_token": _sentry_token(sentry_token_stdin),
        "sync_status": sync_status,
        "sync_assignee": sync_assignee,
        "resolution_strategy": resolution_strategy,
        "skip_archived": skip_archived,
        "status_map": status_map,
    }
    if sentry_token_stdin and not body["sentry_token"]:
        fail("--sentry-token-stdin: standard input was empty", 1)

    async def operation(c: Container) -> dict[str, Any]:
        command = BindOrg.parse(
            tenant_id, org, {name: value for name, value in body.items() if value is not None}
        )
        return binding_json(
            await admin.bind_org(
                command,
                tenants=c.tenants,
                bindings=c.admin.bindings,
                sentry_hosts=c.settings.app.sentry_hosts,
            )
        )

    emit(run(operation), as_json, fields)


@orgs.command("show")
@click.argument("tenant_id")
@click.argument("org")
@json_option
def orgs_show(tenant_id: str, org: str, as_json: bool) -> None:
    """Show the settings of ORG's binding to TENANT_ID (the Sentry token masked)."""
    from adapters.presenters import binding_json
    from core.admin import bindings as admin
    from core.admin.bindings import OrgRef

    async def operation(c: Container) -> dict[str, Any]:
        ref = OrgRef.parse(tenant_id, org)
        return binding_json(
            await admin.show_binding(ref, tenants=c.tenants, bindings=c.admin.bindings)
        )

    emit(run(operation, read_only=True), as_json, fields)


@orgs.command("unbind")
@click.argument("tenant_id")
@click.argument("org")
@json_option
def orgs_unbind(tenant_id: str, org: str, as_json: bool) -> None:
    """Unbind ORG from TENANT_ID; its links and account mappings are deleted with it."""
    from core.admin import bindings as admin
    from core.admin.bindings import OrgRef

    async def operation(c: Container) -> None:
        ref = OrgRef.parse(tenant_id, org)
        await admin.unbind_org(ref, tenants=c.tenants, bindings=c.admin.bindings)

    run(operation)
    emit({"unbound": org}, as_json, lambda _: [f"unbound {org}"])


# -- links ----------------------------------------------------------------------------------


@click.group(cls=AdminGroup, context_settings=CONTEXT)
def links() -> None:
    """Link Jira issue keys to Sentry issues in a bound org."""


def _link_lines(link: dict[str, Any]) -> list[str]:
    return [f"{link['issue_key']}\t{','.join(link['sentry_issue_ids'])}"]


@links.command("set")
@click.argument("tenant_id")
@click.argument("org")
@click.argument("issue_key")
@click.argument("sentry_issue_ids", nargs=-1, required=True)
@json_option
def links_set(
    tenant_id: str, org: str, issue_key: str, sentry_issue_ids: tuple[str, ...], as_json: bool
) -> None:
    """Link ISSUE_KEY to SENTRY_ISSUE_IDS (replacing the key's previous set)."""
    from adapters.presenters import link_json
    from core.admin import bindings as admin
    from core.admin.bindings import PutLink

    async def operation(c: Container) -> dict[str, Any]:
        body = {"sentry_issue_ids": list(sentry_issue_ids)}
        command = PutLink.parse(tenant_id, org, issue_key, body)
        return link_json(await admin.put_link(command, tenants=c.tenants, links=c.admin.links))

    emit(run(operation), as_json, _link_lines)


@links.command("show")
@click.argument("tenant_id")
@click.argument("org")
@click.argument("issue_key")
@json_option
def links_show(tenant_id: str, org: str, issue_key: str, as_json: bool) -> None:
    """Show the Sentry issues linked to ISSUE_KEY."""
    from adapters.presenters import link_json
    from core.admin import bindings as admin
    from core.admin.bindings import LinkRef

    async def operation(c: Container) -> dict[str, Any]:
        target = LinkRef.parse(tenant_id, org, issue_key)
        return link_json(await admin.get_link(target, tenants=c.tenants, links=c.admin.links))

    emit(run(operation, read_only=True), as_json, _link_lines)


@links.command("delete")
@click.argument("tenant_id")
@click.argument("org")
@click.argument("issue_key")
@json_option
def links_delete(tenant_id: str, org: str, issue_key: str, as_json: bool) -> None:
    """Delete ISSUE_KEY's link."""
    from core.admin import bindings as admin
    from core.admin.bindings import LinkRef

    async def operation(c: Container) -> None:
        target = LinkRef.parse(tenant_id, org, issue_key)
        await admin.delete_link(target, tenants=c.tenants, links=c.admin.links)

    run(operation)
    emit({"deleted": issue_key}, as_json, lambda _: [f"deleted {issue_key}"])


# -- accounts -------------------------------------------------------------------------------


@click.group(cls=AdminGroup, context_settings=CONTEXT)
def accounts() -> None:
    """Map Jira accounts to Sentry users in a bound org (assignee sync)."""


@accounts.command("map")
@click.argument("tenant_id")
@click.argument("org")
@click.argument("account_id")
@click.argument("sentry_user_id")
@json_option
def accounts_map(
    tenant_id: str, org: str, account_id: str, sentry_user_id: str, as_json: bool
) -> None:
    """Map the Jira ACCOUNT_ID to the Sentry SENTRY_USER_ID."""
    from adapters.presenters import account_json
    from core.admin import bindings as admin
    from core.admin.bindings import MapAccount

    async def operation(c: Container) -> dict[str, Any]:
        body = {"sentry_user_id": sentry_user_id}
        command = MapAccount.parse(tenant_id, org, account_id, body)
        mapping = await admin.map_account(command, tenants=c.tenants, accounts=c.admin.accounts)
        return account_json(mapping)

    emit(run(operation), as_json, lambda m: [f"{m['account_id']}\t{m['sentry_user_id']}"])


@accounts.command("unmap")
@click.argument("tenant_id")
@click.argument("org")
@click.argument("account_id")
@json_option
def accounts_unmap(tenant_id: str, org: str, account_id: str, as_json: bool) -> None:
    """Remove the mapping of the Jira ACCOUNT_ID."""
    from core.admin import bindings as admin
    from core.admin.bindings import AccountRef

    async def operation(c: Container) -> None:
        target = AccountRef.parse(tenant_id, org, account_id)
        await admin.unmap_account(target, tenants=c.tenants, accounts=c.admin.accounts)

    run(operation)
    emit({"unmapped": account_id}, as_json, lambda _: [f"unmapped {account_id}"])


# -- search tokens --------------------------------------------------------------------------


@click.group("search-tokens", cls=AdminGroup, context_settings=CONTEXT)
def search_tokens() -> None:
    """Issue, list and revoke an org's search tokens (S1)."""


@search_tokens.command("create")
@click.argument("org")
@json_option
def search_tokens_create(org: str, as_json: bool) -> None:
    """Issue a search token for ORG; it is printed this once and stored hashed."""
    from adapters.presenters import issued_search_token_json
    from core.admin import bindings as admin

    async def operation(c: Container) -> dict[str, Any]:
        issued = await admin.create_search_token(
            org, search_tokens=c.admin.search_tokens, clock=c.clock
        )
        return issued_search_token_json(issued)

    emit(run(operation), as_json, lambda t: [f"id: {t['id']}", f"token: {t['token']}"])


@search_tokens.command("list")
@click.argument("org")
@json_option
def search_tokens_list(org: str, as_json: bool) -> None:
    """List ORG's search tokens (ids and creation times; never the tokens)."""
    from adapters.presenters import search_token_json
    from core.admin import bindings as admin

    async def operation(c: Container) -> list[dict[str, Any]]:
        found = await admin.list_search_tokens(org, search_tokens=c.admin.search_tokens)
        return [search_token_json(token) for token in found]

    emit_table(run(operation, read_only=True), as_json, header=("id", "created_at"),
               row=lambda t: [str(t["id"]), t["created_at"]],
               empty=f"no search tokens for {org}: create one with `sentry-jira search-tokens "
               f"create {org}`")


@search_tokens.command("revoke")
@click.argument("org")
@click.argument("token_id")
@json_option
def search_tokens_revoke(org: str, token_id: str, as_json: bool) -> None:
    """Revoke ORG's search token TOKEN_ID."""
    from core.admin import bindings as admin
    from core.admin.bindings import SearchTokenRef

    async def operation(c: Container) -> None:
        ref = SearchTokenRef.parse(org, token_id)
        await admin.revoke_search_token(ref, search_tokens=c.admin.search_tokens)

    run(operation)
    emit({"revoked": int(token_id)}, as_json, lambda _: [f"revoked {token_id}"])


admin_commands: list[click.Command] = [tenants, orgs, links, accounts, search_tokens]
