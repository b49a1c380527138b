"""Retention as the settings give it: how long each housekeeping table keeps its rows.

The pruning itself is a use case (`bot.service.retention`), run by the scheduler (`bot.jobs`).
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.retention import Housekeeping


@dataclass(frozen=True, slots=True)
class Retention:
    """How many days each housekeeping table keeps its rows; None keeps them forever.
    From the settings (`Settings.retention`), where the defaults and their limits live."""

    request_keys: int | None
    outbox: int | None
    job_runs: int | None
    audit: int | None

    def days(self, what: Housekeeping) -> int | None:
        """Days past which `what`'s rows go. Dashboard sign-outs are no setting: they go a day
        after the sessions they end have expired. The day is for clocks: the pruning replica's
        may run ahead of the one a signed-out copy of the cookie is shown to, and that copy
        must not let in again for the minutes between."""
        return {
            Housekeeping.REQUEST_KEYS: self.request_keys,
            Housekeeping.OUTBOX: self.outbox,
            Housekeeping.JOB_RUNS: self.job_runs,
            Housekeeping.AUDIT: self.audit,
            Housekeeping.SIGN_OUTS: 1,
        }[what]

    def describe(self) -> str:
        """One line for `leadrouter jobs`."""
        return "delete " + ", ".join(
            ONCE_EXPIRED[what]
            if what in ONCE_EXPIRED
            else f"{what} after {days} days{_SPARED.get(what, '')}"
            if days is not None
            else f"{what}: kept forever"
            for what, days in ((what, self.days(what)) for what in Housekeeping)
        )


# Tables whose rows go once what they describe has expired, as the log and `jobs` say it.
ONCE_EXPIRED = {Housekeeping.SIGN_OUTS: "dashboard sign-outs a day after their session has expired"}


# What an admin could not guess from the ages alone.
_SPARED = {
    Housekeeping.JOB_RUNS: " (each job's latest kept)",
    Housekeeping.AUDIT: " (never those of a lead still open)",
}
