"""Grafana Explore links that select a cluster's lines (pure).

A template is triage's view of a line, not the line: a logfmt line's ``msg`` and ``error`` are
two fields in the raw text but one message to the miner (``payment authorization failed: context
deadline exceeded``), a stack trace's signature joins its parts with triage's own `` | ``, and JSON
escapes quotes. Loki's ``|=`` matches raw text, so a filter made from the template can select
nothing. Filters here are made of the template's constant words, in runs that occur verbatim in
every one of the cluster's own samples; the labels are the cluster's group labels.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

from triage.cluster.masking import WILDCARD

MAX_FILTERS = 2
MIN_FILTER_CHARS = 4
MAX_FILTER_CHARS = 80
_REDACTION = re.compile(r"<[a-z][\w-]*>")  # redact.py's masks are not in Loki's copy of the line
_SEPARATORS = re.compile(r" \| |: ")  # what extract.py puts between the parts it joins


def line_filters(template: str, samples: list[str]) -> list[str]:
    """Up to MAX_FILTERS texts, each occurring verbatim in every sample, the longest first."""
    if not samples:
        return []
    found: list[str] = []
    for piece in template.split(WILDCARD):
        for part in _SEPARATORS.split(piece):
            best = _longest_common_run(part.split(), samples)
            if best and len(best) >= MIN_FILTER_CHARS and not _REDACTION.search(best):
                found.append(best)
    found.sort(key=len, reverse=True)
    chosen: list[str] = []
    for text in found:
        if not any(text in other for other in chosen):
            chosen.append(text)
        if len(chosen) == MAX_FILTERS:
            break
    return chosen


def _longest_common_run(words: list[str], samples: list[str]) -> str:
    best = ""
    for start in range(len(words)):
        for end in range(len(words), start, -1):
            text = " ".join(words[start:end])[:MAX_FILTER_CHARS]
            if len(text) <= len(best):
                break
            if all(text in sample for sample in samples):
                best = text
                break
    return best


def logql(labels: dict[str, str], template: str, samples: list[str]) -> str:
    selector = ", ".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()) if v)
    filters = "".join(f' |= "{_escape(text)}"' for text in line_filters(template, samples))
    return "{" + selector + "}" + filters


def explore_url(grafana_url: str, datasource_uid: str | None, labels: dict[str, str], template: str,
                from_ns: int, to_ns: int, samples: list[str] | tuple[str, ...] = ()) -> str:
    """A Grafana Explore link for a cluster's lines over ``[from_ns, to_ns)``."""
    return _explore(grafana_url, datasource_uid, logql(labels, template, list(samples)), from_ns, to_ns)


def explore_namespaces_url(grafana_url: str, datasource_uid: str | None, namespaces: list[str],
                           from_ns: int, to_ns: int) -> str:
    """A Grafana Explore link over the lines of several namespaces (a roll-up's)."""
    alternatives = "|".join(re.escape(ns) for ns in sorted(set(namespaces))[:20] if ns)
    return _explore(grafana_url, datasource_uid, '{namespace=~"' + _escape(alternatives or ".+") + '"}',
                    from_ns, to_ns)


def _explore(grafana_url: str, datasource_uid: str | None, expr: str, from_ns: int, to_ns: int) -> str:
    pane = {"datasource": datasource_uid or "", "queries": [{"refId": "A", "expr": expr}],
            "range": {"from": str(from_ns // 1_000_000), "to": str(to_ns // 1_000_000)}}
    panes = json.dumps({"triage": pane}, separators=(",", ":"))
    return f"{grafana_url.rstrip('/')}/explore?schemaVersion=1&orgId=1&panes={quote(panes, safe='')}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
