"""Schema migrations, applied in order; each runs in its own transaction.

Add a new function at the end to change the schema; never edit one that has shipped.
A state file that has a migration this list does not know comes from a newer triage.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("triage")


@migrations()
def m001_initial(db: Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["clusters"].create(
        {
            "fingerprint": str,
            "grouping_version": str,
            "group_key": str,  # JSON list of the group_by values
            "labels": str,  # JSON object: the group_by label names and values
            "template": str,
            "first_seen_ns": int,
            "last_seen_ns": int,
            "total_count": int,
            "last_status": str,
            "last_reported_ns": int,
            "muted_until_ns": int,
            "mute_reason": str,
        },
        pk="fingerprint",
        not_null={"template", "first_seen_ns", "last_seen_ns"},
    )
    db["counts"].create(
        {"fingerprint": str, "source": str, "bucket_ns": int, "count": int},
        pk=("fingerprint", "source", "bucket_ns"),
    )
    db["counts"].create_index(["bucket_ns"])
    db["coverage"].create({"source": str, "from_ns": int, "to_ns": int}, pk=("source", "from_ns"))
    db["runs"].create(
        {
            "run_id": str,
            "schedule": str,
            "sources": str,  # JSON list of --source values, sorted
            "from_ns": int,
            "to_ns": int,
            "started_ns": int,
            "finished_ns": int,
            "exit_code": int,
            "complete": int,  # 1 when every source delivered its whole window
            "dry_run": int,
            "lines": int,
            "clusters": int,
            "figures": str,  # JSON: counts by status and other figures of the run
        },
        pk="run_id",
    )
    db["runs"].create_index(["schedule", "sources", "to_ns"])
    db["aliases"].create({"old_fingerprint": str, "fingerprint": str, "created_ns": int}, pk="old_fingerprint")


@migrations()
def m002_summaries_and_samples(db: Database) -> None:
    db["summaries"].create(
        {
            "fingerprint": str,
            "template_sha": str,
            "prompt_version": str,
            "model": str,
            "title": str,
            "what_happened": str,
            "likely_cause": str,
            "next_step": str,
            "created_ns": int,
        },
        pk=("fingerprint", "template_sha", "prompt_version", "model"),
    )
    db["clusters"].add_column("samples", str)  # JSON list of up to 3 redacted sample entries


@migrations()
def m003_episodes_and_ledger(db: Database) -> None:
    db["episodes"].create(
        {"episode_id": int, "fingerprint": str, "kind": str, "opened_ns": int, "run_id": str},
        pk="episode_id",
    )
    db["episodes"].create_index(["fingerprint", "kind", "opened_ns"])
    # One row per (episode, channel): pending -> sending -> sent, or primed (counts as reported).
    db["ledger"].create(
        {"episode_id": int, "channel": str, "status": str, "updated_ns": int, "error": str},
        pk=("episode_id", "channel"),
    )
    db["ledger"].create_index(["channel", "status"])


@migrations()
def m004_grouping_pattern(db: Database) -> None:
    # The miner's own form of a template (a run wildcard kept apart from a one-token one), so a
    # restart restores what was learned; `template` stays the text people read.
    db["clusters"].add_column("pattern", str)


@migrations()
def state_durable_facts(db: Database) -> None:
    """Facts detection needs for as long as the state keeps a cluster (counts are pruned after
    ``state.retention``): one row per cluster per UTC day it was counted, with the first and last
    counted minute. Back-filled from the counts still held, and from the clusters' own first/last
    seen where their counts were already pruned."""
    day = 86400 * 10**9
    db["sightings"].create(
        {"fingerprint": str, "day_ns": int, "count": int, "first_bucket_ns": int, "last_bucket_ns": int},
        pk=("fingerprint", "day_ns"),
    )
    db.execute(
        f"""INSERT INTO sightings (fingerprint, day_ns, count, first_bucket_ns, last_bucket_ns)
            SELECT fingerprint, bucket_ns - bucket_ns % {day}, SUM(count), MIN(bucket_ns), MAX(bucket_ns)
            FROM counts GROUP BY fingerprint, bucket_ns - bucket_ns % {day}""")
    for column in ("first_seen_ns", "last_seen_ns"):
        db.execute(
            f"""INSERT OR IGNORE INTO sightings (fingerprint, day_ns, count, first_bucket_ns, last_bucket_ns)
                SELECT fingerprint, {column} - {column} % {day}, 0, {column} - {column} % 60000000000,
                       {column} - {column} % 60000000000
                FROM clusters WHERE fingerprint NOT IN (SELECT fingerprint FROM counts)""")
    # An episode is keyed to the comeback it reports: for a regression, the last sighting before
    # the quiet period. A window covered again after a partial run finds the same anchor.
    db["episodes"].add_column("anchor_ns", int)
    db["episodes"].create_index(["fingerprint", "kind", "anchor_ns"])


@migrations()
def state_settling(db: Database) -> None:
    """The part of a window younger than ``loki.settle``: re-read by the next run, and the
    identities of the entries already counted there, so each is counted once."""
    db["settle_spans"].create({"source": str, "from_ns": int, "to_ns": int}, pk=("source", "from_ns"))
    db["settled_entries"].create({"source": str, "entry_id": str, "ts_ns": int}, pk=("source", "entry_id"))
    db["settled_entries"].create_index(["source", "ts_ns"])
    db["runs"].add_column("settled_ns", int)  # the window's end minus what was still settling


@migrations()
def covered18_state_answers(db: Database) -> None:
    """What lets a run take the parts of its window that earlier runs counted from the state instead of
    fetching them again (state/coverplan.py): the first and last nanosecond counted in each minute (NULL
    in rows written before: those minutes give first/last seen to the minute only), and a bounded
    sample of redacted entries per cluster, at most one per cluster per slot of the sample grid."""
    db["counts"].add_column("first_ns", int)
    db["counts"].add_column("last_ns", int)
    db["samples"].create(
        {"source": str, "fingerprint": str, "slot_ns": int, "ts_ns": int, "line": str, "message": str,
         "namespace": str, "app": str, "pod": str},
        pk=("source", "fingerprint", "slot_ns"),
    )
    db["samples"].create_index(["source", "ts_ns"])


@migrations()
def settle18_loki_minutes(db: Database) -> None:
    """The (cluster, minute) pairs of settling minutes that Loki counted (a metric query gives no entry
    identities): a later re-count of such a pair adds the difference to ``counts`` (state/counting.py)."""
    db["loki_minutes"].create({"source": str, "fingerprint": str, "bucket_ns": int},
                              pk=("source", "fingerprint", "bucket_ns"))
    db["loki_minutes"].create_index(["source", "bucket_ns"])
