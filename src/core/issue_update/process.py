"""handle issue update, part 2: process one recorded delivery (W5–W9). The imperative shell
around the pure decisions of `core/issue_update/decide.py`.

For a delivery the worker has claimed:

1. **Decide once.** Without a stored plan: parse the recorded body, read the tenant's
   bindings and the links of the issue (under its current key and the keys it moved from),
   perform the lookups `core.issue_update.needed_lookups` asks for, read the watermarks and
   `decide`. The plan (the W7 re-keys, then the Sentry writes) is stored in one transaction
   with the journal entries of the decisions already final and the no-ops' watermarks
   (`SyncStore.save_plan`). A failed lookup (Jira or Sentry) retries the whole delivery with
   backoff; when attempts are exhausted (or Sentry refuses for good) the delivery becomes a
   dead letter of kind `delivery`.
2. **Attempt each pending action that is due**, in plan order: re-keys first, then writes.
   Right before each write the watermark is read again and `check_write` decides (W6), with
   the Sentry issue's status for `skip_archived`. Success stores the action as done, its
   journal entry and its watermark in one transaction — before the next action calls
   anyone, and for the last action together with step 3 (`ports.sync_store.apply_batch`:
   one commit less per delivery, issue 15). A release-based resolve Sentry
   refuses falls back to a plain resolve at once. Other failures: `retrying` with backoff
   (`Retry-After` honoured) or `dead` (a dead letter).
3. **Settle**: the delivery is finished when no action is pending, else given back due at
   its earliest pending action.

A crash between a Sentry write and the commit that records it leaves the action pending:
after the lease expires the next worker writes it again — at most one duplicate PUT, and the
W8 bodies are idempotent (they set a state). Nothing is journalled twice: every state change
is conditional on the action still being pending.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

from core.issue_update import (
    Decision,
    Delivery,
    Kind,
    Need,
    NeedAccountMapping,
    NeedDoneStatuses,
    NeedJiraEmail,
    NeedMembers,
    Outcome,
    Rekey,
    SentryWrite,
    Watermark,
    WatermarkKey,
    advance_after,
    after_failure,
    applied,
    check_write,
    decide,
    gather_lookups,
    may_look_up_email,
    rekey_decision,
    retry_delay,
)
from core.model.bindings import Binding, Link
from core.model.errors import BadRequest, SentryError, SentryReleaseRefused, UpstreamError
from core.model.settings import AppSettings
from core.model.tenant import Tenant
from core.model.text import storable_text
from ports.admin import AccountMappingStore, BindingStore, LinkStore
from ports.clock import Clock
from ports.inbox import ClaimedDelivery, Inbox
from ports.jira import JiraApi
from ports.journal import Journal
from ports.sentry import SentryApi
from ports.sync_store import (
    ActionState,
    Finish,
    JournalEntry,
    NewAction,
    Settle,
    StoredAction,
    SyncStore,
    apply_batch,
)
from ports.tenants import TenantStore


@attrs.frozen
class SyncPorts:
    """The ports the processing of a delivery uses (one bundle: the worker passes it on)."""

    inbox: Inbox
    sync: SyncStore
    journal: Journal
    tenants: TenantStore
    bindings: BindingStore
    links: LinkStore
    accounts: AccountMappingStore
    sentry: SentryApi
    jira: JiraApi | None
    clock: Clock


@attrs.define
class _JustRead:
    """What deciding a delivery read, for its first write (see `process_delivery`)."""

    bindings: dict[str, Binding] = attrs.field(factory=dict)
    marks: dict[WatermarkKey, Watermark | None] = attrs.field(factory=dict)


class LookupFailed(Exception):
    """A lookup before the decision failed (W9: retry the delivery, or a dead letter)."""

    def __init__(self, detail: str, *, transient: bool, retry_after: float | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.transient = transient
        self.retry_after = retry_after


async def process_delivery(
    claimed: ClaimedDelivery,
    *,
    owner: str,
    ports: SyncPorts,
    settings: AppSettings,
    jitter: Callable[[], float] = random.random,
) -> datetime | None:
    """W5–W9 for one claimed delivery. Returns when it is due again (None: finished)."""
    # A delivery claimed for the first time has no stored plan: only a claim holder saves
    # one, and a later claim counts the earlier ones (an admin retry that resets the count
    # finds its old plan through save_plan, which returns a stored plan as it is).
    plan = None if claimed.attempts == 0 else await ports.sync.plan_of(claimed.id)
    # What the decision just read: the first write uses its org's binding and its W6
    # watermark as read a moment ago instead of reading them again; later actions read
    # afresh (a write may take up to the HTTP timeout, an admin may rebind meanwhile, and
    # the first write's outcome moves the watermark).
    fresh = _JustRead()
    if plan is None:
        try:
            plan = await _decide_and_save(claimed, ports=ports, settings=settings,
                                          just_read=fresh)
        except LookupFailed as failure:
            return await _lookup_failed(claimed, failure, owner=owner, ports=ports,
                                        settings=settings, jitter=jitter)
    held: Finish | None = None  # the last action's outcome, stored with the settle
    for action in plan:
        if action.state is not ActionState.PENDING or action.not_before > ports.clock.now():
            continue
        if held is not None:  # stored before the next action calls anyone (W9)
            await apply_batch(ports.sync, [held])
        if action.kind is Kind.KEY:
            held = await _rekey(claimed, action, ports=ports)
        else:
            held = await _attempt_write(claimed, action, ports=ports, settings=settings,
                                        jitter=jitter, just_read=fresh)
        fresh = _JustRead()
    if held is None:
        return await ports.sync.settle(claimed.id, owner)
    _, due = await apply_batch(ports.sync, [held, Settle(claimed.id, owner)])
    assert not isinstance(due, bool)
    return due


# ---------------------------------------------------------------- deciding (once)


async def _decide_and_save(
    claimed: ClaimedDelivery, *, ports: SyncPorts, settings: AppSettings,
    just_read: _JustRead,
) -> list[StoredAction]:
    now = ports.clock.now()
    try:
        delivery = Delivery.parse(
            json.loads(claimed.body), delivery_id=claimed.delivery_id, tenant_id=claimed.tenant_id
        )
    except (ValueError, RecursionError, BadRequest) as err:
        reason = (err.detail if isinstance(err, BadRequest)
                  else "nested too deeply" if isinstance(err, RecursionError) else "not valid JSON")
        return await _save_final(claimed, Decision(
            Kind.DELIVERY, Outcome.IGNORED, f"the recorded body cannot be read: {reason}"), ports)
    tenant = await ports.tenants.get(claimed.tenant_id)
    if tenant is None:
        return await _save_final(claimed, Decision(
            Kind.DELIVERY, Outcome.IGNORED, f"tenant {claimed.tenant_id} is unknown"), ports)
    bindings = await ports.bindings.of_tenant(tenant.id)
    just_read.bindings.update((b.org, b) for b in bindings)
    links = await _links(delivery, bindings, ports.links)
    look_up_email = may_look_up_email(tenant, use_email_scope=settings.use_email_scope)
    lookups = await gather_lookups(
        delivery,
        bindings=bindings,
        links=links,
        look_up_email=look_up_email,
        perform=_performer(tenant, bindings, ports),
    )
    keys = [WatermarkKey(tenant.id, delivery.issue_id, b.org, kind)
            for b in bindings for kind in (Kind.STATUS, Kind.ASSIGNEE)]
    marks = await ports.sync.watermarks(keys)
    actions = decide(
        delivery,
        bindings=bindings,
        links=links,
        lookups=lookups,
        watermarks=marks,
        look_up_email=look_up_email,
    )
    advanced = {advance.key for advance in actions.advances}  # stored with the plan below
    just_read.marks.update((key, marks.get(key)) for key in keys if key not in advanced)
    decisions = list(actions.decisions)
    if not actions.rekeys and not actions.writes and not decisions:
        decisions.append(Decision(
            Kind.DELIVERY, Outcome.IGNORED, "the changelog changes no status or assignee"))
    planned = [NewAction(Kind.KEY, None, _rekey_record(r)) for r in actions.rekeys]
    planned += [NewAction(w.kind, w.org, w.to_record()) for w in actions.writes]
    return await ports.sync.save_plan(
        claimed,
        actions=planned,
        entries=[_entry(claimed, d, now) for d in decisions],
        advances=actions.advances,
        at=now,
    )


async def _save_final(
    claimed: ClaimedDelivery, decision: Decision, ports: SyncPorts
) -> list[StoredAction]:
    now = ports.clock.now()
    return await ports.sync.save_plan(
        claimed, actions=[], entries=[_entry(claimed, decision, now)], advances=[], at=now)


async def _links(
    delivery: Delivery, bindings: Sequence[Binding], links: LinkStore
) -> list[Link]:
    """The links of the issue in every bound org, under its key and the keys it moved from."""
    found = []
    for binding in bindings:
        for key in delivery.link_keys:
            link = await links.get(delivery.tenant_id, binding.org, key)
            if link is not None:
                found.append(link)
    return found


def _performer(
    tenant: Tenant, bindings: Sequence[Binding], ports: SyncPorts
) -> Callable[[Need], Any]:
    by_org = {b.org: b for b in bindings}

    async def perform(need: Need) -> Any:
        try:
            if isinstance(need, NeedDoneStatuses):
                return [s.id for s in await _jira(ports).statuses(tenant) if s.is_done]
            if isinstance(need, NeedAccountMapping):
                mapping = await ports.accounts.get(tenant.id, need.org, need.account_id)
                return None if mapping is None else mapping.sentry_user_id
            if isinstance(need, NeedJiraEmail):
                return await _jira(ports).user_email(tenant, need.account_id)
            assert isinstance(need, NeedMembers)
            return await ports.sentry.members_by_email(by_org[need.org], need.email)
        except SentryError as err:
            raise LookupFailed(
                f"looking up Sentry members in org {getattr(need, 'org', '?')} failed: "
                f"{err.detail}",
                transient=err.transient, retry_after=err.retry_after) from None
        except UpstreamError as err:
            # Every failure of a Jira lookup is retried (a 403 or 404 of the e-mail API is
            # "hidden", which the adapter answers with None, not an error).
            retry_after = getattr(err, "retry_after", None)
            raise LookupFailed(f"looking up {_what(need)} in Jira failed: {err.detail}",
                               transient=True, retry_after=retry_after) from None

    return perform


def _jira(ports: SyncPorts) -> JiraApi:
    if ports.jira is None:
        raise UpstreamError("no Jira client is configured")
    return ports.jira


def _what(need: Need) -> str:
    if isinstance(need, NeedDoneStatuses):
        return "the workflow statuses"
    if isinstance(need, NeedJiraEmail):
        return "the assignee's e-mail"
    return "data"


async def _lookup_failed(
    claimed: ClaimedDelivery,
    failure: LookupFailed,
    *,
    owner: str,
    ports: SyncPorts,
    settings: AppSettings,
    jitter: Callable[[], float],
) -> datetime | None:
    now = ports.clock.now()
    attempt = claimed.attempts + 1
    what = f"{failure.detail} (attempt {attempt} of {settings.max_attempts})"
    if failure.transient and attempt < settings.max_attempts:
        delay = retry_delay(attempt, base_seconds=settings.retry_base_seconds,
                            retry_after=failure.retry_after, jitter=jitter())
        due = now + timedelta(seconds=delay)
        decision = Decision(Kind.DELIVERY, Outcome.RETRYING, f"{what}; will retry")
        await ports.journal.record([_entry(claimed, decision, now)])
        await ports.inbox.release(claimed.id, owner, not_before=due)
        return due
    ending = "giving up" if failure.transient else "not retried"
    decision = Decision(Kind.DELIVERY, Outcome.DEAD, f"{what}; {ending}")
    await ports.sync.bury_delivery(claimed, owner, entry=_entry(claimed, decision, now),
                                   error=storable_text(failure.detail), at=now)
    return None


async def processing_failed(
    claimed: ClaimedDelivery,
    detail: str,
    *,
    owner: str,
    ports: SyncPorts,
    settings: AppSettings,
    jitter: Callable[[], float] = random.random,
) -> datetime | None:
    """W9 for a failure nobody foresaw (a bug, an answer no adapter could read): it counts
    toward `max_attempts` like a transient one — `retrying` with backoff, then a dead letter
    of kind `delivery` — so a delivery is never retried forever without a journal entry."""
    failure = LookupFailed(f"processing failed: {detail}", transient=True, retry_after=None)
    return await _lookup_failed(claimed, failure, owner=owner, ports=ports, settings=settings,
                                jitter=jitter)


# ---------------------------------------------------------------- every attempt


def _rekey_record(rekey: Rekey) -> dict[str, Any]:
    return {"tenant_id": rekey.tenant_id, "old_key": rekey.old_key, "new_key": rekey.new_key}


async def _rekey(claimed: ClaimedDelivery, action: StoredAction, *, ports: SyncPorts) -> Finish:
    """W7. Moving links is idempotent: a re-key repeated after a crash moves nothing more."""
    record = action.record
    rekey = Rekey(int(record["tenant_id"]), str(record["old_key"]), str(record["new_key"]))
    moved = await ports.links.rekey(rekey.tenant_id, rekey.old_key, rekey.new_key)
    decision = rekey_decision(rekey, moved_links=moved)
    state = ActionState.DONE if decision.outcome is Outcome.APPLIED else ActionState.SKIPPED
    return Finish(action.id, state, _entry(claimed, decision, ports.clock.now()))


async def _attempt_write(
    claimed: ClaimedDelivery,
    action: StoredAction,
    *,
    ports: SyncPorts,
    settings: AppSettings,
    jitter: Callable[[], float],
    just_read: _JustRead,
) -> Finish | None:
    """The action's outcome to store (None: a failure, stored already)."""
    write = SentryWrite.from_record(action.record)
    binding = just_read.bindings.get(write.org)
    if binding is None or binding.tenant_id != write.tenant_id:
        binding = await ports.bindings.get(write.tenant_id, write.org)
    if binding is None:
        gone = Decision(write.kind, Outcome.IGNORED,
                        f"org {write.org} is no longer bound to the tenant: no write",
                        write.org, write.sentry_issue_id)
        return Finish(action.id, ActionState.SKIPPED, _entry(claimed, gone, ports.clock.now()))
    if write.watermark_key in just_read.marks:
        watermark = just_read.marks[write.watermark_key]
    else:
        marks = await ports.sync.watermarks([write.watermark_key])
        watermark = marks.get(write.watermark_key)
    replaced = False
    try:
        status = (await ports.sentry.get_issue_status(binding, write.sentry_issue_id)
                  if write.skip_if_ignored else None)
        instead = check_write(write, watermark=watermark, sentry_status=status)
        if instead is not None:
            advance = advance_after(write, watermark) if instead.outcome is Outcome.NOOP else None
            return Finish(action.id, ActionState.SKIPPED,
                          _entry(claimed, instead, ports.clock.now()), advance)
        try:
            await ports.sentry.update_issue(binding, write.sentry_issue_id, write.payload)
        except SentryReleaseRefused:
            fallback = write.with_fallback()
            if fallback is None:
                raise
            write, replaced = fallback, True  # W5: resolve without a release, say why
            await ports.sentry.update_issue(binding, write.sentry_issue_id, write.payload)
    except SentryError as err:
        await _write_failed(claimed, action, write, err, replaced=replaced, ports=ports,
                            settings=settings, jitter=jitter)
        return None
    return Finish(action.id, ActionState.DONE, _entry(claimed, applied(write), ports.clock.now()),
                  advance_after(write, watermark))


async def _write_failed(
    claimed: ClaimedDelivery,
    action: StoredAction,
    write: SentryWrite,
    error: SentryError,
    *,
    replaced: bool,
    ports: SyncPorts,
    settings: AppSettings,
    jitter: Callable[[], float],
) -> None:
    now = ports.clock.now()
    attempt = action.attempts + 1
    decision = after_failure(write, error, attempt=attempt, max_attempts=settings.max_attempts)
    record = write.to_record() if replaced else None  # the fallback is what to retry
    entry = _entry(claimed, decision, now)
    if decision.outcome is Outcome.RETRYING:
        delay = retry_delay(attempt, base_seconds=settings.retry_base_seconds,
                            retry_after=error.retry_after, jitter=jitter())
        await ports.sync.postpone(action.id, entry=entry, error=storable_text(error.detail),
                                  not_before=now + timedelta(seconds=delay), record=record)
    else:
        await ports.sync.bury(action.id, entry=entry, error=storable_text(error.detail), at=now,
                              record=record)


def _entry(claimed: ClaimedDelivery, decision: Decision, at: datetime) -> JournalEntry:
    """Every journal entry the worker writes. Its detail may name values from a delivery
    (status names, keys) or from a Jira or Sentry answer (a user id): what no engine can
    hold (NUL, a lone surrogate) is replaced, never a failed write that would retry the
    delivery into a dead letter (docs/security.md, "Malformed identifiers")."""
    return JournalEntry(
        at=at,
        tenant_id=claimed.tenant_id,
        delivery_id=claimed.delivery_id,
        issue_key=claimed.issue_key,
        org=decision.org,
        kind=decision.kind,
        outcome=decision.outcome,
        detail=storable_text(decision.detail),
    )
