"""`sentry-jira worker`, `sentry-jira journal` and `sentry-jira dead-letters` (W5–W9, §A).

`worker` runs the sync worker on the configured database until SIGTERM or SIGINT, then
releases the deliveries it holds. Run it beside `serve` processes (with or without
`SENTRY_JIRA_WORKER=false`) to add workers: they share the queue through leases. With
`--metrics-port` it serves its own metrics (§3: its outbound calls and sync outcomes live in
this process, not in any `serve`) on 127.0.0.1 only: no token, so never on another address.

`journal` and `dead-letters` work like the other admin commands (adapters/cli/admin.py):
exit 0 done, 1 refused or not found, 2 usage error; `--json` everywhere.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Any

import click

from adapters.cli.admin import (
    CONTEXT,
    AdminGroup,
    emit,
    emit_table,
    json_option,
    open_configured,
    run,
)

if TYPE_CHECKING:
    from adapters.wiring import Container


METRICS_HOST = "127.0.0.1"  # the worker's metrics have no token: loopback only


@click.command(context_settings=CONTEXT)
@click.option("--metrics-port", type=click.IntRange(1, 65535), metavar="PORT",
              help="Serve this worker's Prometheus metrics on 127.0.0.1:PORT (loopback only).")
def worker(metrics_port: int | None) -> None:
    """Run the sync worker until stopped (SIGTERM / SIGINT)."""
    from adapters.cli.main import fail_startup
    from adapters.http.server import CannotListen, check_can_listen
    from adapters.logs import event, log, log_startup
    from adapters.metrics import GAUGE_SECONDS

    if metrics_port is not None:
        try:  # §3: a port in use is one line, exit 2, before the database is opened
            check_can_listen(METRICS_HOST, metrics_port, option="--metrics-port")
        except CannotListen as err:
            fail_startup(str(err))
    container = open_configured()
    log_startup(container.settings, process="worker", transports=())
    exporter = None
    if metrics_port is not None:
        from prometheus_client import start_http_server

        exporter, _ = start_http_server(metrics_port, addr=METRICS_HOST,
                                        registry=container.metrics.registry)
        event(log, logging.INFO, "metrics", "worker metrics served on loopback",
              listen=f"{METRICS_HOST}:{metrics_port}")

    async def read_gauges() -> None:
        while True:  # the database-wide gauges, as serve's /metrics reads them
            await container.metrics.refresh(inbox=container.inbox, journal=container.journal,
                                            clock=container.clock)
            await asyncio.sleep(GAUGE_SECONDS)

    async def serve_queue() -> None:
        assert container.worker is not None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await container.worker.start()
        container.start_wakeups()
        event(log, logging.INFO, "worker_start", "sync worker started",
              owner=container.worker.owner)
        gauges = asyncio.create_task(read_gauges()) if exporter is not None else None
        try:
            await stop.wait()
        finally:
            if gauges is not None:
                gauges.cancel()
            await container.shutdown()  # stops the worker first (logs worker_stop)

    try:
        asyncio.run(serve_queue())
    finally:
        if exporter is not None:
            exporter.shutdown()
            exporter.server_close()
        container.close()


JOURNAL_HEADER = ("at", "delivery", "issue_key", "org", "kind", "outcome", "detail")


def _journal_row(entry: dict[str, Any]) -> list[str]:
    return [entry["at"], entry["delivery"], entry["issue_key"], entry["org"] or "-",
            entry["kind"], entry["outcome"], entry["detail"]]


@click.command(context_settings=CONTEXT)
@click.argument("tenant_id")
@click.option("--issue-key", help="Only this Jira issue key.")
@click.option("--limit", help="How many entries, newest first (default 50, at most 500).")
@json_option
def journal(tenant_id: str, issue_key: str | None, limit: str | None, as_json: bool) -> None:
    """Show TENANT_ID's sync journal, newest first: what happened to each delivery and why."""
    from adapters.presenters import journal_json
    from core.admin import journal as sync_admin

    async def operation(c: Container) -> list[dict[str, Any]]:
        query = sync_admin.JournalQuery.parse(tenant_id, issue_key, limit)
        assert c.journal is not None
        entries = await sync_admin.read_journal(query, tenants=c.tenants, journal=c.journal)
        return [journal_json(entry) for entry in entries]

    emit_table(run(operation, read_only=True), as_json, header=JOURNAL_HEADER,
               row=_journal_row, empty=f"no journal entries for tenant {tenant_id} yet")


@click.group("dead-letters", cls=AdminGroup, context_settings=CONTEXT)
def dead_letters() -> None:
    """List sync actions that failed for good, and retry them."""


DEAD_LETTER_HEADER = ("id", "created_at", "tenant_id", "org", "issue_key", "kind", "attempts",
                      "last_error")


def _dead_letter_row(letter: dict[str, Any]) -> list[str]:
    return [str(letter["id"]), letter["created_at"], str(letter["tenant_id"]),
            letter["org"] or "-", letter["issue_key"], letter["kind"], str(letter["attempts"]),
            letter["last_error"]]


@dead_letters.command("list")
@click.option("--limit", help="How many, newest first (default and at most 500).")
@json_option
def dead_letters_list(limit: str | None, as_json: bool) -> None:
    """List dead letters (id, time, tenant, org, issue key, kind, attempts, last error)."""
    from adapters.presenters import dead_letter_json
    from core.admin import journal as sync_admin

    async def operation(c: Container) -> list[dict[str, Any]]:
        assert c.journal is not None
        letters = await sync_admin.list_dead_letters(limit, journal=c.journal)
        return [dead_letter_json(letter) for letter in letters]

    emit_table(run(operation, read_only=True), as_json, header=DEAD_LETTER_HEADER,
               row=_dead_letter_row, empty="no dead letters")


@dead_letters.command("retry")
@click.argument("dead_letter_id")
@json_option
def dead_letters_retry(dead_letter_id: str, as_json: bool) -> None:
    """Queue dead letter DEAD_LETTER_ID again; a running worker attempts it at once (its
    watermark is checked again: an action a newer change superseded ends `stale`)."""
    from core.admin import journal as sync_admin

    async def operation(c: Container) -> int:
        assert c.journal is not None
        return await sync_admin.retry_dead_letter(dead_letter_id, journal=c.journal,
                                                 clock=c.clock)

    number = run(operation)
    emit({"id": number, "status": "queued"}, as_json, lambda _: [f"queued {number}"])


sync_commands: list[click.Command] = [worker, journal, dead_letters]
