"""Send the run to every notify channel through the ledger: exactly once normally, at most one duplicate on a crash.

For each channel: the episodes still pending for it (this run's and any an earlier failure left)
are marked 'sending' in a short transaction, the message goes out, and they are marked 'sent' —
or back to 'pending' with the error, to go out with the next run. A crash between the channel's
acceptance and the 'sent' commit can resend that one message; nothing is ever lost. A failed
channel does not stop the others.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from triage.digest import DigestInput, card_title, render_digest
from triage.deliver.content import Card, CardSummary, Outgoing
from triage.records import ClusterWindow, Finding, Status
from triage.timeparse import format_duration_ns, format_ns


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
            result = sender.send(outgoing, render_digest(data))
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


def outgoing_from(data: DigestInput) -> Outgoing:
    """The channel-neutral message for Slack and e-mail, from the same data as the markdown digest."""
    counted = {str(s): sum(1 for f in data.cards if f.status is s) for s in Status}
    changes = ", ".join(f"{n} {status}" for status, n in counted.items() if n and status != "ongoing")
    headline = f"triage {data.schedule}: {changes or f'{len(data.cards)} clusters'}"
    scope = sorted({ns for f in data.cards for ns in f.cluster.namespaces})[:3]
    if scope:
        headline += f" · {', '.join(scope)}"
    warnings = tuple(f"source {s.name} failed: {s.error}" for s in data.sources if not s.ok)
    cards = []
    for finding in data.cards:
        cluster = finding.cluster
        summary = data.summaries.get(cluster.fingerprint)
        text = summary.text if summary and summary.text else None
        cards.append(Card(
            fingerprint=cluster.fingerprint, status=str(finding.status), title=card_title(cluster.template),
            template=cluster.template, count=cluster.count, first_seen_ns=finding.first_seen_ns,
            last_seen_ns=finding.last_seen_ns, namespaces=_top(cluster.namespaces), apps=_top(cluster.apps),
            pods=_top(cluster.pods), samples=tuple(cluster.samples[:1]), muted=finding.muted,
            summary=CardSummary(text.title, text.what_happened, text.likely_cause, text.next_step) if text else None,
            pending_since_ns=data.pending_since.get(cluster.fingerprint),
            explore_url=data.explore.get(cluster.fingerprint),
        ))
    window = f"{format_ns(data.window.from_ns)} → {format_ns(data.window.to_ns)} ({format_duration_ns(data.window.duration_ns)})"
    stats = f"{data.lines} lines · {data.clusters_total} clusters" + (f" · {changes}" if changes else "")
    footer = f"run {data.run_id} · state {data.state_path}" + (" · AI-written text is marked 🤖" if any(c.summary for c in cards) else "")
    notes = list(data.notes)
    if data.nightly:
        day = data.nightly
        notes.append(f"Lines: {day.lines_today} (the day before: {day.lines_previous_day}) · new today: "
                     f"{len(day.new_today)} · regressed today: {len(day.regressed_today)}")
        for finding, spark in day.top_ongoing[:5]:
            notes.append(f"ongoing {spark} {finding.cluster.count} × {card_title(finding.cluster.template)[:80]} "
                         f"({finding.cluster.fingerprint})")
        for row in day.quiet[:5]:
            notes.append(f"went quiet: {card_title(row['template'])[:80]} ({row['fingerprint']})")
        if not cards:
            headline = f"triage nightly: no new, regressed or spiking problems · {day.lines_today} lines"
    return Outgoing(headline=headline, schedule=data.schedule, window_text=window, stats_line=stats,
                    warnings=warnings, cards=tuple(cards), more=data.more, footer=footer, notes=tuple(notes))


def _top(values: dict[str, int]) -> tuple[str, ...]:
    return tuple(name for name, _ in sorted(values.items(), key=lambda item: (-item[1], item[0])))
