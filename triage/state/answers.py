"""What the state answers for parts of a window earlier runs counted (SQL; mixed into ``StateStore``).

``state/coverplan.py`` decides which minutes qualify; this reads their per-cluster counts, first
and last nanosecond and histogram bins from ``counts``, and the samples kept per cluster, and
writes the samples each run keeps. Samples are redacted entries (the redact stage ran before the
miner saw them), at most one per cluster per slot of the sample grid, kept ``SAMPLES_KEEP_NS``.
"""

from __future__ import annotations

import json

from sqlite_utils import Database

from triage.records import BUCKET_NS, HIST_BINS, Window
from triage.state.coverplan import KeptSample, StatePart

SAMPLES_KEEP_NS = 3 * 86400 * 10**9  # a nightly and its catch-up (run.max_catchup) with room to spare
SAMPLE_CHARS = 8000  # a longer entry is kept cut, with a mark


class AnswerStore:
    db: Database

    def state_parts(self, source: str, window: Window, parts: tuple[Window, ...],
                    bins: int = HIST_BINS) -> dict[str, StatePart]:
        """Per cluster, what ``counts`` holds for ``parts`` (minute-aligned, inside the window): the count,
        the first and last nanosecond counted, and the histogram bins over ``window``. A minute without
        first/last (written before the columns, or counted by Loki) gives them to the minute: the exact
        plan fetches such minutes (``minutes_without_edges``); only a window counted in Loki takes them."""
        found: dict[str, StatePart] = {}
        duration = max(window.duration_ns, 1)
        for part in parts:
            for row in self.db.query(
                f"""SELECT n.fingerprint, (n.bucket_ns - ?) * {bins} / ? AS bin, SUM(n.count) AS count,
                           MIN(COALESCE(n.first_ns, n.bucket_ns)) AS first_ns,
                           MAX(COALESCE(n.last_ns, n.bucket_ns + {BUCKET_NS - 1})) AS last_ns,
                           c.template, c.pattern, c.labels, c.group_key
                    FROM counts n JOIN clusters c USING (fingerprint)
                    WHERE n.source = ? AND n.bucket_ns >= ? AND n.bucket_ns < ? AND n.count > 0
                    GROUP BY n.fingerprint, bin""",
                [window.from_ns, duration, source, part.from_ns, part.to_ns],
            ):
                part_of = found.get(row["fingerprint"])
                if part_of is None:
                    part_of = found[row["fingerprint"]] = StatePart(
                        row["fingerprint"], row["template"], json.loads(row["labels"] or "{}"),
                        tuple(json.loads(row["group_key"] or "[]")), first_ns=row["first_ns"],
                        last_ns=row["last_ns"], hist=[0] * bins, pattern=row["pattern"] or "")
                part_of.count += row["count"]
                part_of.first_ns = min(part_of.first_ns, row["first_ns"])
                part_of.last_ns = max(part_of.last_ns, row["last_ns"])
                part_of.hist[min(max(row["bin"], 0), bins - 1)] += row["count"]
        return found

    def minutes_without_edges(self, source: str, parts: tuple[Window, ...]) -> list[int]:
        """Minutes in ``parts`` whose counts have no first/last nanosecond (written before the columns)."""
        return [row["bucket_ns"] for part in parts for row in self.db.query(
            "SELECT DISTINCT bucket_ns FROM counts WHERE source = ? AND bucket_ns >= ? AND bucket_ns < ? "
            "AND (first_ns IS NULL OR last_ns IS NULL)", [source, part.from_ns, part.to_ns])]

    def kept_samples(self, source: str, window: Window, fingerprints: set[str]) -> dict[str, list[KeptSample]]:
        """The samples kept for these clusters in the window, oldest first (a few per cluster per hour)."""
        result: dict[str, list[KeptSample]] = {}
        if not fingerprints:
            return result
        for row in self.db.query(
            "SELECT fingerprint, ts_ns, line, message, namespace, app, pod FROM samples "
            "WHERE source = ? AND ts_ns >= ? AND ts_ns < ? ORDER BY fingerprint, ts_ns",
            [source, window.from_ns, window.to_ns],
        ):
            if row["fingerprint"] in fingerprints:
                result.setdefault(row["fingerprint"], []).append(KeptSample(**dict(row)))
        return result

    def runs_overlapping(self, parts: tuple[Window, ...], before_ns: int) -> int:
        """How many finished runs (not dry runs) read some of ``parts``: what the digest credits."""
        if not parts:
            return 0
        rows = self.db.query(
            "SELECT COUNT(*) AS n FROM runs WHERE dry_run = 0 AND from_ns < ? AND to_ns > ? AND finished_ns <= ?",
            [parts[-1].to_ns, parts[0].from_ns, before_ns])
        return next(iter(rows))["n"]

    # ------------------------------------------------------------------ writes (inside commit_run's transaction)

    def _save_samples(self, samples: dict[tuple[str, str, int], KeptSample], prune_before_ns: int) -> None:
        self.db.conn.executemany(
            """INSERT INTO samples (source, fingerprint, slot_ns, ts_ns, line, message, namespace, app, pod)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (source, fingerprint, slot_ns) DO UPDATE SET ts_ns = excluded.ts_ns, line = excluded.line,
                   message = excluded.message, namespace = excluded.namespace, app = excluded.app, pod = excluded.pod
               WHERE excluded.ts_ns < samples.ts_ns""",
            [(source, fp, slot, s.ts_ns, _cut(s.line), _cut(s.message), s.namespace, s.app, s.pod)
             for (source, fp, slot), s in samples.items()])
        self.db.execute("DELETE FROM samples WHERE ts_ns < ?", [prune_before_ns])

    def _move_samples(self, old: str, new: str) -> None:
        """A cluster merged into another: its samples follow it (where the survivor has none in that slot)."""
        self.db.execute("UPDATE OR IGNORE samples SET fingerprint = ? WHERE fingerprint = ?", [new, old])
        self.db.execute("DELETE FROM samples WHERE fingerprint = ?", [old])


def _cut(text: str) -> str:
    return text if len(text) <= SAMPLE_CHARS else text[:SAMPLE_CHARS - 1] + "…"
