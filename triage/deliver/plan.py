"""Which clusters a channel's one message carries as cards, and the one roll-up of the rest (pure).

Every channel (the file digest included) gets the same rule: candidates ranked new > regressed >
spiking > ongoing, then severity (fatal / panic / OOM > error > warn, from the level and the
text of the samples), then count; the first ``digest.max_cards`` become cards and the rest one
roll-up, grouped by namespace/app with their counts. A channel that cannot carry that many
cards (Slack's block and text limits, the e-mail size cap) moves the last ones into the roll-up
with ``MessagePlan.limit``, so "and N more" is always exactly the clusters left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from triage.extract import extract
from triage.records import STATUS_RANK, Finding, LogRecord, Status

# Severity ranks: lower is worse. A level field or word in the entry decides, and words in the
# text can only raise it ("level=info msg=... OOMKilled" is still an OOM). Serves JSON and logfmt
# bodies (a level key), plain lines ("ERROR ...", "[warn]"), Go panics and Kubernetes OOM kills.
FATAL, ERROR, WARN, OTHER = 0, 1, 2, 3
_LEVEL_RANK = {"panic": FATAL, "fatal": FATAL, "critical": FATAL, "error": ERROR, "warn": WARN,
               "info": OTHER, "debug": OTHER, "trace": OTHER}
_FATAL_TEXT = re.compile(r"\b(fatal|panic(ked)?|oom(killed|_killed)?|out of memory|outofmemoryerror|"
                         r"segmentation fault|sigsegv|core dumped|crash(loopbackoff|ed)?)\b", re.I)
_ERROR_TEXT = re.compile(r"\b(err(or)?s?|exception|fail(ed|ure|s)?|traceback|refused|timed? ?out)\b", re.I)
_WARN_TEXT = re.compile(r"\b(warn(ing)?s?|deprecated)\b", re.I)

TOP_PLACES = 8  # namespace/app groups named in a roll-up line; the rest are summed up


def severity(finding: Finding) -> int:
    cluster = finding.cluster
    texts = [cluster.template, *cluster.samples[:3]]
    levels = [extract(LogRecord(0, {}, line)).level for line in cluster.samples[:3]]
    known = [_LEVEL_RANK[level] for level in levels if level in _LEVEL_RANK]
    rank = min(known) if known else None
    if any(_FATAL_TEXT.search(text) for text in texts):
        return FATAL
    if rank is not None:
        return rank
    if any(_ERROR_TEXT.search(text) for text in texts):
        return ERROR
    if any(_WARN_TEXT.search(text) for text in texts):
        return WARN
    return ERROR  # the default query selects error lines: an unmarked one counts as an error


def rank_key(finding: Finding) -> tuple:
    return (STATUS_RANK[finding.status], severity(finding), -finding.cluster.count, finding.cluster.fingerprint)


def ranked(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=rank_key)


def place_of(finding: Finding) -> str:
    """``namespace/app`` of a cluster, from its group labels (else the labels seen most)."""
    labels = finding.cluster.group_labels
    namespace = labels.get("namespace") or _most(finding.cluster.namespaces)
    app = next((v for k, v in labels.items() if k != "namespace" and v), None) or _most(finding.cluster.apps)
    return f"{namespace or '-'}/{app or '-'}"


def _most(values: dict[str, int]) -> str | None:
    return min(values.items(), key=lambda item: (-item[1], item[0]))[0] if values else None


@dataclass(frozen=True, slots=True)
class RollUp:
    """The clusters a message left out, as data: channels render it with ``rollup_line``."""

    total: int
    by_status: tuple[tuple[str, int], ...]  # ("new", 509), ... in rank order, only non-zero
    by_place: tuple[tuple[str, int], ...]  # ("data/reports", 499), ... the TOP_PLACES largest
    other_places: int  # places not named
    other_count: int  # clusters in them
    full_list: str | None = None  # where every cluster is listed: "below", or the digest file's path
    grafana_url: str | None = None  # Grafana Explore over the rolled-up namespaces, when configured
    fingerprints: tuple[str, ...] = ()


def build_rollup(rolled: list[Finding], *, full_list: str | None, grafana_url: str | None) -> RollUp | None:
    if not rolled:
        return None
    statuses = [(str(s), sum(1 for f in rolled if f.status is s)) for s in sorted(Status, key=STATUS_RANK.get)]
    places: dict[str, int] = {}
    for finding in rolled:
        key = place_of(finding)
        places[key] = places.get(key, 0) + 1
    ordered = sorted(places.items(), key=lambda item: (-item[1], item[0]))
    named, rest = ordered[:TOP_PLACES], ordered[TOP_PLACES:]
    return RollUp(total=len(rolled), by_status=tuple((s, n) for s, n in statuses if n), by_place=tuple(named),
                  other_places=len(rest), other_count=sum(n for _, n in rest), full_list=full_list,
                  grafana_url=grafana_url, fingerprints=tuple(f.cluster.fingerprint for f in rolled))


def rollup_line(rollup: RollUp, quote: Callable[[str], str] = str) -> str:
    """"and 509 more new: 499 in data/reports, 6 in shop/orders, 4 in 3 other places" (plain text).

    The one place the roll-up's words are made. ``quote`` wraps what comes from the data (the
    namespace/app names and the file path): a code span in Slack and markdown, so a label can
    never become a link, a mention or formatting.
    """
    if len(rollup.by_status) == 1:
        head = f"and {rollup.total} more {rollup.by_status[0][0]}"
    else:
        head = f"and {rollup.total} more ({', '.join(f'{n} {s}' for s, n in rollup.by_status)})"
    parts = [f"{n} in {quote(place)}" for place, n in rollup.by_place]
    if rollup.other_places:
        parts.append(f"{rollup.other_count} in {rollup.other_places} other "
                     f"{'place' if rollup.other_places == 1 else 'places'}")
    line = f"{head}: {', '.join(parts)}"
    if rollup.full_list == "below":
        line += " (listed below)"
    elif rollup.full_list:
        line += f" (full list: the digest file {quote(rollup.full_list)})"
    return line


@dataclass(frozen=True, slots=True)
class MessagePlan:
    """One channel's message of this run, decided before anything is delivered."""

    channel: str
    cards: tuple[Finding, ...]
    rolled: tuple[Finding, ...]
    rollup: RollUp | None
    pending_since: dict[str, int] = field(default_factory=dict)  # fingerprint -> ns an earlier failure left it
    full_list: str | None = None
    grafana_url: str | None = None

    @property
    def fingerprints(self) -> tuple[str, ...]:
        return tuple(f.cluster.fingerprint for f in (*self.cards, *self.rolled))

    @property
    def empty(self) -> bool:
        return not self.cards and not self.rolled

    def limit(self, cards: int) -> MessagePlan:
        """The same message with only its first ``cards`` cards; the others join the roll-up."""
        cards = max(0, cards)
        if cards >= len(self.cards):
            return self
        rolled = ranked([*self.cards[cards:], *self.rolled])
        return replace(self, cards=self.cards[:cards], rolled=tuple(rolled),
                       rollup=build_rollup(rolled, full_list=self.full_list, grafana_url=self.grafana_url))


def plan_message(channel: str, candidates: list[Finding], max_cards: int, *,
                 pending_since: dict[str, int] | None = None, full_list: str | None = None,
                 grafana_url=None) -> MessagePlan:
    """Rank the candidates; the first ``max_cards`` are cards, the rest one roll-up.

    ``grafana_url`` may be a function of the rolled-up findings (an Explore link over them).
    """
    ordered = ranked(_unique(candidates))
    cards, rolled = ordered[:max_cards], ordered[max_cards:]
    url = grafana_url(rolled) if callable(grafana_url) and rolled else (None if callable(grafana_url) else grafana_url)
    return MessagePlan(channel=channel, cards=tuple(cards), rolled=tuple(rolled),
                       rollup=build_rollup(rolled, full_list=full_list, grafana_url=url),
                       pending_since=dict(pending_since or {}), full_list=full_list, grafana_url=url)


def _unique(findings: list[Finding]) -> list[Finding]:
    seen: dict[str, Finding] = {}
    for finding in findings:
        seen.setdefault(finding.cluster.fingerprint, finding)
    return list(seen.values())
