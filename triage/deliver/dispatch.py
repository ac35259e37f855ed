"""Plan every channel's one message before anything is sent, then send it through the ledger.

``plan_channels`` decides, for the file and each notify channel, which clusters are cards and
which go into the roll-up (deliver.plan), including episodes an earlier failed delivery left
pending. ``send_all`` then sends message by message (a split Slack digest post by post): the
rows a message carries are marked 'sending' in a short transaction, the channel is asked, and
they are marked 'sent' (cards) or 'rolled_up' (the roll-up line) right after it accepted, or
back to 'pending' with the error, to go out with the next run. A kill between the channel's
acceptance and that commit resends that one message; nothing is ever lost. A failed channel
does not stop the others; the webhook goes last, so it gets the report of everything before it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from triage.deliver.content import Outgoing, build_outgoing
from triage.deliver.plan import MessagePlan, plan_message
from triage.digest import DigestInput
from triage.records import ClusterWindow, Finding, Status

log = logging.getLogger(__name__)

ORDER = ("slack", "email", "webhook")  # the webhook last: its report holds the other channels' outcomes


@dataclass(frozen=True, slots=True)
class DispatchResult:
    channel: str
    ok: bool
    error: str | None
    fingerprints: tuple[str, ...] = ()  # delivered as cards
    rolled_up: tuple[str, ...] = ()  # delivered only as part of the roll-up line
    sent: bool = True  # False when there was nothing to send (a quiet hourly run)


def plan_channels(*, channels: list[str], schedule: str, reportable: list[Finding], opening: set[str],
                  earlier: dict[str, list[dict]], state, max_cards: int, full_list: str | None,
                  grafana_url=None) -> dict[str, MessagePlan]:
    """Every channel's message of this run. ``opening``: fingerprints whose episode opens now;
    ``earlier``: per channel, the ledger rows an earlier run left pending (read before this run commits)."""
    plans = {"file": plan_message("file", reportable, max_cards, full_list="below", grafana_url=grafana_url)}
    in_run = {f.cluster.fingerprint: f for f in reportable}
    for name in channels:
        if name == "file":
            continue
        candidates = [f for f in reportable if f.cluster.fingerprint in opening] if schedule == "hourly" \
            else list(reportable)
        pending_since: dict[str, int] = {}
        for row in earlier.get(name, []):
            fingerprint = row["fingerprint"]
            finding = in_run.get(fingerprint) or _from_state(state, fingerprint, row["kind"])
            if finding is None:
                continue
            pending_since.setdefault(finding.cluster.fingerprint, row["opened_ns"])
            candidates.append(finding)
        plans[name] = plan_message(name, candidates, max_cards, pending_since=pending_since, full_list=full_list,
                                   grafana_url=grafana_url)
    return plans


def rollup_link(digest_cfg, window):
    """A function of the rolled-up findings: a Grafana Explore link over their namespaces, when configured."""
    if not digest_cfg.grafana_url:
        return None
    from triage.digest.explore import explore_namespaces_url
    from triage.deliver.plan import place_of

    return lambda rolled: explore_namespaces_url(
        digest_cfg.grafana_url, digest_cfg.grafana_datasource_uid,
        [place_of(f).split("/")[0] for f in rolled], window.from_ns, window.to_ns)


def send_all(deps, state, plans: dict[str, MessagePlan], base: DigestInput, now_ns: int, *, send_when_quiet: bool,
             report_json: Callable[[list[DispatchResult]], dict]) -> list[DispatchResult]:
    results: list[DispatchResult] = []
    for name in sorted(deps.senders, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER)):
        sender, plan = deps.senders[name], plans[name]
        if plan.empty and base.schedule == "hourly" and not send_when_quiet:
            results.append(DispatchResult(name, True, None, sent=False))  # nothing changed: no message
            continue
        ids: dict[str, list[int]] = {}
        for row in state.pending(name):
            ids.setdefault(state.resolve(row["fingerprint"]), []).append(row["episode_id"])
            ids.setdefault(row["fingerprint"], []).append(row["episode_id"])
        ledger = _Ledger(state, name, ids, now_ns)
        if name == "slack":
            results.append(_send_slack(sender, plan, base, ledger))
        elif name == "email":
            results.append(_send_email(sender, plan, base, ledger))
        else:
            results.append(ledger.one_message(plan.fingerprints, (), lambda: sender.send_report(report_json(results))))
    return results


class _Ledger:
    """The ledger rows of one channel's message, marked step by step."""

    def __init__(self, state, channel: str, ids: dict[str, list[int]], now_ns: int):
        self.state, self.channel, self.ids, self.now_ns = state, channel, ids, now_ns

    def rows(self, fingerprints) -> list[int]:
        return sorted({i for fp in fingerprints for i in self.ids.get(fp, [])})

    def one_message(self, cards, rolled, send) -> DispatchResult:
        card_ids, rolled_ids = self.rows(cards), self.rows(rolled)
        self.state.mark(self.channel, card_ids + rolled_ids, "sending", self.now_ns)  # the intent
        result = send()
        if not result.ok:
            self.state.mark(self.channel, card_ids + rolled_ids, "pending", self.now_ns, result.error)
            return DispatchResult(self.channel, False, result.error)
        self.state.mark_delivered(self.channel, card_ids, rolled_ids, self.now_ns)
        return DispatchResult(self.channel, True, result.error, tuple(cards), tuple(rolled))


def _send_slack(sender, plan: MessagePlan, base: DigestInput, ledger: _Ledger) -> DispatchResult:
    from triage.deliver.slack import MAX_POSTS, build_posts

    data = replace(base, pending_since=plan.pending_since)

    def posts_for(cards: int):
        return build_posts(outgoing_from(data, plan.limit(cards)))

    # Cards that do not fit in MAX_POSTS posts join the roll-up, so it stays exactly true. The
    # number of posts grows with the cards: search for the most that fit.
    posts = posts_for(len(plan.cards))
    if len(posts) > MAX_POSTS:
        low, high = 0, len(plan.cards) - 1
        posts = posts_for(0)
        while low <= high:
            middle = (low + high) // 2
            candidate = posts_for(middle)
            if len(candidate) <= MAX_POSTS:
                posts, low = candidate, middle + 1
            else:
                high = middle - 1
    cards: list[str] = []
    rolled: list[str] = []
    for index, post in enumerate(posts):
        result = ledger.one_message(post.fingerprints, post.rolled,
                                    lambda: sender.send_post(post, index, len(posts)))
        if not result.ok:
            later = [fp for p in posts[index + 1:] for fp in (*p.fingerprints, *p.rolled)]
            ledger.state.mark(ledger.channel, ledger.rows(later), "pending", ledger.now_ns, result.error)
            return DispatchResult(ledger.channel, False, result.error, tuple(cards), tuple(rolled))
        cards.extend(post.fingerprints)
        rolled.extend(post.rolled)
    return DispatchResult(ledger.channel, True, None, tuple(cards), tuple(rolled))


def _send_email(sender, plan: MessagePlan, base: DigestInput, ledger: _Ledger) -> DispatchResult:
    def render(cards: int, clip: int | None):
        fitted = plan.limit(cards)
        shown = [_clipped(f, clip) for f in fitted.cards] if clip else list(fitted.cards)
        data = replace(base, pending_since=plan.pending_since)
        return outgoing_from(data, replace(fitted, cards=tuple(shown))), fitted

    message, fitted = sender.build_within(render, len(plan.cards))
    return ledger.one_message([f.cluster.fingerprint for f in fitted.cards],
                              fitted.rollup.fingerprints if fitted.rollup else (),
                              lambda: sender.send_message(message))


def _clipped(finding: Finding, clip: int) -> Finding:
    """The finding with its template and samples cut to ``clip`` characters (for a size-capped message)."""
    cluster = finding.cluster
    cut = replace(cluster, template=cluster.template[:clip], samples=[s[:clip] for s in cluster.samples[:2]])
    return replace(finding, cluster=cut)


def cards_of(plans: dict[str, MessagePlan]) -> list[Finding]:
    """Every cluster that is a card in some channel's message (the LLM stage summarises these)."""
    seen: dict[str, Finding] = {}
    for plan in plans.values():
        for finding in plan.cards:
            seen.setdefault(finding.cluster.fingerprint, finding)
    return list(seen.values())


class Delivered:
    """What reached which channel, as cards or in a roll-up line: fills the report's clusters and deliveries."""

    def __init__(self, findings: list[Finding], summaries: dict):
        self.findings = findings
        self.summaries = summaries
        self.reported: dict[str, list[str]] = {}
        self.rolled: dict[str, list[str]] = {}
        self.deliveries: list[dict] = []

    def add_file(self, result, plan: MessagePlan) -> None:
        self.add(DispatchResult(result.channel, result.ok, result.error,
                                tuple(f.cluster.fingerprint for f in plan.cards),
                                tuple(f.cluster.fingerprint for f in plan.rolled)))

    def add(self, result: DispatchResult, *, record: bool = True) -> None:
        if record:
            self.deliveries.append({"channel": result.channel, "ok": result.ok, "error": result.error})
        for fingerprint in result.fingerprints:  # a failed Slack digest may have delivered its first posts
            self.reported.setdefault(fingerprint, []).append(result.channel)
        for fingerprint in result.rolled_up:
            self.reported.setdefault(fingerprint, []).append(result.channel)
            self.rolled.setdefault(fingerprint, []).append(result.channel)

    def fill(self, report, codes: list) -> None:
        from triage.errors import worst_exit_code
        from triage.report import ClusterEntry

        report.deliveries = list(self.deliveries)
        report.clusters = []
        for finding in self.findings:
            fingerprint = finding.cluster.fingerprint
            summary = self.summaries.get(fingerprint)
            report.clusters.append(ClusterEntry(finding, list(self.reported.get(fingerprint, [])),
                                                summary.to_json(finding.cluster.template) if summary else None,
                                                list(self.rolled.get(fingerprint, []))))
        report.exit_code = int(worst_exit_code(codes))

    def snapshot(self, report, codes: list, so_far: list[DispatchResult], plans: dict[str, MessagePlan]) -> dict:
        """The whole report as the webhook (last channel) gets it: every other channel's outcome, the
        exit code so far, and what the webhook itself carries."""
        from triage.errors import ExitCode

        view = Delivered(self.findings, self.summaries)
        view.reported = {k: list(v) for k, v in self.reported.items()}
        view.rolled = {k: list(v) for k, v in self.rolled.items()}
        view.deliveries = list(self.deliveries)
        for result in so_far:
            view.add(result)
        if "webhook" in plans:
            view.add(DispatchResult("webhook", True, None, plans["webhook"].fingerprints), record=False)
        view.fill(report, [*codes, *(ExitCode.DELIVERY_FAILED for r in so_far if not r.ok)])
        return report.to_json()


def _from_state(state, fingerprint: str, kind: str) -> Finding | None:
    row = state.cluster(state.resolve(fingerprint))
    if row is None:
        return None
    cluster = ClusterWindow(row["fingerprint"], row["template"], row["labels"], samples=list(row["samples"]))
    status = Status(kind) if kind in Status._value2member_map_ else Status.NEW
    return Finding(cluster, status, False, row["first_seen_ns"], row["last_seen_ns"])


def outgoing_from(data: DigestInput, plan: MessagePlan | None = None) -> Outgoing:
    """The channel-neutral message of one channel's plan (its cards and its roll-up), rendered by the digest."""
    if plan is not None:
        data = replace(data, cards=list(plan.cards), more=plan.rollup.total if plan.rollup else 0, rollup=plan.rollup,
                       rolled=list(plan.rolled))
    return build_outgoing(data)
