"""Send the run to every notify channel through the ledger: exactly once normally, at most one duplicate on a crash.

For each channel: the episodes still pending for it (this run's and any an earlier failure left)
are marked 'sending' in a short transaction, the message goes out, and they are marked 'sent' —
or back to 'pending' with the error, to go out with the next run. A crash between the channel's
acceptance and the 'sent' commit can resend that one message; nothing is ever lost. A failed
channel does not stop the others.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from triage.deliver.content import Outgoing, build_outgoing
from triage.digest import DigestInput
from triage.records import ClusterWindow, Finding, Status


@dataclass(frozen=True, slots=True)
class DispatchResult:
    channel: str
    ok: bool
    error: str | None
    fingerprints: tuple[str, ...] = ()


def dispatch(deps, state, base: DigestInput, findings: list[Finding], report, now_ns: int, *,
             send_when_quiet: bool) -> list[DispatchResult]:
    results = []
    in_run = {f.cluster.fingerprint: f for f in findings}
    for name, sender in deps.senders.items():
        pending = state.pending(name)
        episodes: dict[str, list[dict]] = {}
        for row in pending:
            episodes.setdefault(row["fingerprint"], []).append(row)
        chosen: list[Finding] = []
        if base.schedule != "hourly":
            chosen.extend(base.cards)
        chosen_fps = {f.cluster.fingerprint for f in chosen}
        pending_since: dict[str, int] = {}
        for fingerprint, rows in episodes.items():
            if fingerprint in chosen_fps:
                continue
            finding = in_run.get(fingerprint) or _from_state(state, fingerprint, rows[0]["kind"])
            if finding is None:
                continue
            if fingerprint not in in_run or rows[0]["opened_ns"] < now_ns:
                pending_since[fingerprint] = rows[0]["opened_ns"]
            chosen.append(finding)
            chosen_fps.add(fingerprint)
        if not chosen and base.schedule == "hourly" and not send_when_quiet:
            results.append(DispatchResult(name, True, None))  # nothing changed: no message
            continue
        data = replace(base, cards=chosen, pending_since=pending_since,
                       more=base.more if base.schedule != "hourly" else 0)
        ids = [row["episode_id"] for fp in chosen_fps for row in episodes.get(fp, [])]
        state.mark(name, ids, "sending", now_ns)
        outgoing = outgoing_from(data)
        if name == "slack":
            result = sender.send(outgoing)
        elif name == "email":
            result = sender.send(outgoing)  # text/plain and HTML are both rendered from `outgoing`
        else:
            result = sender.send_report(report.to_json())
        state.mark(name, ids, "sent" if result.ok else "pending", now_ns, None if result.ok else result.error)
        results.append(DispatchResult(name, result.ok, result.error, tuple(sorted(chosen_fps))))
    return results


def _from_state(state, fingerprint: str, kind: str) -> Finding | None:
    row = state.cluster(state.resolve(fingerprint))
    if row is None:
        return None
    cluster = ClusterWindow(row["fingerprint"], row["template"], row["labels"], samples=list(row["samples"]))
    status = Status(kind) if kind in Status._value2member_map_ else Status.NEW
    return Finding(cluster, status, False, row["first_seen_ns"], row["last_seen_ns"])


def outgoing_from(data: DigestInput, rollup: list[str] | None = None) -> Outgoing:
    """The channel-neutral message for Slack and e-mail, from the same data as the markdown digest."""
    return build_outgoing(data, rollup)
