"""Stable ids through merges and restarts: what the state holds about a cluster follows its survivor."""

from __future__ import annotations

import sqlite3

from tests.test_cli_run import S, T0, entry, invoke, run_file, write_jsonl
from triage.state.db import StateStore

HOUR = 3600 * S


def test_a_mute_survives_the_merge_of_its_cluster_into_an_older_one(tmp_path):
    lines = [entry(T0 + i * S, f"user {name} logged in from web") for i, name in enumerate(["alice", "bob"])]
    path = write_jsonl(tmp_path / "in.jsonl", lines + [entry(T0 + HOUR + S, "user carol logged in from web")])
    _, first = run_file(tmp_path, path, window=(T0, T0 + HOUR))
    bob = next(c["fingerprint"] for c in first["clusters"] if "bob" in c["template"])
    alice = next(c["fingerprint"] for c in first["clusters"] if "alice" in c["template"])
    assert invoke("state", "mute", bob, "--reason", "known: bob's token expires", "--state",
                  tmp_path / "state.db").exit_code == 0
    _, second = run_file(tmp_path, path, window=(T0 + HOUR, T0 + 2 * HOUR))
    assert [c["fingerprint"] for c in second["clusters"]] == [alice]
    assert second["clusters"][0]["muted"] is True, "the merged cluster holds bob's problem, and bob was muted"
    conn = sqlite3.connect(tmp_path / "state.db")
    assert conn.execute("SELECT mute_reason FROM clusters WHERE fingerprint = ?", [alice]).fetchone() == (
        "known: bob's token expires",)
    assert conn.execute("SELECT COUNT(*) FROM episodes WHERE fingerprint = ?", [bob]).fetchone() == (0,)
    assert conn.execute("SELECT COUNT(*) FROM episodes WHERE fingerprint = ?", [alice]).fetchone()[0] >= 2


def test_a_learned_run_survives_a_restart(tmp_path):
    # Free text of any length between fixed words: three lengths prove the run variable in run 1; after a
    # restart (a new process reading the state) a fourth length still joins the same cluster.
    queries = ["select a", "show tables from b", "delete from b where c", "update t"]
    lines = [entry(T0 + i * S, f"rejected query {q} from user 7: statement timeout") for i, q in enumerate(queries[:3])]
    lines.append(entry(T0 + HOUR + S, f"rejected query {queries[3]} set x from user 9: statement timeout"))
    path = write_jsonl(tmp_path / "in.jsonl", lines)
    _, first = run_file(tmp_path, path, window=(T0, T0 + HOUR))
    assert len(first["clusters"]) == 1 and first["clusters"][0]["template"] == (
        "rejected query <*> from user <*>: statement timeout")
    _, second = run_file(tmp_path, path, window=(T0 + HOUR, T0 + 2 * HOUR))
    assert [c["fingerprint"] for c in second["clusters"]] == [first["clusters"][0]["fingerprint"]]


def test_only_clusters_seen_within_the_retention_are_restored(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [entry(T0, "cache warmed in 3 s"), entry(T0 + 40 * 24 * HOUR, "other")])
    run_file(tmp_path, path, window=(T0, T0 + HOUR))
    run_file(tmp_path, path, window=(T0 + 40 * 24 * HOUR, T0 + 40 * 24 * HOUR + HOUR))
    state = StateStore.open(tmp_path / "state.db")
    try:
        everything = [c.template for c in state.known_clusters()]
        recent = [c.template for c in state.known_clusters(seen_since_ns=T0 + 10 * 24 * HOUR)]
    finally:
        state.close()
    assert "cache warmed in <*>" in everything and recent == ["other"]
