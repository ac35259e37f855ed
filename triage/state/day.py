"""Read-only queries of a day in the state, for the nightly digest's "the day".

The nightly run classifies its own 24 h window, and by then the hourly runs have already made
today's new problems known and opened today's spike episodes. So "new today" and "spiking today"
come from the episodes the day's runs opened, not from this run's statuses.
"""

from __future__ import annotations

import json

from triage.state.db import StateStore


def episodes_opened(state: StateStore, from_ns: int, to_ns: int) -> list[dict]:
    """Episodes opened by the runs whose window overlaps the day ``[from_ns, to_ns)``, with their cluster's
    template, labels and samples, the schedule of the run that opened them, and the newest summary title
    cached for them. A run's window says which day it reported on (its clock may be later: a catch-up)."""
    rows = state.db.query(
        """SELECT e.fingerprint, e.kind, e.opened_ns, r.schedule, r.from_ns AS run_from_ns, r.to_ns AS run_to_ns, c.template, c.labels, c.samples,
                  (SELECT s.title FROM summaries s WHERE s.fingerprint = e.fingerprint
                   ORDER BY s.created_ns DESC LIMIT 1) AS title
           FROM episodes e JOIN clusters c USING (fingerprint) JOIN runs r USING (run_id)
           WHERE r.to_ns > ? AND r.from_ns < ? AND r.dry_run = 0
           ORDER BY e.opened_ns, e.episode_id""", [from_ns, to_ns])
    result = []
    for row in rows:
        row = dict(row)
        row["labels"] = json.loads(row["labels"] or "{}")
        row["samples"] = json.loads(row["samples"] or "[]")
        result.append(row)
    return result


def runs_between(state: StateStore, from_ns: int, to_ns: int) -> list[dict]:
    """The runs (not dry runs) that finished in ``[from_ns, to_ns]``, oldest first."""
    return [dict(row) for row in state.db.query(
        """SELECT run_id, schedule, from_ns, to_ns, finished_ns, exit_code, complete, lines, clusters
           FROM runs WHERE finished_ns >= ? AND finished_ns <= ? AND dry_run = 0 ORDER BY finished_ns""",
        [from_ns, to_ns])]
