"""The only wiring: ``build_deps`` makes the adapters, ``run`` drives the stages.

source -> extract -> redact -> cluster -> detect -> digest -> deliver, with the state read at
the start and written once, in one transaction, at the end.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from triage.cluster.miner import Miner, grouping_version
from triage.config import Config
from triage.deliver.file import FileChannel
from triage.digest import DigestInput, NightlyFacts, render_digest
from triage.errors import ExitCode, LokiQueryError, TriageError, UsageError, worst_exit_code
from triage.records import SAMPLE_LINES, STATUS_RANK, Finding, Schedule, SourceStatus, Status, Window, WindowPlan
from triage.redact import RULES_VERSION
from triage.report import RunReport, write_report
from triage.source import Source
from triage.state.db import ClusterUpdate, RunRecord, StateStore
from triage.state.detect import DetectRules, classify, comeback_anchor, episodes_to_open, is_muted, reportable_findings
from triage.state.lock import RunLock
from triage.state.window import plan_window
from triage.summarize.provider import LlmProvider
from triage.tally import Tally, answered_notes, apply_merges, read_source
from triage.summarize.stage import Budget, StageResult, disabled, from_cache_only, summarize, unavailable
from triage.telemetry import NullTelemetry, Telemetry
from triage.timeparse import NS_PER_S, datetime_to_ns, timedelta_to_ns

log = logging.getLogger(__name__)

HOUR_NS = 3600 * NS_PER_S


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


def resolve_window(cfg: Config, options: RunOptions, now_ns: int, last_end_ns: int | None,
                   last_run: dict | None = None) -> WindowPlan:
    """The run's ``[from, to)`` and how it was chosen (state/window.py)."""
    return plan_window(schedule=Schedule(options.schedule), since_ns=options.since_ns, from_ns=options.from_ns,
                       to_ns=options.to_ns, now_ns=now_ns, delay_ns=timedelta_to_ns(cfg.loki.delay),
                       catchup_ns=timedelta_to_ns(cfg.run.max_catchup), last_end_ns=last_end_ns, last_run=last_run)


def run(cfg: Config, deps: Deps, options: RunOptions, now: datetime) -> RunReport:
    """Run the job once. Raises TriageError for what stops a run; other outcomes are in the report."""
    now_ns = datetime_to_ns(now)
    report = RunReport(run_id=deps.new_run_id(), schedule=str(options.schedule), dry_run=options.dry_run)
    telemetry = deps.telemetry
    report.trace_id = telemetry.trace_id
    lock = None if options.dry_run else RunLock(deps.state_path, allow_network_fs=cfg.state.allow_network_fs,
                                                **({"sleep": deps.lock_sleep} if deps.lock_sleep else {}))
    state: StateStore | None = None
    try:
        if options.from_ns is not None or options.to_ns is not None:
            report.window = resolve_window(cfg, options, now_ns, None).window  # a usage error before touching the state
        if lock is not None:
            lock.acquire(options.wait_s)
        state = StateStore.snapshot(deps.state_path) if options.dry_run else StateStore.open(deps.state_path)
        source_names = [s.name for s in deps.sources]
        plan = resolve_window(cfg, options, now_ns, state.last_complete_run_end(str(options.schedule), source_names),
                              state.last_run(str(options.schedule), source_names))
        report.window, report.window_plan = plan.window, plan
        _run_stages(cfg, deps, options, state, plan.window, now_ns, report)
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


def _run_stages(cfg: Config, deps: Deps, options: RunOptions, state: StateStore, window: Window,
                now_ns: int, report: RunReport) -> None:
    version = grouping_version(cfg.group_positions(), _redaction_spec(cfg))
    miner = Miner(version)
    for known in state.known_clusters(seen_since_ns=now_ns - timedelta_to_ns(cfg.state.retention)):
        miner.restore(known.fingerprint, known.group, known.template)
    notes: list[str] = []
    previous_version = state.meta("grouping_version")
    if previous_version and previous_version != version:
        notes.append(f"The grouping rules changed ({previous_version} → {version}): problems already known may "
                     "show once more under new fingerprints.")

    tally = Tally()
    telemetry = deps.telemetry
    with telemetry.stage("read"):
        for source in deps.sources:
            report.sources.append(read_source(cfg, source, window, state, miner, tally, now_ns))
            telemetry.count_loki_requests(getattr(source, "requests_by_status", {}))
        apply_merges(miner, tally)
    notes.extend(answered_notes(state, tally, now_ns))
    _say(deps, f"read {tally.lines} lines into {len(tally.clusters)} clusters")
    report.lines = tally.lines
    for status in report.sources:
        if not status.ok:
            log.warning("source %s failed: %s", status.name, status.error)

    with telemetry.stage("detect"):
        findings = _detect(cfg, state, tally, window, now_ns, miner.aliases())
    _stages_after_detect(cfg, deps, options, state, window, now_ns, report, tally, findings, miner, version,
                         previous_version, notes)


def _detect(cfg: Config, state: StateStore, tally: Tally, window: Window, now_ns: int,
            aliases: dict[str, str]) -> list[Finding]:
    merged_from: dict[str, list[str]] = {}
    for old, survivor in aliases.items():
        merged_from.setdefault(survivor, []).append(old)
    histories = state.history([*tally.clusters.keys(), *aliases], window.from_ns,
                              timedelta_to_ns(cfg.detect.spike_lookback))
    rules = _rules(cfg)
    findings = []
    for fingerprint, cluster in tally.clusters.items():
        history = histories[fingerprint]
        status = classify(cluster, history, window, rules)
        findings.append(Finding(
            cluster=cluster,
            status=status,
            anchor_ns=comeback_anchor(status, history),
            # a mute on a cluster merged into this one in this run holds for the merged cluster
            muted=any(is_muted(histories[fp], now_ns) or _config_muted(cfg, fp, now_ns)
                      for fp in (fingerprint, *merged_from.get(fingerprint, ()))),
            first_seen_ns=min(history.first_seen_ns or cluster.first_ns, cluster.first_ns),
            last_seen_ns=max(history.last_seen_ns or cluster.last_ns, cluster.last_ns),
        ))
    findings.sort(key=lambda f: (STATUS_RANK[f.status], -f.cluster.count, f.cluster.fingerprint))
    return findings


def _stages_after_detect(cfg: Config, deps: Deps, options: RunOptions, state: StateStore, window: Window, now_ns: int,
                         report: RunReport, tally: Tally, findings: list[Finding], miner: Miner, version: str,
                         previous_version: str | None, notes: list[str]) -> None:
    from triage.deliver import dispatch

    telemetry = deps.telemetry
    schedule = Schedule(options.schedule)
    prime, prime_reason = _priming(cfg, options, state, previous_version, version)
    if prime and not options.prime and not any(s.ok for s in report.sources):
        prime_reason = ("No source could be read, so nothing was sent and this run did not prime the state: "
                        "the next scheduled run that reads its sources primes it.")
    if prime_reason:
        notes.append(prime_reason)
    episodes, already = episodes_to_open(
        findings, now_ns=now_ns, spike_cooldown_ns=timedelta_to_ns(cfg.detect.spike_cooldown),
        report_muted_spikes=cfg.detect.report_muted_spikes,
        last_spike_ns=lambda fp: state.last_episode_ns(fp, str(Status.SPIKING)), has_episode=state.comeback_has_episode)
    reportable = reportable_findings(findings, schedule, cfg.detect.report_muted_spikes)
    if schedule is Schedule.HOURLY:  # a comeback read again (after a partial run) is not a change
        reportable = [f for f in reportable if f.cluster.fingerprint not in already]
    # Every channel's message is decided here, before anything is summarised or delivered.
    plans = dispatch.plan_channels(
        channels=[] if prime else list(deps.senders), schedule=str(schedule), reportable=reportable,
        opening={fp for fp, *_ in episodes}, earlier={} if prime else {n: state.pending(n) for n in deps.senders},
        state=state, max_cards=cfg.digest.max_cards, grafana_url=dispatch.rollup_link(cfg.digest, window),
        full_list=None if options.dry_run else str(deps.file_channel.path_for(now_ns, str(schedule), report.run_id)))
    file_plan = plans["file"]
    cards = list(file_plan.cards)
    by_status = {str(s): sum(1 for f in findings if f.status is s) for s in Status}
    for note in (f"{source.name}: {source.notes.skipped_outside_window} entries outside the window were skipped"
                 for source in deps.sources if source.notes.skipped_outside_window):
        notes.append(note)
    notes.extend(tally.loki_notes)
    if tally.uncounted_old:
        notes.append(f"{tally.uncounted_old} entries are older than state.retention: shown, but not added to any "
                     "count (the state no longer knows what was counted then).")
    carded = dispatch.cards_of(plans)
    if carded and deps.llm is not None and not options.no_llm:
        _say(deps, f"summarizing up to {min(len(carded), cfg.llm.max_clusters)} cards with the LLM")
    with telemetry.stage("summarize"):
        llm_result = _summarize(cfg, deps, options, carded, state)
    report.llm = llm_result.stats.to_json()
    telemetry.observe_llm(llm_result.stats)
    push_warning = None if options.dry_run else telemetry.check_pushgateway()
    if llm_result.stats.unavailable:
        notes.append(f"AI summaries unavailable in this run ({llm_result.stats.unavailable}); cards show raw templates.")
    explore = _explore_links(cfg, findings, window)
    base = DigestInput(
        run_id=report.run_id, schedule=str(options.schedule), window=window, generated_ns=now_ns,
        sources=report.sources, lines=tally.lines, cards=cards, more=len(file_plan.rolled),
        rollup=file_plan.rollup, rolled=list(file_plan.rolled),
        clusters_total=len(findings), by_status=by_status, muted=sum(1 for f in findings if f.muted),
        state_path=str(deps.state_path), dry_run=options.dry_run, notes=notes, prime=prime,
        summaries=llm_result.summaries, llm_stats=llm_result.stats, llm_model=llm_result.model,
        prompt_version=llm_result.prompt_version, explore=explore, trace_id=telemetry.trace_id,
        footer_warnings=[push_warning] if push_warning else [],
        nightly=nightly_facts(state, findings, window, now_ns, llm_result.summaries)
        if schedule is Schedule.NIGHTLY else None,
        window_plan=report.window_plan,
    )
    with telemetry.stage("render"):
        digest = render_digest(base)
    codes = [_source_exit_code(status, source) for status, source in zip(report.sources, deps.sources)]
    delivered = dispatch.Delivered(findings, llm_result.summaries)
    report.prime = prime
    if options.dry_run:
        report.digest_text = digest
        delivered.fill(report, codes)
        return
    file_result = deps.file_channel.send(digest, generated_ns=now_ns, schedule=str(options.schedule),
                                         run_id=report.run_id)
    delivered.add_file(file_result, file_plan)
    if file_result.ok:
        report.digest_path = str(deps.file_channel.last_path)
    else:
        codes.append(ExitCode.DELIVERY_FAILED)
        log.error("delivery %s failed: %s", file_result.channel, file_result.error)

    with telemetry.stage("commit"):
        state.commit_run(
            run=RunRecord(
                run_id=report.run_id, schedule=str(options.schedule), sources=[s.name for s in deps.sources],
                from_ns=window.from_ns, to_ns=window.to_ns, started_ns=now_ns, finished_ns=now_ns,
                exit_code=int(worst_exit_code(codes)), complete=all(s.ok for s in report.sources),
                lines=tally.lines, clusters=len(findings),
                figures={"by_status": by_status, "cards": len(cards), "prime": prime,
                         "sources_ok": sum(1 for s in report.sources if s.ok)},
                settled_ns=_settled_end(tally, window),
            ),
            clusters=_updates(findings, tally, version, set(file_plan.fingerprints) if file_result.ok else set(),
                              now_ns),
            counts=tally.counts,
            coverage=tally.coverage,
            settling=tally.settling,
            entry_ids=tally.entry_ids,
            edges=tally.edges,
            samples=tally.samples,
            by_count=tally.by_count,
            grouping_version=version,
            summaries=llm_result.new_cache,
            aliases=miner.aliases(),
            episodes=episodes,
            channels=deps.channels,
            primed=prime,
            sent_now=["file"] if file_result.ok else [],
            rolled_now={f.cluster.fingerprint for f in file_plan.rolled},
            new_channels_primed=cfg.new_channels_primed,
            prune_before_ns=now_ns - timedelta_to_ns(cfg.state.retention),
        )
    if not prime:
        with telemetry.stage("deliver"):
            results = dispatch.send_all(deps, state, plans, base, now_ns, send_when_quiet=cfg.digest.send_when_quiet,
                                        report_json=lambda so_far: delivered.snapshot(report, codes, so_far, plans))
        for result in results:
            delivered.add(result)
            if not result.ok:
                codes.append(ExitCode.DELIVERY_FAILED)
                log.error("delivery %s failed: %s", result.channel, result.error)
            elif result.error:
                log.warning("delivery %s: %s", result.channel, result.error)
    delivered.fill(report, codes)


def _say(deps: Deps, text: str) -> None:
    if deps.progress is not None:
        deps.progress(text)


def _updates(findings: list[Finding], tally: Tally, version: str, carded: set[str], now_ns: int) -> list:
    counted: dict[str, int] = {}
    for (fingerprint, _, _), count in tally.counts.items():
        counted[fingerprint] = counted.get(fingerprint, 0) + count
    return [_update(f, version, counted.get(f.cluster.fingerprint, 0),
                    now_ns if f.cluster.fingerprint in carded else None) for f in findings]


def _settled_end(tally: Tally, window: Window) -> int | None:
    """Where the part of the window still settling begins (None: all of it settled)."""
    starts = [start for spans in tally.settling.values() for start, _ in spans if start >= window.from_ns]
    return min(starts) if starts else None


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
    if cfg.run.auto_prime and not state.has_read_run():
        # Only a run that read a source primes: one whose every source failed saw nothing, so the next one primes.
        return True, ("This was a prime run: the state had no previous run that read its sources, so every current "
                      "cluster is recorded as known and nothing was sent. From the next run on, only what changes "
                      "is reported.")
    if previous_version and previous_version != version:
        return True, ("This run primed itself because the grouping rules changed: clusters are recorded under the "
                      "new rules and nothing was sent, rather than reporting every problem as new.")
    return False, None


def _explore_links(cfg: Config, findings: list[Finding], window: Window) -> dict[str, str]:
    if not cfg.digest.grafana_url:
        return {}
    from triage.deliver.content import explore_url

    return {f.cluster.fingerprint: explore_url(cfg.digest.grafana_url, cfg.digest.grafana_datasource_uid,
                                               f.cluster.group_labels, f.cluster.template, window.from_ns, window.to_ns,
                                               samples=f.cluster.samples)
            for f in findings}


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


def _source_exit_code(status: SourceStatus, source: Source) -> ExitCode:
    if status.ok:
        return ExitCode.OK
    if any(isinstance(f.error, LokiQueryError | UsageError) for f in source.notes.failures):
        return ExitCode.USAGE
    return ExitCode.SOURCE_FAILED


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
        status=str(finding.status), reported_ns=reported_ns, samples=tuple(cluster.samples[:SAMPLE_LINES]),
        pattern=cluster.pattern or None,
    )
