"""Counting, coverage and the durable facts detection reads (SQL; mixed into ``StateStore``).

- ``counts``: per cluster, source and minute; pruned after ``state.retention``.
- ``coverage``: per source, the intervals whose entries are all counted and settled.
- ``settle_spans`` + ``settled_entries``: the part of a window that was younger than
  ``loki.settle`` when it was read (Loki still accepts late and out-of-order writes there), and
  the identities of the entries counted in it; the next run re-reads it and counts only the
  rest. The identities are kept only until their span becomes coverage.
- ``loki_minutes`` (``settle18_loki_minutes``): the (cluster, minute) pairs of settling minutes Loki
  counted. A metric query gives no identities, so a later re-count of such a pair (by Loki, or by
  pulling the minute whole) adds what the minute holds now less what ``counts`` holds for it; pairs
  counted by pulling stay counted by identity. Forgotten, like the identities, once the minute settles.
- ``sightings``: per cluster and UTC day, the count and the first and last counted minute;
  kept as long as the cluster, so a comeback after the counts were pruned is still seen as one.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlite_utils import Database

from triage.records import BUCKET_NS, History

DAY_NS = 86400 * 10**9
_CHUNK = 500


class CountingStore:
    db: Database

    # ------------------------------------------------------------------ reads

    def coverage(self, source: str, from_ns: int, to_ns: int) -> list[tuple[int, int]]:
        return self._intervals("coverage", source, from_ns, to_ns)

    def settle_spans(self, source: str, from_ns: int, to_ns: int) -> list[tuple[int, int]]:
        return self._intervals("settle_spans", source, from_ns, to_ns)

    def settled_ids(self, source: str, from_ns: int, to_ns: int) -> set[str]:
        """Identities of the entries already counted in ``[from, to)`` while it was settling."""
        return {row["entry_id"] for row in self.db.query(
            "SELECT entry_id FROM settled_entries WHERE source = ? AND ts_ns >= ? AND ts_ns < ?",
            [source, from_ns, to_ns])}

    def counted_by_count(self, source: str, from_ns: int, to_ns: int) -> set[tuple[str, int]]:
        """(fingerprint, minute) pairs of ``[from, to)`` Loki counted while they were settling."""
        return {(row["fingerprint"], row["bucket_ns"]) for row in self.db.query(
            "SELECT fingerprint, bucket_ns FROM loki_minutes WHERE source = ? AND bucket_ns >= ? AND bucket_ns < ?",
            [source, from_ns - from_ns % BUCKET_NS, to_ns])}

    def counted_in_minutes(self, source: str, minutes: set[int]) -> dict[tuple[str, str, int], int]:
        """What ``counts`` holds for these minutes, per cluster: what a re-count by count starts from."""
        found: dict[tuple[str, str, int], int] = {}
        ordered = sorted(minutes)
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start:start + _CHUNK]
            for row in self.db.query(
                    f"SELECT fingerprint, bucket_ns, count FROM counts WHERE source = ? AND bucket_ns IN "
                    f"({','.join('?' * len(chunk))})", [source, *chunk]):
                found[(row["fingerprint"], source, row["bucket_ns"])] = row["count"]
        return found

    def _intervals(self, table: str, source: str, from_ns: int, to_ns: int) -> list[tuple[int, int]]:
        return [
            (row["from_ns"], row["to_ns"])
            for row in self.db.query(
                f"SELECT from_ns, to_ns FROM {table} WHERE source = ? AND to_ns > ? AND from_ns < ? ORDER BY from_ns",
                [source, from_ns, to_ns],
            )
        ]

    def history(self, fingerprints: Iterable[str], window_from_ns: int, lookback_ns: int) -> dict[str, History]:
        """What the state held about each fingerprint before the window started.

        The last sighting before the window comes from the minute counts where they are still
        held, else from the daily sightings (which outlive the counts); a day that straddles the
        window's start without its counts counts as seen just before the window (the cautious
        reading: no comeback is claimed that the facts cannot show).
        """
        fingerprints = list(fingerprints)
        lookback_from = window_from_ns - lookback_ns
        result: dict[str, History] = {}
        for start in range(0, len(fingerprints), _CHUNK):
            chunk = fingerprints[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            clusters = {
                row["fingerprint"]: row
                for row in self.db.query(
                    f"SELECT fingerprint, first_seen_ns, last_seen_ns, muted_until_ns, mute_reason "
                    f"FROM clusters WHERE fingerprint IN ({marks})", chunk)
            }
            counted = {
                row["fingerprint"]: row
                for row in self.db.query(
                    f"""SELECT fingerprint,
                               MAX(bucket_ns) AS last_bucket,
                               MIN(CASE WHEN bucket_ns >= ? THEN bucket_ns END) AS first_bucket,
                               SUM(CASE WHEN bucket_ns >= ? THEN count ELSE 0 END) AS baseline
                        FROM counts
                        WHERE fingerprint IN ({marks}) AND bucket_ns + ? <= ?
                        GROUP BY fingerprint""",
                    [lookback_from, lookback_from, *chunk, BUCKET_NS, window_from_ns],
                )
            }
            sighted = {
                row["fingerprint"]: row
                for row in self.db.query(
                    f"""SELECT fingerprint,
                               MAX(CASE WHEN last_bucket_ns + ? <= ? THEN last_bucket_ns END) AS last_before,
                               MAX(CASE WHEN first_bucket_ns + ? <= ? AND last_bucket_ns + ? > ? THEN 1 END) AS straddles
                        FROM sightings WHERE fingerprint IN ({marks}) GROUP BY fingerprint""",
                    [BUCKET_NS, window_from_ns, BUCKET_NS, window_from_ns, BUCKET_NS, window_from_ns, *chunk],
                )
            }
            for fingerprint in chunk:
                cluster, counts, seen = clusters.get(fingerprint), counted.get(fingerprint), sighted.get(fingerprint)
                candidates = [counts["last_bucket"] if counts else None, seen["last_before"] if seen else None]
                if counts is None and seen is not None and seen["straddles"]:
                    candidates.append(window_from_ns - BUCKET_NS)
                if counts is None and seen is None and cluster is not None \
                        and cluster["last_seen_ns"] - cluster["last_seen_ns"] % BUCKET_NS + BUCKET_NS <= window_from_ns:
                    # never counted (seen only in windows older than the retention): its last sighting
                    candidates.append(cluster["last_seen_ns"] - cluster["last_seen_ns"] % BUCKET_NS)
                known_before = [c for c in candidates if c is not None]
                result[fingerprint] = History(
                    known=cluster is not None,
                    first_seen_ns=cluster["first_seen_ns"] if cluster else None,
                    last_seen_ns=cluster["last_seen_ns"] if cluster else None,
                    last_bucket_before_ns=max(known_before) if known_before else None,
                    first_bucket_ns=counts["first_bucket"] if counts else None,
                    baseline_count=(counts["baseline"] or 0) if counts else 0,
                    muted_until_ns=cluster["muted_until_ns"] if cluster else None,
                    mute_reason=cluster["mute_reason"] if cluster else None,
                )
        return result

    # ------------------------------------------------------------------ nightly figures

    def total_count(self, from_ns: int, to_ns: int) -> int:
        rows = list(self.db.query("SELECT COALESCE(SUM(count), 0) AS n FROM counts WHERE bucket_ns >= ? AND bucket_ns < ?",
                                  [from_ns, to_ns]))
        return rows[0]["n"]

    def counted_between(self, from_ns: int, to_ns: int, limit: int = 50) -> list[dict]:
        return [dict(row) for row in self.db.query(
            """SELECT c.fingerprint, c.template, c.labels, c.last_seen_ns, SUM(n.count) AS count
               FROM counts n JOIN clusters c USING (fingerprint)
               WHERE n.bucket_ns >= ? AND n.bucket_ns < ? GROUP BY c.fingerprint ORDER BY count DESC LIMIT ?""",
            [from_ns, to_ns, limit])]

    # ------------------------------------------------------------------ writes (inside commit_run's transaction)

    def _save_counts(self, counts: dict[tuple[str, str, int], int], coverage: dict[str, list[tuple[int, int]]],
                     settling: dict[str, list[tuple[int, int]]], entry_ids: dict[str, list[tuple[str, int]]],
                     edges: dict[tuple[str, str, int], tuple[int, int]] | None = None,
                     by_count: set[tuple[str, str, int]] | None = None) -> None:
        # first_ns/last_ns: the first and last nanosecond counted in the minute; a row from before those
        # columns keeps NULL (SQLite's MIN/MAX of a NULL is NULL): its minute is known to the minute only.
        edges = edges or {}
        self.db.conn.executemany(
            """INSERT INTO counts (fingerprint, source, bucket_ns, count, first_ns, last_ns) VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (fingerprint, source, bucket_ns) DO UPDATE SET count = count + excluded.count,
                   first_ns = MIN(first_ns, excluded.first_ns), last_ns = MAX(last_ns, excluded.last_ns)""",
            [(fp, source, bucket, n, *edges.get((fp, source, bucket), (None, None)))
             for (fp, source, bucket), n in counts.items()],
        )
        self._add_sightings(counts)
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO loki_minutes (source, fingerprint, bucket_ns) VALUES (?, ?, ?)",
            [(source, fp, bucket) for fp, source, bucket in sorted(by_count or ())])
        for source, intervals in coverage.items():
            self._add_coverage(source, intervals)
        for source, spans in settling.items():
            self._add_settling(source, spans, entry_ids.get(source, []))

    def _add_sightings(self, counts: dict[tuple[str, str, int], int]) -> None:
        days: dict[tuple[str, int], list[int]] = {}
        for (fingerprint, _, bucket), n in counts.items():
            day = days.setdefault((fingerprint, bucket - bucket % DAY_NS), [0, bucket, bucket])
            day[0] += n
            day[1], day[2] = min(day[1], bucket), max(day[2], bucket)
        self.db.conn.executemany(
            """INSERT INTO sightings (fingerprint, day_ns, count, first_bucket_ns, last_bucket_ns) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (fingerprint, day_ns) DO UPDATE SET count = count + excluded.count,
                   first_bucket_ns = MIN(first_bucket_ns, excluded.first_bucket_ns),
                   last_bucket_ns = MAX(last_bucket_ns, excluded.last_bucket_ns)""",
            [(fp, day, n, first, last) for (fp, day), (n, first, last) in days.items()],
        )

    def _move_loki_minutes(self, old: str, new: str) -> None:
        """A cluster merged into another: its minutes counted by count are the survivor's (as its counts are)."""
        self.db.execute("UPDATE OR IGNORE loki_minutes SET fingerprint = ? WHERE fingerprint = ?", [new, old])
        self.db.execute("DELETE FROM loki_minutes WHERE fingerprint = ?", [old])

    def _move_sightings(self, old: str, new: str) -> None:
        """A cluster merged into another: its sightings follow it."""
        self.db.execute(
            """INSERT INTO sightings (fingerprint, day_ns, count, first_bucket_ns, last_bucket_ns)
               SELECT ?, day_ns, count, first_bucket_ns, last_bucket_ns FROM sightings WHERE fingerprint = ? AND true
               ON CONFLICT (fingerprint, day_ns) DO UPDATE SET count = count + excluded.count,
                   first_bucket_ns = MIN(first_bucket_ns, excluded.first_bucket_ns),
                   last_bucket_ns = MAX(last_bucket_ns, excluded.last_bucket_ns)""", [new, old])
        self.db.execute("DELETE FROM sightings WHERE fingerprint = ?", [old])

    def _add_coverage(self, source: str, intervals: list[tuple[int, int]]) -> None:
        """Mark intervals counted for good; what was settling inside them is settled now."""
        if not intervals:
            return
        self._merge_into("coverage", source, intervals)
        for start, end in merge_intervals(intervals):
            self.db.execute("DELETE FROM settled_entries WHERE source = ? AND ts_ns >= ? AND ts_ns < ?",
                            [source, start, end])
            # a minute is counted by count only while it settles: once covered it is never counted again
            # (whole minutes only: the rest of a minute the coverage cuts may still be read)
            self.db.execute("DELETE FROM loki_minutes WHERE source = ? AND bucket_ns >= ? AND bucket_ns + ? <= ?",
                            [source, start, BUCKET_NS, end])
        low = min(start for start, _ in intervals)
        high = max(end for _, end in intervals)
        spans = self.settle_spans(source, low, high)
        if spans:
            self.db.execute("DELETE FROM settle_spans WHERE source = ? AND to_ns > ? AND from_ns < ?",
                            [source, low, high])
            self.db.conn.executemany(
                "INSERT INTO settle_spans (source, from_ns, to_ns) VALUES (?, ?, ?)",
                [(source, start, end) for start, end in subtract_intervals(spans, intervals)])

    def _add_settling(self, source: str, spans: list[tuple[int, int]], entry_ids: list[tuple[str, int]]) -> None:
        if spans:
            self._merge_into("settle_spans", source, spans)
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO settled_entries (source, entry_id, ts_ns) VALUES (?, ?, ?)",
            [(source, entry_id, ts_ns) for entry_id, ts_ns in entry_ids])

    def _merge_into(self, table: str, source: str, intervals: list[tuple[int, int]]) -> None:
        low = min(start for start, _ in intervals)
        high = max(end for _, end in intervals)
        existing = self._intervals(table, source, low - 1, high + 1)
        merged = merge_intervals(existing + intervals)
        self.db.execute(f"DELETE FROM {table} WHERE source = ? AND to_ns >= ? AND from_ns <= ?", [source, low, high])
        self.db.conn.executemany(
            f"INSERT INTO {table} (source, from_ns, to_ns) VALUES (?, ?, ?)",
            [(source, start, end) for start, end in merged],
        )

    def _prune(self, before_ns: int) -> None:
        """Minute counts, runs, coverage and settling older than the retention go; sightings stay."""
        self.db.execute("DELETE FROM counts WHERE bucket_ns < ?", [before_ns - before_ns % BUCKET_NS])
        self.db.execute("DELETE FROM runs WHERE finished_ns < ?", [before_ns])
        self.db.execute("DELETE FROM coverage WHERE to_ns < ?", [before_ns])
        self.db.execute("DELETE FROM settle_spans WHERE to_ns < ?", [before_ns])
        self.db.execute("DELETE FROM settled_entries WHERE ts_ns < ?", [before_ns])
        self.db.execute("DELETE FROM loki_minutes WHERE bucket_ns < ?", [before_ns - before_ns % BUCKET_NS])


def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def subtract_intervals(intervals: list[tuple[int, int]], remove: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``intervals`` outside every interval of ``remove``."""
    result = []
    cuts = merge_intervals(remove)
    for start, end in intervals:
        for cut_start, cut_end in cuts:
            if cut_end <= start or cut_start >= end:
                continue
            if cut_start > start:
                result.append((start, cut_start))
            start = max(start, cut_end)
            if start >= end:
                break
        if start < end:
            result.append((start, end))
    return result
