"""Episodes and the delivery ledger: one row per (episode, channel), pending -> sending -> sent.

'rolled_up' is delivered too (the message carried it in its roll-up line); 'primed' counts as
reported (a prime run, or a channel configured later).
"""

from __future__ import annotations

import json
import sqlite3

from triage.errors import StateError
from triage.state.files import describe_db_error


class LedgerStore:
    """The ledger part of StateStore (``self.db``: a sqlite_utils Database, ``self.path``)."""

    def last_episode_ns(self, fingerprint: str, kind: str) -> int | None:
        rows = list(self.db.query("SELECT MAX(opened_ns) AS t FROM episodes WHERE fingerprint = ? AND kind = ?",
                                  [fingerprint, kind]))
        return rows[0]["t"] if rows else None

    def comeback_has_episode(self, fingerprint: str, kind: str, anchor_ns: int) -> bool:
        """Whether the episode for this very comeback (same cluster, kind and anchor) was opened already."""
        return bool(list(self.db.query(
            "SELECT 1 FROM episodes WHERE fingerprint = ? AND kind = ? AND anchor_ns = ? LIMIT 1",
            [fingerprint, kind, anchor_ns])))

    def _open_episodes(self, episodes: list[tuple[str, str, int | None]], channels: list[str], primed: bool,
                       run_id: str, now_ns: int) -> None:
        for fingerprint, kind, anchor_ns in episodes:
            cursor = self.db.execute(
                "INSERT INTO episodes (fingerprint, kind, opened_ns, run_id, anchor_ns) VALUES (?, ?, ?, ?, ?)",
                [fingerprint, kind, now_ns, run_id, anchor_ns])
            self.db.conn.executemany(
                "INSERT INTO ledger (episode_id, channel, status, updated_ns) VALUES (?, ?, ?, ?)",
                [(cursor.lastrowid, channel, "primed" if primed else "pending", now_ns) for channel in channels])

    def pending(self, channel: str) -> list[dict]:
        """Episodes not yet delivered to a channel (a 'sending' row is one a crash interrupted)."""
        return [dict(row) for row in self.db.query(
            """SELECT e.episode_id, e.fingerprint, e.kind, e.opened_ns, l.status, l.updated_ns, l.error
               FROM ledger l JOIN episodes e USING (episode_id)
               WHERE l.channel = ? AND l.status IN ('pending', 'sending') ORDER BY e.opened_ns, e.episode_id""",
            [channel])]

    def mark(self, channel: str, episode_ids: list[int], status: str, now_ns: int, error: str | None = None) -> None:
        """One short transaction per step of a delivery: intent ('sending'), then 'sent' or back to 'pending'."""
        if not episode_ids:
            return
        try:
            with self.db.atomic():
                self.db.conn.executemany(
                    "UPDATE ledger SET status = ?, updated_ns = ?, error = ? WHERE episode_id = ? AND channel = ?",
                    [(status, now_ns, error, episode_id, channel) for episode_id in episode_ids])
        except sqlite3.DatabaseError as err:
            raise StateError(describe_db_error(self.path, err)) from None

    def mark_delivered(self, channel: str, sent_ids: list[int], rolled_ids: list[int], now_ns: int) -> None:
        """Right after a channel accepted one message: its cards 'sent', its roll-up line's 'rolled_up'."""
        try:
            with self.db.atomic():
                self.db.conn.executemany(
                    "UPDATE ledger SET status = ?, updated_ns = ?, error = NULL WHERE episode_id = ? AND channel = ?",
                    [("sent", now_ns, i, channel) for i in sent_ids] + [("rolled_up", now_ns, i, channel)
                                                                       for i in rolled_ids])
        except sqlite3.DatabaseError as err:
            raise StateError(describe_db_error(self.path, err)) from None

    def known_channels(self) -> list[str]:
        value = self.meta("channels")
        return json.loads(value) if value else []

    def channel_had_any(self, channel: str) -> bool:
        return bool(list(self.db.query("SELECT 1 FROM ledger WHERE channel = ? LIMIT 1", [channel])))

    def _add_channel_rows(self, channels: list[str], now_ns: int) -> None:
        """A channel configured after episodes opened gets rows for the still-open ones (when not primed)."""
        for channel in channels:
            self.db.execute(
                """INSERT OR IGNORE INTO ledger (episode_id, channel, status, updated_ns)
                   SELECT DISTINCT l.episode_id, ?, 'pending', ? FROM ledger l
                   WHERE l.status IN ('pending', 'sending')""", [channel, now_ns])

