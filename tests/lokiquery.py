"""The LogQL subset the fake Loki evaluates, over an index fast enough for a million entries.

Log queries: a selector (=, !=, =~, !~) and line filters ``|=``, ``!=``, ``|~``, ``!~`` and (Loki 3.0)
the pattern filters ``|>``/``!>``. Metric queries: ``count_over_time(<log query> [range] offset d)``,
optionally inside ``sum(...)`` / ``sum by (labels) (...)``. Semantics as recorded and as in Loki's
source (tests/fixtures/loki/README.md): a range ``[r]`` at time t holds the entries of
``(t - r - offset, t - offset]``; range-query points are step-aligned, reported in float seconds (the
milliseconds of ``t - offset``, plus the offset in whole milliseconds), values as strings, and a
point with no entry is left out. Pattern filters use triage's mirror of Loki's ``Matcher.Test``
(triage/cluster/lokipattern.py), which tests/test_loki_count.py checks against the algorithm.

Speed: entries are indexed by stream and sorted by time; every filter's result is a bitmask per
stream, computed once and cached, so a chain of 50 ``!>`` costs 50 integer ANDs, not 50 passes.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from dataclasses import dataclass, field

from triage.cluster import lokipattern

NS = 10**9
_MATCHER = re.compile(r'\s*([A-Za-z_][\w]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
_STRING = r'"(?:[^"\\]|\\.)*"|`[^`]*`'
_FILTER = re.compile(r"\s*(\|=|!=|\|~|!~|\|>|!>)\s*(" + _STRING + ")", re.S)
# a label filter stage, e.g. Loki 3's `| detected_level=~"error|fatal"` (structured metadata or a label)
_LABEL_FILTER = re.compile(r'\s*\|\s*([A-Za-z_][\w]*)\s*(=~|!~|!=|==|=)\s*"((?:[^"\\]|\\.)*)"')
_DURATION = re.compile(r"(\d+)(ns|us|µs|ms|s|m|h|d|w|y)")
_UNIT_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": NS, "m": 60 * NS, "h": 3600 * NS,
            "d": 86400 * NS, "w": 7 * 86400 * NS, "y": 365 * 86400 * NS}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "\\": "\\", '"': '"', "'": "'"}


class QueryError(ValueError):
    """Loki would answer 400 with this body."""


def unquote(literal: str) -> str:
    """A LogQL string: a raw backtick string, or a double-quoted one with Go's escapes."""
    if literal.startswith("`"):
        return literal[1:-1]
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        code = body[i + 1]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            i += 2
        elif code == "x":
            out.append(chr(int(body[i + 2:i + 4], 16)))
            i += 4
        elif code == "u":
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        else:
            raise QueryError(f"parse error at line 1, col {i + 2}: invalid syntax")
    return "".join(out)


def parse_duration(text: str) -> int:
    pos, total = 0, 0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise QueryError(f'parse error : not a valid duration string: "{text}"')
    return total


def parse_query(query: str):
    """``(matchers, filters)`` of a log query; filters are ``(op, value)``."""
    text = query.strip()
    if not text.startswith("{"):
        raise QueryError("parse error at line 1, col 1: syntax error: unexpected IDENTIFIER")
    close = text.find("}")
    if close < 0:
        raise QueryError(f"parse error at line 1, col {len(text) + 1}: syntax error: unexpected $end, expecting }} or ,")
    inner, rest = text[1:close], text[close + 1:]
    matchers = []
    pos = 0
    while pos < len(inner):
        match = _MATCHER.match(inner, pos)
        if not match:
            raise QueryError(f"parse error at line 1, col {pos + 2}: syntax error: unexpected IDENTIFIER")
        matchers.append((match.group(1), match.group(2), match.group(3).replace('\\"', '"').replace("\\\\", "\\")))
        pos = match.end()
    filters = []
    pos = 0
    while rest[pos:].strip():
        label = _LABEL_FILTER.match(rest, pos)
        if label:
            op = "=" if label.group(2) == "==" else label.group(2)
            filters.append(("label", (label.group(1), op, label.group(3).replace('\\"', '"').replace("\\\\", "\\"))))
            pos = label.end()
            continue
        match = _FILTER.match(rest, pos)
        if not match:
            raise QueryError(f"parse error at line 1, col {len(query) + 1}: syntax error: unexpected $end, "
                             "expecting STRING or ip")
        op, value = match.group(1), unquote(match.group(2))
        if op in ("|>", "!>"):
            try:
                lokipattern.parse(value)
            except lokipattern.PatternError as err:
                raise QueryError(f"parse error at line 1, col {close + match.start(2) + 2}: {err}") from None
        filters.append((op, value))
        pos = match.end()
    return matchers, filters


def pre3_parse_error(query: str) -> str | None:
    """What a Loki older than 3.0 says about a pattern filter: its lexer knows ``|`` and ``>`` but not
    ``|>`` (and ``!`` alone is an identifier); the body keeps the recorded format (fixtures e, e2)."""
    for match in re.finditer(_STRING + r"|\|>|!>", query):
        token = match.group()
        if token == "|>":
            return f"parse error at line 1, col {match.start() + 2}: syntax error: unexpected >"
        if token == "!>":
            return f"parse error at line 1, col {match.start() + 1}: syntax error: unexpected IDENTIFIER"
    return None


@dataclass(frozen=True, slots=True)
class Metric:
    inner: str  # the log query
    range_ns: int
    offset_ns: int
    by: tuple[str, ...] | None  # None: keep every stream label (no sum); (): sum everything


def parse_metric(query: str) -> Metric | None:
    """A ``count_over_time`` query (with ``sum``/``sum by``), or None for a log query."""
    strings: list[str] = []

    def hide(match: re.Match) -> str:
        strings.append(match.group())
        return f'"\x00{len(strings) - 1}\x00"'

    skeleton = re.sub(_STRING, hide, query, flags=re.S).strip()
    if "count_over_time" not in skeleton:
        return None
    shape = re.fullmatch(
        r"(?:sum\s*(?:by\s*\(([^)]*)\))?\s*\(\s*)?count_over_time\s*\((.*)\[([^\]]+)\]\s*(?:offset\s+(\S+?))?\s*\)"
        r"\s*(\))?\s*(?:by\s*\(([^)]*)\))?", skeleton, re.S)
    if not shape:
        raise QueryError("parse error at line 1, col 1: syntax error: unexpected IDENTIFIER")
    summed = skeleton.startswith("sum")
    if summed != bool(shape.group(5)):
        raise QueryError(f"parse error at line 1, col {len(query) + 1}: syntax error: unexpected $end")
    labels = shape.group(1) if shape.group(1) is not None else shape.group(6)
    by = tuple(x.strip() for x in labels.split(",") if x.strip()) if labels is not None else (() if summed else None)
    inner = re.sub(r'"\x00(\d+)\x00"', lambda m: strings[int(m.group(1))], shape.group(2))
    return Metric(inner.strip(), parse_duration(shape.group(3).strip()),
                  parse_duration(shape.group(4)) if shape.group(4) else 0, by)


@dataclass(slots=True)
class Stream:
    labels: dict
    key: str
    ts: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    masks: dict = field(default_factory=dict)  # filter -> bitmask (bit i: entry i passes)
    positions: dict = field(default_factory=dict)  # filters -> sorted entry indices passing all

    @property
    def full(self) -> int:
        return (1 << len(self.ts)) - 1

    def mask(self, flt: tuple[str, str], regexes: dict) -> int:
        cached = self.masks.get(flt)
        if cached is not None:
            return cached
        op, value = flt
        if op == "label":  # on the stream's labels, its structured metadata included: all or none
            bits = self.full if _labels_match(self.labels, [value]) else 0
            self.masks[flt] = bits
            return bits
        if op in ("|=", "!="):
            hits = [value in line for line in self.lines]
        elif op in ("|~", "!~"):
            rx = regexes.setdefault(("re", value), re.compile(value))
            hits = [rx.search(line) is not None for line in self.lines]
        else:
            elements = lokipattern.parse(value)
            rx = regexes.setdefault(("pattern", value), lokipattern.to_regex(elements))
            longest = max((e for e in elements if e), key=len, default="")
            hits = [longest in line and rx.match(line) is not None for line in self.lines]
        bits = int("".join("1" if hit else "0" for hit in reversed(hits)) or "0", 2)
        if op in ("!=", "!~", "!>"):
            bits = self.full & ~bits
        self.masks[flt] = bits
        return bits

    def passing(self, filters: tuple, regexes: dict) -> int:
        mask = self.full
        for flt in filters:
            mask &= self.mask(flt, regexes)
        return mask

    def passing_positions(self, filters: tuple, regexes: dict) -> list[int]:
        cached = self.positions.get(filters)
        if cached is None:
            bits = bin(self.passing(filters, regexes))[2:][::-1]
            cached = self.positions[filters] = [i for i, bit in enumerate(bits) if bit == "1"]
        return cached

    def count(self, filters: tuple, regexes: dict, lo_ns: int, hi_ns: int) -> int:
        """Entries in ``[lo_ns, hi_ns)`` passing the filters."""
        start, end = bisect_left(self.ts, lo_ns), bisect_left(self.ts, hi_ns)
        if end <= start:
            return 0
        return ((self.passing(filters, regexes) >> start) & ((1 << (end - start)) - 1)).bit_count()


class Index:
    """Entries by stream, each stream sorted by time (insertion order kept for ties)."""

    def __init__(self, entries):
        streams: dict[str, Stream] = {}
        pending: dict[str, list] = {}
        keys: dict[int, tuple[dict, str]] = {}  # generated corpora share one dict per stream: key it once
        for labels, ts, line in entries:
            known = keys.get(id(labels))
            if known is None or known[0] is not labels:
                known = keys[id(labels)] = (labels, json.dumps(labels, sort_keys=True))
            key = known[1]
            if key not in streams:
                streams[key] = Stream(dict(labels), key)
                pending[key] = []
            pending[key].append((ts, line))
        for key, rows in pending.items():
            rows.sort(key=lambda row: row[0])
            streams[key].ts = [ts for ts, _ in rows]
            streams[key].lines = [line for _, line in rows]
        self.streams = list(streams.values())
        self.regexes: dict = {}
        self._selected: dict = {}

    def select(self, matchers) -> list[Stream]:
        key = tuple(matchers)
        if key not in self._selected:
            self._selected[key] = [s for s in self.streams if _labels_match(s.labels, matchers)]
        return self._selected[key]

    def log_query(self, query: str, start: int, end: int, limit: int, backward: bool) -> list[tuple[dict, int, str]]:
        matchers, filters = parse_query(query)
        filters = tuple(filters)
        chosen = []
        for stream in self.select(matchers):
            lo, hi = bisect_left(stream.ts, start), bisect_left(stream.ts, end)
            if hi <= lo:
                continue
            positions = stream.passing_positions(filters, self.regexes)
            a, b = bisect_left(positions, lo), bisect_left(positions, hi)
            picked = positions[max(a, b - limit):b] if backward else positions[a:min(b, a + limit)]
            chosen.extend((stream.ts[i], stream.key, stream.labels, stream.lines[i]) for i in picked)
        chosen.sort(key=lambda e: (e[0], e[1]), reverse=backward)
        return [(labels, ts, line) for ts, _, labels, line in chosen[:limit]]

    def metric(self, metric: Metric, times_ns: list[int]) -> list[tuple[dict, list[tuple[int, int]]]]:
        """``[(series labels, [(t, count), ...])]`` for evaluation times ``times_ns`` (zero counts left out)."""
        matchers, filters = parse_query(metric.inner)
        filters = tuple(filters)
        series: dict[str, tuple[dict, dict[int, int]]] = {}
        for stream in self.select(matchers):
            if metric.by is None:
                labels = dict(stream.labels)
            else:
                labels = {k: stream.labels[k] for k in metric.by if stream.labels.get(k)}
            key = json.dumps(labels, sort_keys=True)
            for t in times_ns:
                # (t - range - offset, t - offset] in whole nanoseconds is [t - range - offset + 1, t - offset + 1)
                n = stream.count(filters, self.regexes, t - metric.range_ns - metric.offset_ns + 1,
                                 t - metric.offset_ns + 1)
                if n:
                    points = series.setdefault(key, (labels, {}))[1]
                    points[t] = points.get(t, 0) + n
        return [(labels, sorted(points.items())) for labels, points in series.values()]

    def series(self, matchers, start: int, end: int) -> list[dict]:
        return [s.labels for s in self.select(matchers) if bisect_left(s.ts, start) < bisect_left(s.ts, end)]


def _labels_match(labels: dict, matchers) -> bool:
    for name, op, value in matchers:
        have = labels.get(name, "")
        if op == "=" and have != value or op == "!=" and have == value:
            return False
        if op == "=~" and not re.fullmatch(value, have) or op == "!~" and re.fullmatch(value, have):
            return False
    return True


def report_seconds(t_ns: int, offset_ns: int) -> float | int:
    """A metric point's timestamp as Loki writes it: milliseconds of ``t - offset`` plus the offset in
    whole milliseconds (integer division, pkg/logql/range_vector.go ``At``), as float seconds."""
    ms = (t_ns - offset_ns) // 10**6 + offset_ns // 10**6
    return ms // 1000 if ms % 1000 == 0 else ms / 1000  # Loki writes whole seconds without a fraction (f, j1)
