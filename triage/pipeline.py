"""The only wiring: ``build_deps`` makes the adapters, ``run`` drives the stages.

source -> extract -> redact -> cluster -> detect -> digest -> deliver, with the state read at
the start and written once, in one transaction, at the end.
"""

from __future__ import annotations

import logging
import os
import uuid
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from triage.cluster.miner import Miner, grouping_version
from triage.config import Config
from triage.deliver.file import FileChannel
from triage.digest import DigestInput, NightlyFacts, render_digest
from triage.errors import ExitCode, LokiQueryError, SourceError, TriageError, UsageError, worst_exit_code
from triage.extract import extract
from triage.records import (
    HIST_BINS, STATUS_RANK, ClusterWindow, Finding, Schedule, SourceStatus, Status, Window, bucket_of,
)
from triage.redact import RULES_VERSION, redact
from triage.report import ClusterEntry, RunReport, write_report
from triage.source import RangeFailure, Source
from triage.state.db import ClusterUpdate, RunRecord, StateStore
from triage.state.detect import DetectRules, classify, is_muted
from triage.state.lock import RunLock
from triage.summarize.provider import LlmProvider
from triage.summarize.stage import Budget, StageResult, disabled, from_cache_only, summarize, unavailable
from triage.telemetry import NullTelemetry, Telemetry
from triage.timeparse import NS_PER_S, datetime_to_ns, timedelta_to_ns

log = logging.getLogger(__name__)

HOUR_NS = 3600 * NS_PER_S
APP_LABELS = ("app", "app_kubernetes_io_name", "service_name", "container", "job")


@dataclass(frozen=True, slots=True)
class RunOptions:
    schedule: Schedule = Schedule.MANUAL
    since_ns: int | None = None
    from_ns: int | None = None
    to_ns: int | None = None
    dry_run: bool = False
    prime: bool = False
    notify: tuple[str, ...] | None = None
    no_llm: bool = False
    refresh_summaries: bool = False
    wait_s: float | None = None
    report_json: Path | None = None


@dataclass(slots=True)
class Deps:
    sources: list[Source]
    state_path: Path
    file_channel: FileChannel
    llm: LlmProvider | None = None
    prompts_dir: Path | None = None
    channels: list[str] = field(default_factory=lambda: ["file"])
    telemetry: NullTelemetry = field(default_factory=NullTelemetry)
    progress: Callable[[str], None] | None = None  # a person at a terminal: stage-by-stage progress
    senders: dict = field(default_factory=dict)  # channel name -> SlackChannel / EmailChannel / WebhookChannel
    new_run_id: Callable[[], str] = lambda: uuid.uuid4().hex
    lock_sleep: Callable[[float], None] | None = None


def build_deps(cfg: Config, environ: dict[str, str] | None = None,
               progress: Callable[[str], None] | None = None, notify: tuple[str, ...] | None = None,
               schedule: str = "manual") -> Deps:
    from triage.source.build import build_source  # keeps `triage cluster` free of requests
    from triage.summarize.prompts import default_prompts_dir

    environ = dict(os.environ if environ is None else environ)
    telemetry = Telemetry(schedule=schedule, pushgateway_url=cfg.pushgateway.url or None, job=cfg.pushgateway.job,
                          environ=environ, push_timeout_s=cfg.pushgateway.timeout_s)
    llm = None
    if cfg.llm.effective_mode() != "off":
        llm = LlmProvider(cfg.llm, environ, log_dir=cfg.state.path.parent,
                          progress=progress)
    return Deps(
        sources=[build_source(spec, cfg, tracer=telemetry.tracer) for spec in cfg.sources],
        telemetry=telemetry,
        state_path=cfg.state.path,
        file_channel=FileChannel(cfg.digest.dir, cfg.digest.keep),
        llm=llm,
        prompts_dir=cfg.llm.prompts_dir or default_prompts_dir(),
        channels=cfg.channels(),
        senders=build_senders(cfg, notify),
    )


def build_senders(cfg: Config, notify: tuple[str, ...] | None) -> dict:
    """The channels this run sends to: --notify, else every configured one."""
    configured = cfg.channels()
    wanted = list(notify) if notify else configured
    for name in wanted:
        if name not in ("file", "slack", "email", "webhook"):
            raise UsageError(f"--notify {name}: unknown channel (use file, slack, email, webhook)")
        if name not in configured:
            raise UsageError(f"--notify {name}: the {name} channel is not configured")
    senders: dict = {}
    if "slack" in wanted:
        from triage.deliver.slack import SlackChannel

        senders["slack"] = SlackChannel(cfg.slack.webhook_url, timeout_s=cfg.slack.timeout_s,
                                        max_retries=cfg.slack.max_retries)
    if "email" in wanted:
        from triage.deliver.email import EmailChannel

        email = cfg.email
        senders["email"] = EmailChannel(email.host, email.effective_port(), tls=email.tls, sender=email.from_,
                                        recipients=email.to, username=email.username, password=email.password,
                                        ca_file=email.ca_file, timeout_s=email.timeout_s)
    if "webhook" in wanted:
        from triage.deliver.webhook import WebhookChannel

        senders["webhook"] = WebhookChannel(cfg.webhook.url, timeout_s=cfg.webhook.timeout_s)
    return senders


def resolve_window(cfg: Config, options: RunOptions, now_ns: int, last_end_ns: int | None) -> Window:
    """The run's ``[from, to)``. See INTERFACE.md "Window when none is given"."""
    if options.from_ns is not None or options.to_ns is not None:
        if options.from_ns is None or options.to_ns is None:
            raise UsageError("--from and --to go together")
        if options.from_ns >= options.to_ns:
            raise UsageError("--from must be before --to")
        return Window(options.from_ns, options.to_ns)
    to_ns = now_ns - timedelta_to_ns(cfg.loki.delay)
    if options.since_ns is not None:
        return Window(to_ns - options.since_ns, to_ns)
    if options.schedule is Schedule.MANUAL:
        return Window(to_ns - HOUR_NS, to_ns)
    default_ns = HOUR_NS if options.schedule is Schedule.HOURLY else 24 * HOUR_NS
    if last_end_ns is None:
        return Window(to_ns - default_ns, to_ns)
    catchup_ns = timedelta_to_ns(cfg.run.max_catchup)
    return Window(min(max(last_end_ns, to_ns - catchup_ns), to_ns), to_ns)


def run(cfg: Config, deps: Deps, options: RunOptions, now: datetime) -> RunReport:
    """Run the job once. Raises TriageError for what stops a run; other outcomes are in the report."""
    now_ns = datetime_to_ns(now)
    report = RunReport(run_id=deps.new_run_id(), schedule=str(options.schedule), dry_run=options.dry_run)
    telemetry = deps.telemetry
    report.trace_id = telemetry.trace_id
    lock = None if options.dry_run else RunLock(deps.state_path, **({"sleep": deps.lock_sleep} if deps.lock_sleep else {}))
    state: StateStore | None = None
    try:
        if options.from_ns is not None or options.to_ns is not None:
            report.window = resolve_window(cfg, options, now_ns, None)  # a usage error before touching the state
        if lock is not None:
            lock.acquire(options.wait_s)
        state = StateStore.snapshot(deps.state_path) if options.dry_run else StateStore.open(deps.state_path)
        source_names = [s.name for s in deps.sources]
        window = resolve_window(cfg, options, now_ns, state.last_complete_run_end(str(options.schedule), source_names))
        report.window = window
        _run_stages(cfg, deps, options, state, window, now_ns, report)
    except TriageError as err:
        report.exit_code = int(err.exit_code)
        report.error = str(err)
        raise
    except KeyboardInterrupt:
        report.exit_code = int(ExitCode.INTERRUPTED)
        report.error = "interrupted"
        raise
    finally:
        if state is not None:
            state.close()
        if lock is not None:
            lock.release()
        # A dry run pushes no metrics (it must not look like a run) but still flushes its trace.
        telemetry.finish(report, success=report.exit_code == 0, push=not options.dry_run)
        if options.report_json is not None:
            try:
                write_report(report, options.report_json)
            except OSError as err:
                log.error("could not write the report to %s: %s", options.report_json, err.strerror)
    return report


@dataclass(slots=True)
class _Tally:
    """What the stages accumulate over all sources, bounded by the number of clusters."""

    clusters: dict[str, ClusterWindow] = field(default_factory=dict)
    counts: dict[tuple[str, str, int], int] = field(default_factory=dict)
    coverage: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    lines: int = 0


def _run_stages(cfg: Config, deps: Deps, options: RunOptions, state: StateStore, window: Window,
                now_ns: int, report: RunReport) -> None:
    version = grouping_version(cfg.group_positions(), _redaction_spec(cfg))
    miner = Miner(version)
    for known in state.known_clusters():
        miner.restore(known.fingerprint, known.group, known.template)
    notes: list[str] = []
    previous_version = state.meta("grouping_version")
    if previous_version and previous_version != version:
        notes.append(f"The grouping rules changed ({previous_version} → {version}): problems already known may "
                     "show once more under new fingerprints.")

    tally = _Tally()
    telemetry = deps.telemetry
    with telemetry.stage("read"):
        for source in deps.sources:
            report.sources.append(_read_source(cfg, source, window, state, miner, tally))
            telemetry.count_loki_requests(getattr(source, "requests_by_status", {}))
        _apply_merges(miner, tally)
    _say(deps, f"read {tally.lines} lines into {len(tally.clusters)} clusters")
    report.lines = tally.lines
    for status in report.sources:
        if not status.ok:
            log.warning("source %s failed: %s", status.name, status.error)

    with telemetry.stage("detect"):
        findings = _detect(cfg, state, tally, window, now_ns)
    _stages_after_detect(cfg, deps, options, state, window, now_ns, report, tally, findings, miner, version,
                         previous_version, notes)


def _detect(cfg: Config, state: StateStore, tally: _Tally, window: Window, now_ns: int) -> list[Finding]:
    histories = state.history(tally.clusters.keys(), window.from_ns,
                              timedelta_to_ns(cfg.detect.spike_lookback))
    rules = _rules(cfg)
    findings = []
    for fingerprint, cluster in tally.clusters.items():
        history = histories[fingerprint]
        findings.append(Finding(
            cluster=cluster,
            status=classify(cluster, history, window, rules),
            muted=is_muted(history, now_ns) or _config_muted(cfg, fingerprint, now_ns),
            first_seen_ns=min(history.first_seen_ns or cluster.first_ns, cluster.first_ns),
            last_seen_ns=max(history.last_seen_ns or cluster.last_ns, cluster.last_ns),
        ))
    findings.sort(key=lambda f: (STATUS_RANK[f.status], -f.cluster.count, f.cluster.fingerprint))
    return findings


def _stages_after_detect(cfg: Config, deps: Deps, options: RunOptions, state: StateStore, window: Window, now_ns: int,
                         report: RunReport, tally: _Tally, findings: list[Finding], miner: Miner, version: str,
                         previous_version: str | None, notes: list[str]) -> None:
    telemetry = deps.telemetry
    schedule = Schedule(options.schedule)
    prime, prime_reason = _priming(cfg, options, state, previous_version, version)
    if prime_reason:
        notes.append(prime_reason)
    reportable = _reportable(findings, schedule, cfg.detect.report_muted_spikes)
    cards = reportable[: cfg.digest.max_cards]
    by_status = {str(s): sum(1 for f in findings if f.status is s) for s in Status}
    for note in (f"{source.name}: {source.notes.skipped_outside_window} entries outside the window were skipped"
                 for source in deps.sources if source.notes.skipped_outside_window):
        notes.append(note)
    if cards and deps.llm is not None and not options.no_llm:
        _say(deps, f"summarizing up to {min(len(cards), cfg.llm.max_clusters)} cards with the LLM")
    with telemetry.stage("summarize"):
        llm_result = _summarize(cfg, deps, options, cards, state)
    report.llm = llm_result.stats.to_json()
    telemetry.observe_llm(llm_result.stats)
    push_warning = None if options.dry_run else telemetry.check_pushgateway()
    if llm_result.stats.unavailable:
        notes.append(f"AI summaries unavailable in this run ({llm_result.stats.unavailable}); cards show raw templates.")
    explore = _explore_links(cfg, findings, window)
    base = DigestInput(
        run_id=report.run_id, schedule=str(options.schedule), window=window, generated_ns=now_ns,
        sources=report.sources, lines=tally.lines, cards=cards, more=len(reportable) - len(cards),
        clusters_total=len(findings), by_status=by_status, muted=sum(1 for f in findings if f.muted),
        state_path=str(deps.state_path), dry_run=options.dry_run, notes=notes, prime=prime,
        summaries=llm_result.summaries, llm_stats=llm_result.stats, llm_model=llm_result.model,
        prompt_version=llm_result.prompt_version, explore=explore, trace_id=telemetry.trace_id,
        footer_warnings=[push_warning] if push_warning else [],
        nightly=nightly_facts(state, findings, window, now_ns, llm_result.summaries)
        if schedule is Schedule.NIGHTLY else None,
    )
    with telemetry.stage("render"):
        digest = render_digest(base)
    codes = [_source_exit_code(status, source) for status, source in zip(report.sources, deps.sources)]
    reported: dict[str, list[str]] = {}
    if options.dry_run:
        report.digest_text = digest
    else:
        delivery = deps.file_channel.send(digest, generated_ns=now_ns, schedule=str(options.schedule),
                                          run_id=report.run_id)
        report.deliveries.append({"channel": delivery.channel, "ok": delivery.ok, "error": delivery.error})
        if delivery.ok:
            report.digest_path = str(deps.file_channel.last_path)
            for finding in cards:
                reported.setdefault(finding.cluster.fingerprint, []).append("file")
        else:
            codes.append(ExitCode.DELIVERY_FAILED)
            log.error("delivery %s failed: %s", delivery.channel, delivery.error)
    delivered_file = bool(report.deliveries and report.deliveries[0]["ok"])

    if not options.dry_run:
        carded = {f.cluster.fingerprint for f in cards} if delivered_file else set()
        with telemetry.stage("commit"):
            state.commit_run(
                run=RunRecord(
                    run_id=report.run_id, schedule=str(options.schedule), sources=[s.name for s in deps.sources],
                    from_ns=window.from_ns, to_ns=window.to_ns, started_ns=now_ns, finished_ns=now_ns,
                    exit_code=int(worst_exit_code(codes)), complete=all(s.ok for s in report.sources),
                    lines=tally.lines, clusters=len(findings),
                    figures={"by_status": by_status, "cards": len(cards), "prime": prime},
                ),
                clusters=_updates(findings, tally, version, carded, now_ns),
                counts=tally.counts,
                coverage=tally.coverage,
                grouping_version=version,
                summaries=llm_result.new_cache,
                aliases=miner.aliases(),
                episodes=_episodes_to_open(cfg, state, findings, now_ns),
                channels=deps.channels,
                primed=prime,
                sent_now=["file"] if delivered_file else [],
                new_channels_primed=cfg.new_channels_primed,
                prune_before_ns=now_ns - timedelta_to_ns(cfg.state.retention),
            )
        if not prime:
            from triage.deliver.dispatch import dispatch

            with telemetry.stage("deliver"):
                results = dispatch(deps, state, base, findings, report, now_ns, send_when_quiet=cfg.digest.send_when_quiet)
            for result in results:
                report.deliveries.append({"channel": result.channel, "ok": result.ok, "error": result.error})
                if not result.ok:
                    codes.append(ExitCode.DELIVERY_FAILED)
                    log.error("delivery %s failed: %s", result.channel, result.error)
                elif result.error:
                    log.warning("delivery %s: %s", result.channel, result.error)
                for fingerprint in result.fingerprints if result.ok else ():
                    reported.setdefault(fingerprint, []).append(result.channel)
    report.prime = prime
    for finding in findings:
        summary = llm_result.summaries.get(finding.cluster.fingerprint)
        summary = summary.to_json(finding.cluster.template) if summary else None
        report.clusters.append(ClusterEntry(finding, reported.get(finding.cluster.fingerprint, []), summary))
    report.exit_code = int(worst_exit_code(codes))


def _say(deps: Deps, text: str) -> None:
    if deps.progress is not None:
        deps.progress(text)


def _updates(findings: list[Finding], tally: _Tally, version: str, carded: set[str], now_ns: int) -> list:
    counted: dict[str, int] = {}
    for (fingerprint, _, _), count in tally.counts.items():
        counted[fingerprint] = counted.get(fingerprint, 0) + count
    return [_update(f, version, counted.get(f.cluster.fingerprint, 0),
                    now_ns if f.cluster.fingerprint in carded else None) for f in findings]


def nightly_facts(state: StateStore, findings: list[Finding], window: Window, now_ns: int,
                  summaries: dict | None = None) -> NightlyFacts:
    """The day's picture from the state: what the day's runs (the hourly ones too) reported, totals against
    the day before, top ongoing, gone quiet. The rules are in ``digest.day``; this only reads the state."""
    from triage.digest.day import day_facts
    from triage.state.day import episodes_opened

    day_ns = window.duration_ns
    titles = {fp: s.text.title for fp, s in (summaries or {}).items() if s.text is not None and s.text.title}
    return day_facts(
        findings, window, episodes=episodes_opened(state, window.from_ns, window.to_ns),
        previous_total=state.total_count(window.from_ns - day_ns, window.from_ns),
        quiet_rows=state.counted_between(window.from_ns - day_ns, window.from_ns), titles=titles,
    )


def _priming(cfg: Config, options: RunOptions, state: StateStore, previous_version: str | None,
             version: str) -> tuple[bool, str | None]:
    """A prime run records every cluster as known and reported, and sends nothing."""
    if options.prime:
        return True, "This was a prime run (--prime): every cluster is now known and counted as reported; nothing was sent."
    if options.schedule is Schedule.MANUAL:
        return False, None
    if cfg.run.auto_prime and state.run_count() == 0:
        return True, ("This was a prime run: the state had no previous run, so every current cluster is recorded "
                      "as known and nothing was sent. From the next run on, only what changes is reported.")
    if previous_version and previous_version != version:
        return True, ("This run primed itself because the grouping rules changed: clusters are recorded under the "
                      "new rules and nothing was sent, rather than reporting every problem as new.")
    return False, None


def _episodes_to_open(cfg: Config, state: StateStore, findings: list[Finding], now_ns: int) -> list[tuple[str, str]]:
    """An episode opens when a cluster becomes new, regressed or spiking (spiking at most once per cooldown)."""
    cooldown_ns = timedelta_to_ns(cfg.detect.spike_cooldown)
    episodes = []
    for finding in findings:
        if finding.status is Status.ONGOING:
            continue
        if finding.muted and not (cfg.detect.report_muted_spikes and finding.status is Status.SPIKING):
            continue
        if finding.status is Status.SPIKING:
            last = state.last_episode_ns(finding.cluster.fingerprint, str(Status.SPIKING))
            if last is not None and now_ns - last < cooldown_ns:
                continue
        episodes.append((finding.cluster.fingerprint, str(finding.status)))
    return episodes


def _explore_links(cfg: Config, findings: list[Finding], window: Window) -> dict[str, str]:
    if not cfg.digest.grafana_url:
        return {}
    from triage.deliver.content import explore_url

    return {f.cluster.fingerprint: explore_url(cfg.digest.grafana_url, cfg.digest.grafana_datasource_uid,
                                               f.cluster.group_labels, f.cluster.template, window.from_ns, window.to_ns,
                                               samples=f.cluster.samples)
            for f in findings}


def _apply_merges(miner: Miner, tally: _Tally) -> None:
    """Clusters that merged during the run (a word position proved variable) become one, under the
    oldest fingerprint, with the miner's generalised template."""
    merged: dict[str, ClusterWindow] = {}
    for fingerprint, cluster in tally.clusters.items():
        root = miner.get(fingerprint)
        survivor = root.fingerprint if root else fingerprint
        if survivor in merged:
            merged[survivor].absorb(cluster)
        else:
            cluster.fingerprint = survivor
            merged[survivor] = cluster
        if root is not None:
            merged[survivor].template = root.text
    tally.clusters = merged
    counts: dict[tuple[str, str, int], int] = {}
    for (fingerprint, source, bucket), count in tally.counts.items():
        key = (miner.resolve(fingerprint), source, bucket)
        counts[key] = counts.get(key, 0) + count
    tally.counts = counts


def _summarize(cfg: Config, deps: Deps, options: RunOptions, cards: list[Finding], state: StateStore) -> StageResult:
    if options.no_llm or deps.llm is None:
        return disabled(cards)
    if not cards:
        return StageResult({}, disabled([]).stats, {})
    from triage.summarize.llama import LlmError
    from triage.summarize.models import ModelError
    from triage.summarize.prompts import CARD_PROMPT, PromptRegistry

    registry = PromptRegistry(deps.prompts_dir)
    prompt_version = registry.get(CARD_PROMPT).version
    llm = cfg.llm
    known_model = deps.llm.known_model()
    if known_model and not options.refresh_summaries:
        cached = from_cache_only(cards, model=known_model, registry=registry, lookup=state.cached_summaries)
        if cached is not None:
            return cached
    try:
        with deps.llm.session() as session:
            result = summarize(
                cards, client=session.client, model=session.model, slots=session.slots, registry=registry,
                lookup=state.cached_summaries, refresh=options.refresh_summaries, tracer=deps.telemetry.tracer,
                budget=Budget(llm.max_clusters, llm.max_tokens, llm.deadline_s, llm.answer_tokens),
            )
            # the server's own throughput, read while it still runs
            deps.telemetry.read_llamacpp_metrics(session.client.metrics_text())
            return result
    except (ModelError, LlmError) as err:
        log.warning("AI summaries unavailable: %s", err)
        return unavailable(cards, str(err), prompt_version)


def _read_source(cfg: Config, source: Source, window: Window, state: StateStore, miner: Miner,
                 tally: _Tally) -> SourceStatus:
    ranges = source.plan(window)
    starts = [r.from_ns for r in ranges]
    covered = state.coverage(source.coverage_key, window.from_ns, window.to_ns)
    covered_starts = [start for start, _ in covered]
    pending: dict[tuple[int, str, int], int] = {}
    positions = cfg.group_positions()
    lines = 0
    failures: list[RangeFailure]
    try:
        for record in source.fetch(window):
            if not window.contains(record.ts_ns):
                continue
            event = extract(record)
            if cfg.redact.enabled:
                event = redact(event, emails=cfg.redact.emails, ips=cfg.redact.ips)
            group, group_labels = _group(event.labels, positions)
            match = miner.add(event.message, group)
            cluster = tally.clusters.get(match.fingerprint)
            if cluster is None:
                cluster = tally.clusters[match.fingerprint] = ClusterWindow(
                    match.fingerprint, match.template, group_labels, group)
            elif match.changed:
                cluster.template = match.template
            cluster.add(event, _first_label(event.labels, APP_LABELS),
                        (record.ts_ns - window.from_ns) * HIST_BINS // max(window.duration_ns, 1))
            lines += 1
            if not _is_covered(covered, covered_starts, record.ts_ns):
                key = (bisect_right(starts, record.ts_ns) - 1, match.fingerprint, bucket_of(record.ts_ns))
                pending[key] = pending.get(key, 0) + 1
        failures = list(source.notes.failures)
    except (SourceError, LokiQueryError) as err:
        failures = [RangeFailure(r, err) for r in ranges]
        source.notes.failures = failures  # the exit code is read from the notes (_source_exit_code)
    failed = {bisect_right(starts, f.window.from_ns) - 1 for f in failures}
    for (range_index, fingerprint, bucket), count in pending.items():
        if range_index not in failed:
            key = (fingerprint, source.coverage_key, bucket)
            tally.counts[key] = tally.counts.get(key, 0) + count
    tally.coverage.setdefault(source.coverage_key, []).extend(
        (r.from_ns, r.to_ns) for index, r in enumerate(ranges) if index not in failed
    )
    tally.lines += lines
    if failures:
        first = failures[0].error
        detail = str(first)
        if len(failures) > 1 and len(failures) < len(ranges):
            detail += f" ({len(failures)} of {len(ranges)} sub-ranges failed)"
        return SourceStatus(source.name, ok=False, lines=lines, error=detail, partial=lines > 0)
    return SourceStatus(source.name, ok=True, lines=lines)


def _source_exit_code(status: SourceStatus, source: Source) -> ExitCode:
    if status.ok:
        return ExitCode.OK
    if any(isinstance(f.error, LokiQueryError | UsageError) for f in source.notes.failures):
        return ExitCode.USAGE
    return ExitCode.SOURCE_FAILED


def _reportable(findings: list[Finding], schedule: Schedule, muted_spikes: bool = True) -> list[Finding]:
    visible = [f for f in findings if not f.muted or (muted_spikes and f.status is Status.SPIKING)]
    if schedule is Schedule.MANUAL:
        return visible
    # hourly: what changed; nightly: the same as cards, with ongoing clusters in the day's summary
    return [f for f in visible if f.status is not Status.ONGOING]


def _group(labels: dict[str, str], positions: list[tuple[str, ...]]) -> tuple[tuple[str, ...], dict[str, str]]:
    values = []
    named = {}
    for position in positions:
        for name in position:
            value = labels.get(name)
            if value:
                values.append(value)
                named[name] = value
                break
        else:
            values.append("")
    return tuple(values), named


def _first_label(labels: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if labels.get(name):
            return labels[name]
    return None


def _is_covered(covered: list[tuple[int, int]], starts: list[int], ts_ns: int) -> bool:
    index = bisect_right(starts, ts_ns) - 1
    return index >= 0 and covered[index][0] <= ts_ns < covered[index][1]


def _config_muted(cfg: Config, fingerprint: str, now_ns: int) -> bool:
    for mute in cfg.mute:
        if mute.fingerprint == fingerprint:
            if mute.until is None:
                return True
            from triage.timeparse import parse_time_ns

            return parse_time_ns(mute.until) > now_ns
    return False


def _rules(cfg: Config) -> DetectRules:
    detect = cfg.detect
    return DetectRules(
        quiet_period_ns=timedelta_to_ns(detect.quiet_period),
        spike_factor=detect.spike_factor,
        spike_min_count=detect.spike_min_count,
        spike_min_history_ns=timedelta_to_ns(detect.spike_min_history),
        spike_lookback_ns=timedelta_to_ns(detect.spike_lookback),
    )


def _redaction_spec(cfg: Config) -> str:
    redact_cfg = cfg.redact
    return f"{RULES_VERSION}:{redact_cfg.enabled}:{redact_cfg.emails}:{redact_cfg.ips}"


def _update(finding: Finding, version: str, counted: int, reported_ns: int | None) -> ClusterUpdate:
    cluster = finding.cluster
    return ClusterUpdate(
        fingerprint=cluster.fingerprint, grouping_version=version, group=cluster.group, labels=cluster.group_labels,
        template=cluster.template, first_ns=cluster.first_ns, last_ns=cluster.last_ns, count=counted,
        status=str(finding.status), reported_ns=reported_ns, samples=tuple(cluster.samples),
    )
