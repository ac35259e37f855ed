"""Which clusters a message carries as cards, in what order, and the roll-up of the rest (deliver.plan, pure)."""

from __future__ import annotations

import pytest

from triage.deliver.plan import ERROR, FATAL, OTHER, WARN, plan_message, rollup_line, severity
from triage.records import ClusterWindow, Finding, Status


def finding(fp: str, status: Status = Status.NEW, count: int = 1, template: str = "something <*> happened",
            samples: tuple[str, ...] = (), namespace: str = "prod", app: str = "api") -> Finding:
    cluster = ClusterWindow(fp, template, {"namespace": namespace, "app": app}, count=count, samples=list(samples))
    return Finding(cluster, status, False, 0, 0)


@pytest.mark.parametrize("template, sample, expected", [
    # Go panic, Kubernetes OOM kill, JVM OOM: fatal whatever the level field says
    ("panic: runtime error: index out of range <*>", "panic: runtime error: index out of range [3]", FATAL),
    ("container <*> OOMKilled", 'level=info msg="container app OOMKilled"', FATAL),
    ("java.lang.OutOfMemoryError: Java heap space", "java.lang.OutOfMemoryError: Java heap space", FATAL),
    # JSON and logfmt level fields decide over the words in the text
    ("retrying after error <*>", '{"level":"warn","msg":"retrying after error 3"}', WARN),
    ("request <*> done", "level=error msg=\"request 4 done\"", ERROR),
    ("cache <*> refreshed", '{"level":"info","msg":"cache 2 refreshed"}', OTHER),
    # plain lines: the level word, else the text
    ("WARN disk <*> almost full", "WARN disk 3 almost full", WARN),
    ("connection refused to <*>", "connection refused to 10.0.0.1", ERROR),
])
def test_severity_from_the_level_and_the_text(template, sample, expected):
    assert severity(finding("a", template=template, samples=(sample,))) == expected


def test_cards_rank_status_then_severity_then_count_and_the_rest_roll_up_exactly():
    findings = [
        finding("warn-big", count=900, template="WARN slow <*>", samples=("WARN slow 3",)),
        finding("err-small", count=2, samples=("level=error msg=x",)),
        finding("panic", count=1, template="panic: nil map", samples=("panic: nil map",), namespace="shop", app="cart"),
        finding("spike", Status.SPIKING, count=5000),
        finding("regressed", Status.REGRESSED, count=1),
        *(finding(f"rest{i}", count=1, namespace="data", app="reports") for i in range(7)),
        finding("odd", count=1, namespace="shop", app="orders"),
    ]
    plan = plan_message("slack", findings, 4, full_list="state/digests/x.md")
    assert [f.cluster.fingerprint for f in plan.cards] == ["panic", "err-small", "odd", "rest0"]
    rollup = plan.rollup
    assert rollup.total == len(findings) - 4 == len(rollup.fingerprints)
    assert rollup.by_place == (("data/reports", 6), ("prod/api", 3)) and rollup.other_places == 0
    assert dict(rollup.by_status) == {"new": 7, "regressed": 1, "spiking": 1}
    line = rollup_line(rollup, quote=lambda v: f"`{v}`")
    assert line.startswith("and 9 more (7 new, 1 regressed, 1 spiking): 6 in `data/reports`, 3 in `prod/api` (")
    assert "(full list: the digest file `state/digests/x.md`)" in line
    smaller = plan.limit(1)
    assert len(smaller.cards) == 1 and smaller.rollup.total == len(findings) - 1
    assert set(smaller.rollup.fingerprints) | {"panic"} == {f.cluster.fingerprint for f in findings}


def test_a_rollup_names_the_largest_places_and_sums_up_the_rest():
    findings = [finding(f"f{i}", namespace=f"team{i % 12}", app="svc") for i in range(40)]
    plan = plan_message("email", findings, 0)
    rollup = plan.rollup
    assert len(rollup.by_place) == 8 and rollup.other_places == 4
    assert sum(n for _, n in rollup.by_place) + rollup.other_count == 40
    assert rollup_line(rollup).endswith(f"{rollup.other_count} in 4 other places")
    assert plan_message("email", findings, 40).rollup is None
