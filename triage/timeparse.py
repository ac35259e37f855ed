"""Parsing of DURATION and TIME values (pure).

DURATION: ``90s``, ``15m``, ``1h``, ``2d``, ``1h30m``, ``1w`` (also ``500ms``).
TIME: RFC3339 (``2026-11-23T07:00:00Z``, offsets allowed, fractional seconds to the
nanosecond) or integer nanoseconds since the epoch.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

NS_PER_S = 1_000_000_000

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_NS = {
    "ms": 1_000_000,
    "s": NS_PER_S,
    "m": 60 * NS_PER_S,
    "h": 3600 * NS_PER_S,
    "d": 86400 * NS_PER_S,
    "w": 7 * 86400 * NS_PER_S,
}
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:?\d{2})$"
)


def parse_duration_ns(text: str) -> int:
    """``"1h30m"`` -> nanoseconds. Raises ValueError with a message meant for users."""
    value = str(text).strip().lower()
    if not value:
        raise ValueError("empty duration (use e.g. 90s, 15m, 1h, 2d, 1h30m)")
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    if pos != len(value) or pos == 0:
        raise ValueError(f"invalid duration {text!r} (use e.g. 90s, 15m, 1h, 2d, 1h30m)")
    return int(total)


def parse_duration(text: str) -> timedelta:
    return timedelta(microseconds=parse_duration_ns(text) / 1000)


def parse_time_ns(text: str) -> int:
    """RFC3339 or integer nanoseconds -> nanoseconds since the epoch (UTC)."""
    value = str(text).strip()
    if value.isdigit():
        return int(value)
    match = _RFC3339.match(value)
    if not match:
        raise ValueError(
            f"invalid time {text!r} (use RFC3339 like 2026-11-23T07:00:00Z or integer nanoseconds)"
        )
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        base = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    except ValueError as err:
        raise ValueError(f"invalid time {text!r}: {err}") from None
    offset_s = 0
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset_s = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    seconds = int(base.timestamp()) - offset_s
    nanos = int((fraction or "0").ljust(9, "0"))
    return seconds * NS_PER_S + nanos


def format_ns(ts_ns: int) -> str:
    """Nanoseconds -> RFC3339 UTC with as much precision as the value has."""
    seconds, nanos = divmod(ts_ns, NS_PER_S)
    base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos == 0:
        return base + "Z"
    if nanos % 1_000_000 == 0:
        return f"{base}.{nanos // 1_000_000:03d}Z"
    return f"{base}.{nanos:09d}".rstrip("0") + "Z"


def timedelta_to_ns(delta: timedelta) -> int:
    """Exact: no float on the way (config durations are timedeltas, the pipeline counts in ns)."""
    return (delta.days * 86400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


def datetime_to_ns(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC datetime")
    return timedelta_to_ns(moment - datetime(1970, 1, 1, tzinfo=UTC))


def format_duration_ns(duration_ns: int) -> str:
    """Nanoseconds -> the shortest DURATION text (``3600e9`` -> ``1h``)."""
    seconds = duration_ns // NS_PER_S
    if seconds == 0:
        return f"{duration_ns // 1_000_000}ms"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)
