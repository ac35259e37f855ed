import pytest

from triage.timeparse import format_duration_ns, format_ns, parse_duration_ns, parse_time_ns

S = 10**9


@pytest.mark.parametrize("text, ns", [
    ("90s", 90 * S), ("15m", 900 * S), ("1h", 3600 * S), ("2d", 2 * 86400 * S), ("1h30m", 5400 * S),
    ("500ms", S // 2), ("1w", 7 * 86400 * S), (" 1H ", 3600 * S),
])
def test_durations(text, ns):
    assert parse_duration_ns(text) == ns


@pytest.mark.parametrize("text", ["", "1", "h", "1x", "1h 30m", "-1h", "1h30", "abc"])
def test_bad_durations_say_what_is_expected(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration_ns(text)


@pytest.mark.parametrize("text, ns", [
    ("2026-11-23T07:00:00Z", 1795417200 * S),
    ("2026-11-23T08:00:00+01:00", 1795417200 * S),
    ("2026-11-23T07:00:00.123456789Z", 1795417200 * S + 123456789),
    ("2026-11-23T07:00:00.5Z", 1795417200 * S + 500_000_000),
    ("1795371286123456789", 1795371286123456789),
])
def test_times(text, ns):
    assert parse_time_ns(text) == ns


@pytest.mark.parametrize("text", ["yesterday", "2026-11-23", "2026-13-01T00:00:00Z", "2026-11-23T07:00:00", "-5"])
def test_bad_times(text):
    with pytest.raises(ValueError, match="time"):
        parse_time_ns(text)


def test_format_round_trips_to_the_nanosecond():
    for ns in (1795371286123456789, 1795417200 * S, 1795417200 * S + 5_000_000):
        assert parse_time_ns(format_ns(ns)) == ns
    assert format_ns(1795417200 * S) == "2026-11-23T07:00:00Z"
    assert format_duration_ns(5400 * S) == "1h30m"
