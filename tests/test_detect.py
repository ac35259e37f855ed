"""Detection rules, table-driven, with explicit times."""

import pytest

from triage.records import ClusterWindow, History, Status, Window
from triage.state.detect import DetectRules, classify, is_muted

H = 3600 * 10**9
RULES = DetectRules(quiet_period_ns=24 * H, spike_factor=5, spike_min_count=20, spike_min_history_ns=6 * H,
                    spike_lookback_ns=7 * 24 * H)
WINDOW = Window(100 * H, 101 * H)


def cluster(count, first=100 * H):
    c = ClusterWindow("fp", "t", {})
    c.count, c.first_ns, c.last_ns = count, first, first
    return c


@pytest.mark.parametrize("history, count, expected", [
    (History(known=False), 1, Status.NEW),
    (History(known=True, last_bucket_before_ns=50 * H, first_bucket_ns=40 * H, baseline_count=5), 1, Status.REGRESSED),
    (History(known=True, last_bucket_before_ns=99 * H, first_bucket_ns=80 * H, baseline_count=20), 100, Status.SPIKING),
    (History(known=True, last_bucket_before_ns=99 * H, first_bucket_ns=80 * H, baseline_count=20), 4, Status.ONGOING),
    # 20 in one hour is only 4x a baseline of 100 over 20h (5/h): not a spike
    (History(known=True, last_bucket_before_ns=99 * H, first_bucket_ns=80 * H, baseline_count=100), 20, Status.ONGOING),
    # too little history for a spike
    (History(known=True, last_bucket_before_ns=99 * H, first_bucket_ns=97 * H, baseline_count=1), 500, Status.ONGOING),
    # below the minimum count
    (History(known=True, last_bucket_before_ns=99 * H, first_bucket_ns=80 * H, baseline_count=1), 19, Status.ONGOING),
    # known but never counted before the window (e.g. counted only in a later window): not regressed
    (History(known=True), 50, Status.ONGOING),
])
def test_classify(history, count, expected):
    assert classify(cluster(count), history, WINDOW, RULES) is expected


def test_quiet_period_boundary():
    just = History(known=True, last_bucket_before_ns=76 * H - 60 * 10**9, first_bucket_ns=70 * H, baseline_count=1)
    assert classify(cluster(1), just, WINDOW, RULES) is Status.REGRESSED
    almost = History(known=True, last_bucket_before_ns=76 * H, first_bucket_ns=70 * H, baseline_count=1)
    assert classify(cluster(1), almost, WINDOW, RULES) is Status.ONGOING


def test_muted_until():
    assert is_muted(History(known=True, muted_until_ns=10), 5)
    assert not is_muted(History(known=True, muted_until_ns=10), 10)
    assert not is_muted(History(known=True), 5)


def test_first_seen_inside_the_window_with_no_sighting_before_is_new():
    """A window read again after a partial run: the cluster is known (that run saw it) but still new."""
    again = History(known=True, first_seen_ns=100 * H + 5, last_seen_ns=100 * H + 9)
    assert classify(cluster(3), again, WINDOW, RULES) is Status.NEW
    older = History(known=True, first_seen_ns=10 * H, last_bucket_before_ns=99 * H)
    assert classify(cluster(3), older, WINDOW, RULES) is Status.ONGOING


def test_a_comeback_is_one_episode_and_a_later_comeback_another():
    from triage.records import Finding
    from triage.state.detect import comeback_anchor, episodes_to_open

    back = History(known=True, last_bucket_before_ns=50 * H, first_bucket_ns=40 * H, baseline_count=5)
    assert comeback_anchor(Status.REGRESSED, back) == 50 * H and comeback_anchor(Status.NEW, History(False)) == 0
    finding = Finding(cluster(1), Status.REGRESSED, False, 40 * H, 100 * H, anchor_ns=50 * H)
    opened: set[tuple] = set()

    def step(findings):
        episodes, already = episodes_to_open(findings, now_ns=101 * H, spike_cooldown_ns=6 * H,
                                             report_muted_spikes=True, last_spike_ns=lambda fp: None,
                                             has_episode=lambda fp, kind, anchor: (fp, kind, anchor) in opened)
        opened.update(episodes)
        return episodes, already

    assert step([finding]) == ([("fp", "regressed", 50 * H)], set())
    assert step([finding]) == ([], {"fp"})  # the same window read again
    later = Finding(cluster(1), Status.REGRESSED, False, 40 * H, 200 * H, anchor_ns=150 * H)
    assert step([later]) == ([("fp", "regressed", 150 * H)], set())
