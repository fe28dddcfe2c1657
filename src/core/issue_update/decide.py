"""The functional core of "handle issue update" (W5–W7, W9 outcomes). No ports, no I/O."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from core.admin.validation import ISSUE_KEY, MAX_ISSUE_KEY_LENGTH
from core.issue_update.delivery import ASSIGNEE_FIELD, STATUS_FIELD, Assignee, ChangeItem, Delivery
from core.issue_update.watermarks import advanced, stale_reason
from core.model.bindings import Binding, Link, StatusRule
from core.model.errors import SentryError
from core.model.sentry import (
    IGNORED,
    RESOLVE,
    UNASSIGN,
    UNRESOLVE,
    SentryMember,
    assign_payload,
    is_release_based,
    members_with_verified_email,
    resolve_payload,
)
from core.model.sync import (
    Decision,
    Kind,
    Outcome,
    Rekey,
    SentryWrite,
    Watermark,
    WatermarkAdvance,
    WatermarkKey,
)
from core.model.tenant import Tenant

# ---------------------------------------------------------------- lookups (stage 1)


def may_look_up_email(site: Tenant, *, use_email_scope: bool) -> bool:
    """W5, §8.1: may the worker ask the site's Jira for an e-mail the webhook left out?

    A Connect app may only with the e-mail scope (`SENTRY_JIRA_USE_EMAIL_SCOPE`). A webhook
    site (Cloud API token, Data Center PAT) calls Jira as a user, who reads any e-mail its
    owner lets be seen: always (a 403 / 404 is "hidden", not a failure). Decided by the
    site's credential, the one thing that tells the two apart.
    """
    return site.site_credential is not None or use_email_scope


@attrs.frozen
class NeedDoneStatuses:
    """The ids of the tenant's Jira statuses whose category is `done` (cached per tenant).
    Result: an iterable of status ids."""


@attrs.frozen
class NeedAccountMapping:
    """The account mapping of `account_id` in `org` (§A). Result: a Sentry user id or None."""

    org: str
    account_id: str


@attrs.frozen
class NeedJiraEmail:
    """Jira's e-mail lookup for `account_id` (only asked when `may_look_up_email` says so).
    Result: the address, or None when Jira hides it (403 / 404 are "hidden", not failures)."""

    account_id: str


@attrs.frozen
class NeedMembers:
    """The members of `org` found by e-mail (W8). Result: an iterable of SentryMember."""

    org: str
    email: str


Need = NeedDoneStatuses | NeedAccountMapping | NeedJiraEmail | NeedMembers


@attrs.frozen
class Lookups:
    """The results of the lookups performed so far; a key that is absent was not looked up."""

    done_status_ids: frozenset[str] | None = None
    account_mappings: Mapping[str, str | None] = attrs.field(factory=dict, hash=False)
    jira_email: str | None = None
    jira_email_known: bool = False
    members: Mapping[tuple[str, str], tuple[SentryMember, ...]] = attrs.field(
        factory=dict, hash=False
    )

    def with_result(self, need: Need, result: Any) -> Lookups:
        """These lookups plus the result of `need`."""
        if isinstance(need, NeedDoneStatuses):
            return attrs.evolve(self, done_status_ids=frozenset(str(i) for i in result))
        if isinstance(need, NeedAccountMapping):
            mapped = None if result is None else str(result)
            return attrs.evolve(self, account_mappings={**self.account_mappings, need.org: mapped})
        if isinstance(need, NeedJiraEmail):
            email = result.strip() if isinstance(result, str) and result.strip() else None
            return attrs.evolve(self, jira_email=email, jira_email_known=True)
        members = tuple(result)
        if not all(isinstance(m, SentryMember) for m in members):
            raise TypeError("members lookups return SentryMember values")
        key = (need.org, need.email.lower())
        return attrs.evolve(self, members={**self.members, key: members})


def needed_lookups(
    delivery: Delivery,
    *,
    bindings: Sequence[Binding],
    links: Iterable[Link],
    lookups: Lookups,
    look_up_email: bool,
) -> list[Need]:
    """What the shell must look up (next) before `decide` can run; [] when nothing.

    The assignee chain needs rounds: the account mapping first, then (only for orgs without
    one, when the webhook hides the e-mail and `look_up_email` is on) Jira's e-mail API, then
    the org's members with that address. Call again after adding each round's results.
    """
    needs: list[Need] = []
    # Only orgs with linked Sentry issues need anything: nothing is looked up for the rest.
    targets = [(b, ids) for b, ids in _targets(delivery, bindings, links) if ids]
    status = delivery.last_item(STATUS_FIELD)
    if (
        status is not None
        and lookups.done_status_ids is None
        and any(b.sync_status and _rule_of(b, delivery) is None for b, _ in targets)
    ):
        needs.append(NeedDoneStatuses())
    assignee = delivery.assignee
    if delivery.last_item(ASSIGNEE_FIELD) is None or assignee is None:
        return needs
    for binding, _ in targets:
        if not binding.sync_assignee:
            continue
        if assignee.account_id is not None:
            if binding.org not in lookups.account_mappings:
                needs.append(NeedAccountMapping(binding.org, assignee.account_id))
                continue
            if lookups.account_mappings[binding.org] is not None:
                continue
        email, _ = _assignee_email(assignee, lookups, look_up_email)
        if email is _UNKNOWN:
            assert assignee.account_id is not None
            need: Need = NeedJiraEmail(assignee.account_id)
            if need not in needs:
                needs.append(need)
        elif isinstance(email, str) and (binding.org, email.lower()) not in lookups.members:
            needs.append(NeedMembers(binding.org, email))
    return needs


async def gather_lookups(
    delivery: Delivery,
    *,
    bindings: Sequence[Binding],
    links: Iterable[Link],
    look_up_email: bool,
    perform: Callable[[Need], Awaitable[Any]],
    lookups: Lookups | None = None,
) -> Lookups:
    """Run `needed_lookups` rounds through `perform` (the shell's I/O) until nothing is missing.
    An exception from `perform` propagates (a transient failure retries the delivery)."""
    links = tuple(links)
    known = lookups or Lookups()
    for _ in range(8):  # the chain has at most three rounds; this only guards a broken perform
        needs = needed_lookups(
            delivery,
            bindings=bindings,
            links=links,
            lookups=known,
            look_up_email=look_up_email,
        )
        if not needs:
            return known
        for need in needs:
            known = known.with_result(need, await perform(need))
    raise RuntimeError("lookups did not converge")


# ---------------------------------------------------------------- decisions (stage 2)


class StatusChange(enum.StrEnum):
    RESOLVE = "resolve"
    UNRESOLVE = "unresolve"


@attrs.frozen
class Actions:
    """What `decide` asks the shell to do, in order: re-key the links, record the decisions
    made already (no-op, stale, ignored, unresolvable), advance the watermarks of the no-ops,
    then perform the writes (each re-checked with `check_write` right before every attempt)."""

    rekeys: tuple[Rekey, ...] = ()
    decisions: tuple[Decision, ...] = ()
    advances: tuple[WatermarkAdvance, ...] = ()
    writes: tuple[SentryWrite, ...] = ()


def decide(
    delivery: Delivery,
    *,
    bindings: Sequence[Binding],
    links: Iterable[Link],
    lookups: Lookups,
    watermarks: Mapping[WatermarkKey, Watermark],
    look_up_email: bool,
) -> Actions:
    """W5–W7 for one delivery: re-key first, then per bound org status, then assignee, for
    every Sentry issue linked to the issue (under its current key or a key it moved from)."""
    if any(b.tenant_id != delivery.tenant_id for b in bindings):
        raise ValueError("every binding must belong to the delivery's tenant")
    links = tuple(links)
    missing = needed_lookups(
        delivery, bindings=bindings, links=links, lookups=lookups, look_up_email=look_up_email
    )
    if missing:
        raise ValueError(f"lookups missing: {missing}")

    rekeys, refused = _rekeys(delivery)
    status = delivery.last_item(STATUS_FIELD)
    assignee = delivery.last_item(ASSIGNEE_FIELD)
    decisions: list[Decision] = list(refused)
    advances: list[WatermarkAdvance] = []
    writes: list[SentryWrite] = []
    if status is None and assignee is None:
        return Actions(rekeys=rekeys, decisions=tuple(decisions))
    if not bindings:
        decisions.append(
            Decision(Kind.DELIVERY, Outcome.IGNORED, "the tenant is bound to no Sentry org")
        )
    for binding, sentry_ids in _targets(delivery, bindings, links):
        if not sentry_ids:
            decisions.append(
                Decision(
                    Kind.DELIVERY,
                    Outcome.IGNORED,
                    f"no Sentry issue is linked to {delivery.issue_key}",
                    org=binding.org,
                )
            )
            continue
        if status is not None:
            _decide_status(
                delivery,
                binding,
                sentry_ids,
                status,
                lookups,
                watermarks,
                decisions,
                advances,
                writes,
            )
        if assignee is not None:
            _decide_assignee(
                delivery,
                binding,
                sentry_ids,
                lookups,
                watermarks,
                look_up_email,
                decisions,
                advances,
                writes,
            )
    return Actions(
        rekeys=rekeys, decisions=tuple(decisions), advances=tuple(advances), writes=tuple(writes)
    )


def status_change(
    binding: Binding,
    project_id: str | None,
    item: ChangeItem,
    done_status_ids: frozenset[str] | None,
) -> tuple[StatusChange | None, str]:
    """W5 status: the binding's status map for the project alone decides; otherwise the move
    into or out of the `done` category does. Returns the change (None: no-op) and why."""
    moved = (
        f"Jira status {_status_name(item.from_id, item.from_string)} → "
        f"{_status_name(item.to_id, item.to_string)}"
    )
    rule = binding.status_map.get(project_id) if project_id is not None else None
    if rule is not None:
        if item.to_id is not None and item.to_id in rule.resolve:
            return (
                StatusChange.RESOLVE,
                f"{moved}: resolves by the status map of project {project_id}",
            )
        if item.to_id is not None and item.to_id in rule.unresolve:
            return (
                StatusChange.UNRESOLVE,
                f"{moved}: unresolves by the status map of project {project_id}",
            )
        return (
            None,
            f"{moved}: neither resolves nor unresolves in the status map of project {project_id}",
        )
    if done_status_ids is None:
        raise ValueError("the done status ids were not looked up")
    was_done = item.from_id is not None and item.from_id in done_status_ids
    is_done = item.to_id is not None and item.to_id in done_status_ids
    if is_done and not was_done:
        return StatusChange.RESOLVE, f"{moved}: entered the done category"
    if was_done and not is_done:
        return StatusChange.UNRESOLVE, f"{moved}: left the done category"
    where = "inside" if is_done else "outside"
    return None, f"{moved}: stays {where} the done category"


def choose_assignee(
    assignee: Assignee | None, org: str, lookups: Lookups, *, look_up_email: bool
) -> tuple[dict[str, Any] | None, str]:
    """W5 assignee: the PUT body (None: unresolvable, no change) and why. Chain: null → unassign;
    account mapping; e-mail from the webhook; Jira's e-mail API (only with `look_up_email`,
    see `may_look_up_email`); exactly one
    Sentry member with that *verified* e-mail (case-insensitive)."""
    if assignee is None:
        return dict(UNASSIGN), "the Jira issue has no assignee: unassign"
    who = (
        f"Jira account {assignee.account_id}"
        if assignee.account_id is not None
        else "the Jira assignee"
    )
    if assignee.account_id is not None:
        mapped = lookups.account_mappings.get(org)
        if mapped is not None:
            return assign_payload(mapped), f"{who} is mapped to Sentry user {mapped}: assign"
    email, source = _assignee_email(assignee, lookups, look_up_email)
    if email is _UNKNOWN:
        raise ValueError("the assignee's e-mail was not looked up")
    if not isinstance(email, str):
        why = "" if look_up_email else " and the e-mail scope is off"
        return None, f"{who} has no account mapping, Jira hides the e-mail{why}: no change"
    found = members_with_verified_email(lookups.members[(org, email.lower())], email)
    if len(found) == 1:
        return (
            assign_payload(found[0]),
            f"the e-mail of {who} ({source}) is the verified e-mail of Sentry user "
            f"{found[0]}: assign",
        )
    if not found:
        return (
            None,
            f"the e-mail of {who} ({source}) is the verified e-mail of no Sentry member: no change",
        )
    return (
        None,
        f"the e-mail of {who} ({source}) is the verified e-mail of {len(found)} Sentry "
        "members: no change",
    )


# ---------------------------------------------------------------- every attempt (stage 3)


def check_write(
    action: SentryWrite, *, watermark: Watermark | None, sentry_status: str | None = None
) -> Decision | None:
    """Right before each attempt (retries and admin retries too): None when the write may go
    ahead, else the decision that replaces it — stale under the current watermark (W6), or a
    no-op when `skip_archived` and the Sentry issue is `ignored` (pass its current status as
    `sentry_status`, read only when `action.skip_if_ignored`)."""
    reason = stale_reason(action.kind, action.updated, action.delivery_id, watermark)
    if reason is not None:
        return _about(action, Outcome.STALE, reason)
    if action.skip_if_ignored and sentry_status == IGNORED:
        return _about(
            action,
            Outcome.NOOP,
            "the Sentry issue is archived (ignored) and skip_archived is on: no status write",
        )
    return None


def applied(action: SentryWrite) -> Decision:
    """The journal entry of a write Sentry accepted."""
    return _about(action, Outcome.APPLIED, action.reason)


def advance_after(action: SentryWrite, watermark: Watermark | None) -> WatermarkAdvance | None:
    """The watermark to store after the write was applied or found a no-op (None: keep it)."""
    moved = advanced(watermark, action.updated, action.delivery_id)
    return None if moved is None else WatermarkAdvance(action.watermark_key, moved)


def after_failure(
    action: SentryWrite, error: SentryError, *, attempt: int, max_attempts: int
) -> Decision:
    """W9: `retrying` while the error is transient and attempts remain, else `dead`. (A
    `SentryReleaseRefused` with `action.with_fallback()` available is not a failure: the shell
    sends the fallback instead.)"""
    what = f"{error.detail} (attempt {attempt} of {max_attempts})"
    if error.transient and attempt < max_attempts:
        return _about(action, Outcome.RETRYING, f"{what}; will retry")
    if error.transient:
        return _about(action, Outcome.DEAD, f"{what}; giving up")
    return _about(action, Outcome.DEAD, f"{what}; not retried")


def retry_delay(
    attempt: int,
    *,
    base_seconds: float,
    retry_after: float | None,
    jitter: float,
    cap_seconds: float = 3600.0,
) -> float:
    """W9 backoff before attempt `attempt + 1`: base·2^(attempt−1), scaled by a jitter factor in
    [0.5, 1.5) (`jitter` in [0, 1)), capped at `cap_seconds`, never shorter than Sentry's
    `Retry-After`."""
    exponent = min(max(attempt - 1, 0), 32)
    factor = 0.5 + min(max(jitter, 0.0), 1.0)
    delay = min(base_seconds * (2.0**exponent) * factor, cap_seconds)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap_seconds))
    return delay


def rekey_decision(rekey: Rekey, *, moved_links: int) -> Decision:
    """The journal entry of a W7 re-key once the shell applied it."""
    if moved_links == 0:
        return Decision(
            Kind.KEY, Outcome.NOOP, f"issue moved {rekey.old_key} → {rekey.new_key}; no links"
        )
    return Decision(
        Kind.KEY,
        Outcome.APPLIED,
        f"issue moved {rekey.old_key} → {rekey.new_key}; {moved_links} link(s) re-keyed",
    )


# ---------------------------------------------------------------- internals


def is_issue_key(value: str) -> bool:
    """§A / W7: `^[A-Z][A-Z0-9_]*-\\d+$` (ASCII digits only), as links are keyed."""
    return len(value) <= MAX_ISSUE_KEY_LENGTH and ISSUE_KEY.fullmatch(value) is not None


def _rekeys(delivery: Delivery) -> tuple[tuple[Rekey, ...], tuple[Decision, ...]]:
    """W7: the re-keys to apply, and an `ignored` decision for each whose new key is not an
    issue key (the links stay; the refused value is not repeated: it is unchecked input)."""
    rekeys: list[Rekey] = []
    refused: list[Decision] = []
    for old, new in delivery.rekeys:
        if is_issue_key(new):
            rekeys.append(Rekey(delivery.tenant_id, old, new))
            continue
        where = f"from {old}" if is_issue_key(old) else "from its previous key"
        refused.append(
            Decision(
                Kind.KEY,
                Outcome.IGNORED,
                f"issue moved {where} to a value that is not a valid Jira issue key; "
                "its links were not re-keyed",
            )
        )
    return tuple(rekeys), tuple(refused)


class _Unknown(enum.Enum):
    UNKNOWN = "unknown"


_UNKNOWN = _Unknown.UNKNOWN


def _targets(
    delivery: Delivery, bindings: Sequence[Binding], links: Iterable[Link]
) -> list[tuple[Binding, tuple[str, ...]]]:
    """Each bound org with the Sentry issues linked to this issue in it (after the re-key)."""
    keys = delivery.link_keys
    order = {key: n for n, key in enumerate(keys)}
    relevant = sorted(
        (
            link
            for link in links
            if link.tenant_id == delivery.tenant_id and link.issue_key in order
        ),
        key=lambda link: order[link.issue_key],
    )
    targets = []
    for binding in bindings:
        ids: list[str] = []
        for link in relevant:
            if link.org == binding.org:
                ids.extend(i for i in link.sentry_issue_ids if i not in ids)
        targets.append((binding, tuple(ids)))
    return targets


def _rule_of(binding: Binding, delivery: Delivery) -> StatusRule | None:
    if delivery.project_id is None:
        return None
    return binding.status_map.get(delivery.project_id)


def _assignee_email(
    assignee: Assignee, lookups: Lookups, look_up_email: bool
) -> tuple[str | _Unknown | None, str]:
    """The assignee's e-mail and where it came from; _UNKNOWN when Jira must be asked first."""
    if assignee.email is not None:
        return assignee.email, "from the webhook"
    if not look_up_email or assignee.account_id is None:
        return None, ""
    if not lookups.jira_email_known:
        return _UNKNOWN, ""
    return lookups.jira_email, "from Jira's e-mail API"


def _decide_status(
    delivery: Delivery,
    binding: Binding,
    sentry_ids: tuple[str, ...],
    item: ChangeItem,
    lookups: Lookups,
    watermarks: Mapping[WatermarkKey, Watermark],
    decisions: list[Decision],
    advances: list[WatermarkAdvance],
    writes: list[SentryWrite],
) -> None:
    if not binding.sync_status:
        decisions.append(
            Decision(Kind.STATUS, Outcome.IGNORED, "status sync is off", org=binding.org)
        )
        return
    change, reason = status_change(binding, delivery.project_id, item, lookups.done_status_ids)
    payload: dict[str, Any] | None = None
    fallback: dict[str, Any] | None = None
    if change is StatusChange.RESOLVE:
        payload = resolve_payload(binding.resolution_strategy)
        fallback = dict(RESOLVE) if is_release_based(payload) else None
        reason = f"{reason}: resolve ({binding.resolution_strategy.value})"
    elif change is StatusChange.UNRESOLVE:
        payload = dict(UNRESOLVE)
        reason = f"{reason}: unresolve"
    _decide_kind(
        delivery,
        binding,
        sentry_ids,
        Kind.STATUS,
        payload,
        reason,
        fallback,
        binding.skip_archived,
        watermarks,
        decisions,
        advances,
        writes,
        resolvable=True,
    )


def _decide_assignee(
    delivery: Delivery,
    binding: Binding,
    sentry_ids: tuple[str, ...],
    lookups: Lookups,
    watermarks: Mapping[WatermarkKey, Watermark],
    look_up_email: bool,
    decisions: list[Decision],
    advances: list[WatermarkAdvance],
    writes: list[SentryWrite],
) -> None:
    if not binding.sync_assignee:
        decisions.append(
            Decision(Kind.ASSIGNEE, Outcome.IGNORED, "assignee sync is off", org=binding.org)
        )
        return
    payload, reason = choose_assignee(
        delivery.assignee, binding.org, lookups, look_up_email=look_up_email
    )
    _decide_kind(
        delivery,
        binding,
        sentry_ids,
        Kind.ASSIGNEE,
        payload,
        reason,
        None,
        False,
        watermarks,
        decisions,
        advances,
        writes,
        resolvable=payload is not None,
    )


def _decide_kind(
    delivery: Delivery,
    binding: Binding,
    sentry_ids: tuple[str, ...],
    kind: Kind,
    payload: dict[str, Any] | None,
    reason: str,
    fallback: dict[str, Any] | None,
    skip_if_ignored: bool,
    watermarks: Mapping[WatermarkKey, Watermark],
    decisions: list[Decision],
    advances: list[WatermarkAdvance],
    writes: list[SentryWrite],
    *,
    resolvable: bool,
) -> None:
    """One org, one kind: stale, no-op, unresolvable, or one write per linked Sentry issue."""
    key = WatermarkKey(delivery.tenant_id, delivery.issue_id, binding.org, kind)
    watermark = watermarks.get(key)
    stale = stale_reason(kind, delivery.updated, delivery.id, watermark)
    for sentry_id in sentry_ids:
        if stale is not None:
            decisions.append(Decision(kind, Outcome.STALE, stale, binding.org, sentry_id))
        elif not resolvable:
            decisions.append(Decision(kind, Outcome.UNRESOLVABLE, reason, binding.org, sentry_id))
        elif payload is None:
            decisions.append(Decision(kind, Outcome.NOOP, reason, binding.org, sentry_id))
        else:
            writes.append(
                SentryWrite(
                    tenant_id=delivery.tenant_id,
                    delivery_id=delivery.id,
                    issue_id=delivery.issue_id,
                    issue_key=delivery.issue_key,
                    org=binding.org,
                    sentry_issue_id=sentry_id,
                    kind=kind,
                    payload=dict(payload),
                    reason=reason,
                    updated=delivery.updated,
                    fallback=None if fallback is None else dict(fallback),
                    skip_if_ignored=skip_if_ignored,
                )
            )
    if stale is None and resolvable and payload is None:
        moved = advanced(watermark, delivery.updated, delivery.id)
        if moved is not None:
            advances.append(WatermarkAdvance(key, moved))


def _about(action: SentryWrite, outcome: Outcome, reason: str) -> Decision:
    return Decision(action.kind, outcome, reason, action.org, action.sentry_issue_id)


def _status_name(status_id: str | None, name: str | None) -> str:
    if name and status_id:
        return f"{name} ({status_id})"
    return name or status_id or "none"
