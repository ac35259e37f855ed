"""The state file: the only module that speaks SQL.

One SQLite file in WAL mode, created owner-only. Reads happen at the start of a run; every
write of a run happens in ``commit_run``, one transaction, so a crash at any point leaves the
file as it was before the run.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from triage.errors import StateError
from triage.state.answers import SAMPLES_KEEP_NS, AnswerStore
from triage.state.coverplan import KeptSample
from triage.state.counting import CountingStore, merge_intervals  # noqa: F401  (merge_intervals: re-exported)
from triage.state.files import check_header, connect, create, describe_db_error
from triage.state.ledger import LedgerStore
from triage.state.migrations import migrations


@dataclass(frozen=True, slots=True)
class KnownCluster:
    fingerprint: str
    group: tuple[str, ...]
    labels: dict[str, str]
    template: str
    first_seen_ns: int
    last_seen_ns: int


@dataclass(frozen=True, slots=True)
class ClusterUpdate:
    fingerprint: str
    grouping_version: str
    group: tuple[str, ...]
    labels: dict[str, str]
    template: str
    first_ns: int
    last_ns: int
    count: int
    status: str
    reported_ns: int | None
    samples: tuple[str, ...] = ()
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    schedule: str
    sources: list[str]
    from_ns: int
    to_ns: int
    started_ns: int
    finished_ns: int
    exit_code: int
    complete: bool
    lines: int
    clusters: int
    figures: dict
    settled_ns: int | None = None  # where the part still settling began (None: the whole window settled)


class StateStore(CountingStore, AnswerStore, LedgerStore):
    """Open with ``StateStore.open(path)`` (read-write) or ``StateStore.snapshot(path)`` (dry runs)."""

    def __init__(self, db: Database, path: Path | None):
        self.db = db
        self.path = path

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, path: Path) -> StateStore:
        check_header(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                create(path)
            store = cls(connect(path), path)
            store._migrate()
            return store
        except sqlite3.DatabaseError as err:
            raise StateError(describe_db_error(path, err)) from None
        except OSError as err:
            raise StateError(f"state {path}: {err.strerror}") from None

    @classmethod
    def snapshot(cls, path: Path) -> StateStore:
        """An in-memory copy of the state (or an empty one): a dry run can never write the file."""
        memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        if path.exists():
            check_header(path)
            try:
                source = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
                source.backup(memory)
                source.close()
            except sqlite3.DatabaseError as err:
                raise StateError(describe_db_error(path, err)) from None
        store = cls(Database(memory), None)
        try:
            store._migrate()
        except sqlite3.DatabaseError as err:
            raise StateError(describe_db_error(path, err)) from None
        return store

    def _migrate(self) -> None:
        known = {m.name for m in migrations._migrations}
        applied = {m.name for m in migrations.applied(self.db)} if self.db["_sqlite_migrations"].exists() else set()
        unknown = applied - known
        if unknown:
            raise StateError(
                f"state {self.path}: written by a newer triage (schema {sorted(unknown)[-1]}); "
                "upgrade triage or point --state elsewhere"
            )
        # A file holding only sqlite-utils' empty bookkeeping table is what a kill during the very
        # first run left behind before creation became atomic: it holds nothing, so it is adopted.
        tables = set(self.db.table_names()) - {"_sqlite_migrations"}
        if not applied and tables and "clusters" not in tables:
            raise StateError(f"state {self.path}: an SQLite file that is not a triage state; refusing to touch it")
        if len(applied) < len(known):
            # every pending migration and its record in one transaction: a kill leaves the old schema or the new
            with self.db.atomic():
                migrations.apply(self.db)

    def close(self) -> None:
        self.db.conn.close()

    def schema_version(self) -> str:
        applied = migrations.applied(self.db)
        return applied[-1].name if applied else "none"

    # ------------------------------------------------------------------ reads

    def meta(self, key: str) -> str | None:
        rows = list(self.db.query("SELECT value FROM meta WHERE key = ?", [key]))
        return rows[0]["value"] if rows else None

    def known_clusters(self, seen_since_ns: int = 0) -> Iterator[KnownCluster]:
        """Clusters last seen since the given time (the retention), oldest first: in a merge the oldest
        id survives. A cluster older than that comes back under its own fingerprint when its lines
        make the same first template, and is a new one otherwise."""
        for row in self.db.query(
            "SELECT fingerprint, group_key, labels, COALESCE(pattern, template) AS template, first_seen_ns, "
            "last_seen_ns FROM clusters WHERE last_seen_ns >= ? ORDER BY first_seen_ns, fingerprint", [seen_since_ns]
        ):
            yield KnownCluster(
                fingerprint=row["fingerprint"],
                group=tuple(json.loads(row["group_key"] or "[]")),
                labels=json.loads(row["labels"] or "{}"),
                template=row["template"],
                first_seen_ns=row["first_seen_ns"],
                last_seen_ns=row["last_seen_ns"],
            )

    def last_complete_run_end(self, schedule: str, sources: list[str]) -> int | None:
        """Where the next scheduled window starts: the end of the newest complete run, less the
        part of it that was still settling (the next run reads that again)."""
        rows = list(self.db.query(
            "SELECT to_ns, settled_ns FROM runs WHERE schedule = ? AND sources = ? AND complete = 1 AND dry_run = 0 "
            "ORDER BY to_ns DESC LIMIT 1",
            [schedule, json.dumps(sorted(sources))],
        ))
        if not rows:
            return None
        return rows[0]["to_ns"] if rows[0]["settled_ns"] is None else min(rows[0]["to_ns"], rows[0]["settled_ns"])

    def last_run(self, schedule: str, sources: list[str]) -> dict | None:
        """The newest run of a schedule and sources, complete or not."""
        rows = list(self.db.query(
            "SELECT from_ns, to_ns, complete, settled_ns FROM runs WHERE schedule = ? AND sources = ? AND dry_run = 0 "
            "ORDER BY finished_ns DESC, to_ns DESC LIMIT 1", [schedule, json.dumps(sorted(sources))]))
        return dict(rows[0]) if rows else None

    def run_count(self) -> int:
        return self.db["runs"].count

    def has_read_run(self) -> bool:
        """Whether any run so far read at least one source to its end (a run whose every source
        failed saw nothing, so it cannot have primed the state)."""
        rows = list(self.db.query(
            "SELECT 1 FROM runs WHERE dry_run = 0 AND (complete = 1 OR json_extract(figures, '$.sources_ok') > 0) "
            "LIMIT 1"))
        return bool(rows)

    # ------------------------------------------------------------------ the one write

    def commit_run(
        self,
        *,
        run: RunRecord,
        clusters: Iterable[ClusterUpdate],
        counts: dict[tuple[str, str, int], int],
        coverage: dict[str, list[tuple[int, int]]],
        grouping_version: str,
        settling: dict[str, list[tuple[int, int]]] | None = None,
        entry_ids: dict[str, list[tuple[str, int]]] | None = None,
        edges: dict[tuple[str, str, int], tuple[int, int]] | None = None,
        samples: dict[tuple[str, str, int], KeptSample] | None = None,
        by_count: set[tuple[str, str, int]] | None = None,
        prune_before_ns: int,
        summaries: dict | None = None,
        aliases: dict[str, str] | None = None,
        episodes: list[tuple[str, str, int | None]] | None = None,
        channels: list[str] | None = None,
        primed: bool = False,
        sent_now: list[str] | None = None,
        rolled_now: set[str] | None = None,
        new_channels_primed: bool = True,
    ) -> None:
        """Everything a run writes, in one transaction: all of it lands or none of it.

        ``episodes`` opened now get a ledger row per channel: 'pending', or 'primed' for a prime
        run; channels in ``sent_now`` (the file, written before this commit) are 'sent' at once,
        or 'rolled_up' for the fingerprints in ``rolled_now`` (in that message's roll-up line only).
        """
        try:
            with self.db.atomic():
                self._upsert_clusters(clusters)
                self._apply_aliases(aliases or {}, run.finished_ns)
                channels = channels or []
                known = self.known_channels()
                fresh = [c for c in channels if c not in known and known]
                if fresh and not new_channels_primed:
                    self._add_channel_rows(fresh, run.finished_ns)
                self._open_episodes(episodes or [], channels, primed, run.run_id, run.finished_ns)
                if sent_now and not primed:
                    self.db.conn.executemany(
                        """UPDATE ledger SET status = 'sent', updated_ns = ? WHERE channel = ? AND status = 'pending'
                           AND episode_id IN (SELECT episode_id FROM episodes WHERE run_id = ?)""",
                        [(run.finished_ns, channel, run.run_id) for channel in sent_now])
                    self.db.conn.executemany(
                        """UPDATE ledger SET status = 'rolled_up' WHERE channel = ? AND episode_id IN
                           (SELECT episode_id FROM episodes WHERE run_id = ? AND fingerprint = ?)""",
                        [(channel, run.run_id, fp) for channel in sent_now for fp in sorted(rolled_now or ())])
                self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('channels', ?)",
                                [json.dumps(sorted(set(known) | set(channels)))])
                self._save_counts(counts, coverage, settling or {}, entry_ids or {}, edges, by_count)
                self._save_samples(samples or {}, max(prune_before_ns, run.finished_ns - SAMPLES_KEEP_NS))
                self.db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('grouping_version', ?)", [grouping_version]
                )
                self.db["runs"].insert({
                    "run_id": run.run_id, "schedule": run.schedule, "sources": json.dumps(sorted(run.sources)),
                    "from_ns": run.from_ns, "to_ns": run.to_ns, "started_ns": run.started_ns,
                    "finished_ns": run.finished_ns, "exit_code": run.exit_code, "complete": int(run.complete),
                    "dry_run": 0, "lines": run.lines, "clusters": run.clusters, "figures": json.dumps(run.figures),
                    "settled_ns": run.settled_ns,
                })
                self._save_summaries(summaries or {}, run.finished_ns)
                self._prune(prune_before_ns)
        except sqlite3.DatabaseError as err:
            raise StateError(describe_db_error(self.path, err)) from None

    def _upsert_clusters(self, clusters: Iterable[ClusterUpdate]) -> None:
        self.db.conn.executemany(
            """INSERT INTO clusters (fingerprint, grouping_version, group_key, labels, template, first_seen_ns,
                                     last_seen_ns, total_count, last_status, last_reported_ns, samples, pattern)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (fingerprint) DO UPDATE SET
                   template = excluded.template,
                   pattern = excluded.pattern,
                   first_seen_ns = MIN(first_seen_ns, excluded.first_seen_ns),
                   last_seen_ns = MAX(last_seen_ns, excluded.last_seen_ns),
                   total_count = total_count + excluded.total_count,
                   last_status = excluded.last_status,
                   last_reported_ns = COALESCE(excluded.last_reported_ns, last_reported_ns),
                   samples = COALESCE(excluded.samples, samples)""",
            [
                (c.fingerprint, c.grouping_version, json.dumps(list(c.group)), json.dumps(c.labels), c.template,
                 c.first_ns, c.last_ns, c.count, c.status, c.reported_ns,
                 json.dumps(list(c.samples)) if c.samples else None, c.pattern)
                for c in clusters
            ],
        )


    # ------------------------------------------------------------------ mutes, listing, pruning

    def set_mute(self, fingerprint: str, until_ns: int | None, reason: str | None) -> bool:
        with self.db.atomic():
            cursor = self.db.execute("UPDATE clusters SET muted_until_ns = ?, mute_reason = ? WHERE fingerprint = ?",
                                     [until_ns, reason, fingerprint])
        return cursor.rowcount > 0

    def list_clusters(self, status: str | None = None) -> list[dict]:
        where, params = ("WHERE last_status = ?", [status]) if status else ("", [])
        return [dict(row) for row in self.db.query(
            f"SELECT fingerprint, last_status, total_count, first_seen_ns, last_seen_ns, muted_until_ns, mute_reason, "
            f"labels, template FROM clusters {where} ORDER BY last_seen_ns DESC", params)]

    def prune_older_than(self, before_ns: int) -> dict[str, int]:
        with self.db.atomic():
            counts = self.db.execute("DELETE FROM counts WHERE bucket_ns < ?", [before_ns]).rowcount
            runs = self.db.execute("DELETE FROM runs WHERE finished_ns < ?", [before_ns]).rowcount
            self.db.execute("DELETE FROM coverage WHERE to_ns < ?", [before_ns])
            self.db.execute("DELETE FROM samples WHERE ts_ns < ?", [before_ns])
            self.db.execute("DELETE FROM loki_minutes WHERE bucket_ns < ?", [before_ns])
            clusters = self.db.execute(
                "DELETE FROM clusters WHERE last_seen_ns < ? AND (muted_until_ns IS NULL OR muted_until_ns < ?)",
                [before_ns, before_ns]).rowcount
            self.db.execute("DELETE FROM summaries WHERE fingerprint NOT IN (SELECT fingerprint FROM clusters)")
            self.db.execute("DELETE FROM sightings WHERE fingerprint NOT IN (SELECT fingerprint FROM clusters)")
            self.db.execute("DELETE FROM ledger WHERE episode_id IN (SELECT episode_id FROM episodes WHERE opened_ns < ?)",
                            [before_ns])
            self.db.execute("DELETE FROM episodes WHERE opened_ns < ?", [before_ns])
        return {"counts": counts, "runs": runs, "clusters": clusters}

    def export(self) -> dict:
        return {table: [dict(row) for row in self.db.query(f"SELECT * FROM [{table}]")]
                for table in ("clusters", "aliases", "episodes", "ledger", "runs", "summaries")}

    def _apply_aliases(self, aliases: dict[str, str], now_ns: int) -> None:
        """Clusters merged into an older one: their counts, times and reported flags follow it."""
        for old, new in aliases.items():
            if old == new:
                continue
            self.db.execute("INSERT OR REPLACE INTO aliases (old_fingerprint, fingerprint, created_ns) VALUES (?, ?, ?)",
                            [old, new, now_ns])
            self.db.execute("UPDATE aliases SET fingerprint = ? WHERE fingerprint = ?", [new, old])
            old_row = self.cluster(old)
            if old_row is None:
                continue
            self.db.execute(
                """UPDATE clusters SET first_seen_ns = MIN(first_seen_ns, ?), last_seen_ns = MAX(last_seen_ns, ?),
                          total_count = COALESCE(total_count, 0) + ?,
                          last_reported_ns = MAX(COALESCE(last_reported_ns, 0), COALESCE(?, 0))
                   WHERE fingerprint = ?""",
                [old_row["first_seen_ns"], old_row["last_seen_ns"], old_row["total_count"] or 0,
                 old_row["last_reported_ns"], new])
            self.db.execute(
                """INSERT INTO counts (fingerprint, source, bucket_ns, count, first_ns, last_ns)
                   SELECT ?, source, bucket_ns, count, first_ns, last_ns FROM counts WHERE fingerprint = ? AND true  -- "AND true": SQLite upsert-after-SELECT parsing
                   ON CONFLICT (fingerprint, source, bucket_ns) DO UPDATE SET count = count + excluded.count,
                       first_ns = MIN(first_ns, excluded.first_ns), last_ns = MAX(last_ns, excluded.last_ns)""",
                [new, old])
            self.db.execute("DELETE FROM counts WHERE fingerprint = ?", [old])
            # A mute on either side keeps the merged cluster muted, until the later of the two, with its reason.
            self.db.execute(
                """UPDATE clusters SET muted_until_ns = ?, mute_reason = ?
                   WHERE fingerprint = ? AND ? IS NOT NULL AND COALESCE(muted_until_ns, 0) < ?""",
                [old_row["muted_until_ns"], old_row["mute_reason"], new, old_row["muted_until_ns"],
                 old_row["muted_until_ns"]])
            # Episodes (and with them the delivery ledger, keyed by episode) and cached summaries follow too.
            self.db.execute("UPDATE episodes SET fingerprint = ? WHERE fingerprint = ?", [new, old])
            self.db.execute("UPDATE OR IGNORE summaries SET fingerprint = ? WHERE fingerprint = ?", [new, old])
            self.db.execute("DELETE FROM summaries WHERE fingerprint = ?", [old])
            self._move_sightings(old, new)
            self._move_samples(old, new)
            self._move_loki_minutes(old, new)
            self.db.execute("DELETE FROM clusters WHERE fingerprint = ?", [old])

    def resolve(self, fingerprint: str) -> str:
        """The surviving fingerprint of a cluster that was merged into another (or itself)."""
        rows = list(self.db.query("SELECT fingerprint FROM aliases WHERE old_fingerprint = ?", [fingerprint]))
        return rows[0]["fingerprint"] if rows else fingerprint

    def cached_summaries(self, keys: list) -> dict:
        """Cached card texts for the given CacheKeys (summarize.stage)."""
        from triage.summarize.schema import CardText

        found = {}
        for key in keys:
            rows = list(self.db.query(
                "SELECT title, what_happened, likely_cause, next_step FROM summaries WHERE fingerprint = ? "
                "AND template_sha = ? AND prompt_version = ? AND model = ?",
                [key.fingerprint, key.template_sha, key.prompt_version, key.model]))
            if rows:
                found[key] = CardText.model_construct(**rows[0])
        return found

    def _save_summaries(self, summaries: dict, created_ns: int) -> None:
        self.db.conn.executemany(
            """INSERT OR REPLACE INTO summaries (fingerprint, template_sha, prompt_version, model, title,
                                                 what_happened, likely_cause, next_step, created_ns)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [(k.fingerprint, k.template_sha, k.prompt_version, k.model, t.title, t.what_happened, t.likely_cause,
              t.next_step, created_ns) for k, t in summaries.items()],
        )

    def cluster(self, fingerprint: str) -> dict | None:
        """One cluster row (with ``labels``, ``group`` and ``samples`` decoded), or None."""
        rows = list(self.db.query("SELECT * FROM clusters WHERE fingerprint = ?", [fingerprint]))
        if not rows:
            return None
        row = dict(rows[0])
        row["labels"] = json.loads(row["labels"] or "{}")
        row["group"] = json.loads(row.pop("group_key") or "[]")
        row["samples"] = json.loads(row["samples"] or "[]")
        return row

