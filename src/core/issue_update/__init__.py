"""Handle issue update, the functional core (SPEC W5–W7, outcomes of W9).

The sync of one delivery needs I/O at three moments, so the core is staged; every stage is a
pure function and the shell (the worker) does the I/O between them:

1. **Lookups.** `needed_lookups(delivery, bindings=, links=, lookups=, look_up_email=)`
   names what is missing — the `done` status ids (only when some bound org with links decides
   by status category), and the assignee chain one round at a time: the account mapping per
   org; then, only for orgs without one, when the webhook hides the e-mail and the site may
   look it up (`may_look_up_email`: a webhook site always, Connect with the e-mail scope),
   Jira's e-mail API; then the org's Sentry members with that address. The shell
   performs each `Need` and folds the result in with `Lookups.with_result`; `gather_lookups`
   runs that loop given an async `perform(need)`. Lookups the delivery does not need are never
   asked for (no mapping lookup for a null assignee, no e-mail call when mapped).
2. **Decisions.** `decide(delivery, bindings=, links=, lookups=, watermarks=, look_up_email=)`
   returns `Actions`: the W7 re-keys (first), the decisions already final (no-op, stale,
   ignored, unresolvable — journal entries), the watermarks the no-ops advance, and one
   `SentryWrite` per linked Sentry issue and kind (status, then assignee, per bound org).
   The unresolvable assignee is a decision, never a write: W5 forbids unassigning then.
3. **Every attempt.** `check_write(action, watermark=, sentry_status=)` re-checks the W6
   watermark (and, for `skip_archived`, the Sentry issue's current status, which the shell
   reads right before the write) so a retry never overwrites a newer state. On success the
   shell journals `applied(action)` and stores `advance_after(action, watermark)`; on a
   `SentryReleaseRefused` it sends `action.with_fallback()` (a plain resolve whose reason says
   why); on other errors `after_failure(...)` says `retrying` or `dead`, and `retry_delay(...)`
   how long to wait.

Why staged rather than one function with callbacks: each stage is testable with plain values,
the lookups can be batched or cached by the shell, and the checks that must be repeated right
before each write (watermark, archived status) are separate functions the shell calls again.
Re-keys are applied by the shell before the writes; `decide` already targets the links found
under the old keys (`Delivery.link_keys`), so the shell may load links before or after it.
"""

from core.issue_update.decide import (
    Actions,
    Lookups,
    Need,
    NeedAccountMapping,
    NeedDoneStatuses,
    NeedJiraEmail,
    NeedMembers,
    StatusChange,
    advance_after,
    after_failure,
    applied,
    check_write,
    choose_assignee,
    decide,
    gather_lookups,
    may_look_up_email,
    needed_lookups,
    rekey_decision,
    retry_delay,
    status_change,
)
from core.issue_update.delivery import Assignee, ChangeItem, Delivery, parse_jira_time
from core.issue_update.watermarks import advanced, stale_reason
from core.model.sync import (
    RELEASE_FALLBACK_REASON,
    Decision,
    Kind,
    Outcome,
    Rekey,
    SentryWrite,
    Watermark,
    WatermarkAdvance,
    WatermarkKey,
)

__all__ = [
    "RELEASE_FALLBACK_REASON",
    "Actions",
    "Assignee",
    "ChangeItem",
    "Decision",
    "Delivery",
    "Kind",
    "Lookups",
    "Need",
    "NeedAccountMapping",
    "NeedDoneStatuses",
    "NeedJiraEmail",
    "NeedMembers",
    "Outcome",
    "Rekey",
    "SentryWrite",
    "StatusChange",
    "Watermark",
    "WatermarkAdvance",
    "WatermarkKey",
    "advance_after",
    "advanced",
    "after_failure",
    "applied",
    "check_write",
    "choose_assignee",
    "decide",
    "gather_lookups",
    "may_look_up_email",
    "needed_lookups",
    "parse_jira_time",
    "rekey_decision",
    "retry_delay",
    "stale_reason",
    "status_change",
]
