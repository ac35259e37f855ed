"""Times as an on-call engineer reads them (pure): second precision, UTC, and how long ago.

The report JSON keeps exact nanoseconds (``timeparse.format_ns``); people get
``2026-12-01 06:52:32 UTC (12 min ago)``. ``now_ns`` is always passed in.
"""

from __future__ import annotations

from datetime import UTC, datetime

from triage.timeparse import NS_PER_S

# A cluster whose last line is this close to the end of the window is "still happening".
STILL_HAPPENING_NS = 5 * 60 * NS_PER_S


def at(ts_ns: int, *, date: bool = True) -> str:
    moment = datetime.fromtimestamp(ts_ns // NS_PER_S, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if date else "%H:%M:%S UTC")


def clock(ts_ns: int) -> str:
    """``19:00``: the time of day, for run windows that start on the minute."""
    return datetime.fromtimestamp(ts_ns // NS_PER_S, tz=UTC).strftime("%H:%M")


def span(duration_ns: int) -> str:
    """A length of time, rounded to what matters: ``45 s``, ``12 min``, ``3 h``, ``3 h 20 min``, ``2 d 4 h``."""
    seconds = max(0, duration_ns) // NS_PER_S
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h" + (f" {minutes} min" if minutes and hours < 10 else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")


def ago(ts_ns: int, now_ns: int) -> str:
    delta = now_ns - ts_ns
    if delta < 0:
        return f"in {span(-delta)}"
    if delta < 60 * NS_PER_S:
        return "just now"
    return f"{span(delta)} ago"


def when(ts_ns: int, now_ns: int) -> str:
    """``2026-12-01 06:52:32 UTC (12 min ago)``; the date is dropped when it is today's."""
    same_day = ts_ns // (86400 * NS_PER_S) == now_ns // (86400 * NS_PER_S)
    return f"{at(ts_ns, date=not same_day)} ({ago(ts_ns, now_ns)})"


def lifetime(first_ns: int, last_ns: int, window_to_ns: int, now_ns: int, window_first_ns: int | None = None) -> str:
    """``started 06:40:12 UTC (12 min ago), still happening`` or ``… for 3 h, last seen 05:10:00 UTC (2 h ago)``.

    For a problem known before (``window_first_ns`` later than ``first_ns`` by more than a minute) the
    window's own start leads and the first sighting follows: ``since 03:00:01 UTC (1 h ago), still
    happening · first seen 2026-11-23 08:00:01 UTC (8 d ago)``.
    """
    older = window_first_ns is not None and window_first_ns - first_ns > 60 * NS_PER_S
    start = window_first_ns if older else first_ns
    if last_ns <= start:
        text = f"once, {when(start, now_ns)}"
    else:
        text = f"{'since' if older else 'started'} {when(start, now_ns)}, "
        if window_to_ns - last_ns <= STILL_HAPPENING_NS:
            text += "still happening"
        else:
            text += f"for {span(last_ns - start)}, last seen {when(last_ns, now_ns)}"
    return text + (f" · first seen {when(first_ns, now_ns)}" if older else "")


def window(from_ns: int, to_ns: int, now_ns: int) -> str:
    """``2026-12-01 06:00:00 → 07:00:00 UTC (1 h)``."""
    same_day = from_ns // (86400 * NS_PER_S) == (to_ns - 1) // (86400 * NS_PER_S)
    end = at(to_ns, date=not same_day)
    start = at(from_ns).removesuffix(" UTC")
    return f"{start} → {end} ({span(to_ns - from_ns)})"
