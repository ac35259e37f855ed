"""Which window a run reads (pure). See INTERFACE.md "Window when none is given".

A scheduled run starts where the last complete run of the same schedule and sources ended,
less the part of that window that was still settling (``loki.settle``: read again so late
entries are counted), and at most ``run.max_catchup`` back: an older gap is skipped, and the
plan says so, so the digest can. When the window reaches back into the previous run's window
(that run was incomplete, or its end was settling), the plan says which part is read again.
"""

from __future__ import annotations

from triage.errors import UsageError
from triage.records import Schedule, Window, WindowPlan

HOUR_NS = 3600 * 10**9


def plan_window(*, schedule: Schedule, since_ns: int | None, from_ns: int | None, to_ns: int | None, now_ns: int,
                delay_ns: int, catchup_ns: int, last_end_ns: int | None,
                last_run: dict | None = None) -> WindowPlan:
    if from_ns is not None or to_ns is not None:
        if from_ns is None or to_ns is None:
            raise UsageError("--from and --to go together")
        if from_ns >= to_ns:
            raise UsageError("--from must be before --to")
        return WindowPlan(Window(from_ns, to_ns))
    end = now_ns - delay_ns
    if since_ns is not None:
        return WindowPlan(Window(end - since_ns, end))
    if schedule is Schedule.MANUAL:
        return WindowPlan(Window(end - HOUR_NS, end))
    if last_end_ns is None:
        return WindowPlan(Window(end - (HOUR_NS if schedule is Schedule.HOURLY else 24 * HOUR_NS), end))
    start = min(max(last_end_ns, end - catchup_ns), end)
    window = Window(start, end)
    skipped = Window(last_end_ns, start) if last_end_ns < start else None
    reread = reason = None
    if last_run is not None and window.from_ns < min(last_run["to_ns"], window.to_ns):
        reread = Window(window.from_ns, min(last_run["to_ns"], window.to_ns))
        reason = "settling" if last_run["complete"] else "incomplete"
    return WindowPlan(window, skipped, reread, reason)
