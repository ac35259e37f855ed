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
