"""Command line: parse, build the config, call the library, turn the outcome into an exit code.

Nothing else lives here. Imports are lazy per command: ``triage cluster`` loads the standard
library and ``triage.cluster`` only.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict
import json
import logging
import os
import signal
import sys
from pathlib import Path

import click

from triage import __version__

EXIT_CODES_HELP = """\b
Exit codes:
  0    ok
  1    unexpected error (rerun with --debug for a traceback)
  2    usage or configuration error (bad flag, time, file; Loki rejected the query)
  3    a source failed or was cut short (the digest is still written, with a warning)
  4    a delivery failed (retried next run)
  5    state locked, unreadable, newer than this version, or not writable
  130  interrupted (SIGINT)
  143  terminated (SIGTERM)
When several apply, the first of 5, 2, 3, 4 wins."""


def common_options(func):
    """--config, --state, --debug and --log-format, taken by every command."""
    func = click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
                        help="Format of the job's own log lines on stderr.")(func)
    func = click.option("--debug", is_flag=True, help="Verbose logs, and a traceback on unexpected errors.")(func)
    func = click.option("--state", "state_path", type=click.Path(path_type=Path, dir_okay=False),
                        help="SQLite state file (config state.path; default state/triage.db).")(func)
    func = click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
                        help="TOML config file (else $TRIAGE_CONFIG, else ./triage.toml if present).")(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=EXIT_CODES_HELP)
@click.version_option(__version__, "--version", prog_name="triage")
def cli() -> None:
    """triage: turn a window of Kubernetes error logs into a short, trustworthy digest.

    \b
    Example:
        triage run --source demo --since 1h
        triage run --since 1h --loki-url http://loki:3100
        triage run --source file:errors.jsonl --from 2026-11-23T06:00:00Z --to 2026-11-23T07:00:00Z

    \b
    Settings a run against a cluster needs (in a TOML file given by --config or $TRIAGE_CONFIG,
    or as TRIAGE_<SECTION>__<KEY> environment variables; `triage config show` prints them all):
      loki.url   Loki base URL        TRIAGE_LOKI__URL=http://loki-gateway.monitoring:3100
      llm.url    llama.cpp server     TRIAGE_LLM__URL=http://llama-server.llm:8080
                 or choose llm.mode: remote (needs llm.url), embedded (a local model; needs the
                 llm extra, not in the container image), off (raw templates): TRIAGE_LLM__MODE=off
    Neither is needed to try it: triage run --source demo --since 1h --no-llm
    """


class _Duration(click.ParamType):
    name = "DURATION"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        from triage.timeparse import parse_duration_ns

        try:
            return parse_duration_ns(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)


class _Time(click.ParamType):
    name = "TIME"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        from triage.timeparse import parse_time_ns

        try:
            return parse_time_ns(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)


DURATION = _Duration()
TIME = _Time()


@cli.command(epilog=EXIT_CODES_HELP)
@click.option("--since", type=DURATION, help="Window length ending now minus loki.delay, e.g. 1h, 90m, 1h30m.")
@click.option("--from", "from_ns", type=TIME, help="Window start (RFC3339 or integer ns), inclusive.")
@click.option("--to", "to_ns", type=TIME, help="Window end (RFC3339 or integer ns), exclusive.")
@click.option("--schedule", type=click.Choice(["manual", "hourly", "nightly"]), default="manual", show_default=True,
              help="manual: every cluster; hourly: only new/regressed/spiking; nightly: the day's picture.")
@click.option("--source", "sources", multiple=True, metavar="loki|file:PATH|demo",
              help="Where logs come from; repeatable (config sources; default loki).")
@click.option("--query", help="LogQL for the Loki source (config loki.query; default: error-level lines).")
@click.option("--loki-url", help="Loki base URL (config loki.url).")
@click.option("--llm-url", help="OpenAI-compatible llama.cpp server (config llm.url); default: an embedded one.")
@click.option("--no-llm", is_flag=True, help="Do not summarize with the LLM: cards show raw templates.")
@click.option("--refresh-summaries", is_flag=True, help="Ignore cached summaries and ask the model again.")
@click.option("--notify", metavar="CHANNELS",
              help="Comma-separated channels to send to (file,slack,email,webhook); default: every configured one.")
@click.option("--prime", is_flag=True,
              help="Record every cluster as known and reported on every channel, send nothing (looks back "
                   "run.prime_lookback unless a window is given).")
@click.option("--dry-run", is_flag=True,
              help="Fetch, cluster and print the digest to stdout; write nothing to the state, send nothing.")
@click.option("--wait", "wait_ns", type=DURATION, is_flag=False, flag_value="10m", default=None, metavar="[DURATION]",
              help="If another run holds the state lock, wait for it (default 10m) instead of exiting 5.")
@click.option("--digest-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where markdown digests go (config digest.dir; default state/digests).")
@click.option("--report-json", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the run as JSON (schema in README), failed runs included.")
@common_options
def run(since, from_ns, to_ns, schedule, sources, query, loki_url, llm_url, no_llm, refresh_summaries, notify, prime,
        dry_run, wait_ns, digest_dir,
        report_json, config_file, state_path, debug, log_format):
    """Run the job once: fetch a window, cluster, detect, summarize, write and send the digest.

    The window is [from, to). Without --since/--from, a manual run takes the last hour; an
    hourly or nightly run starts where the last complete run of that schedule ended.

    \b
    Example:
        triage run --source demo --since 1h
        triage run --schedule hourly --loki-url http://loki.monitoring:3100
        triage run --dry-run --source file:saved.jsonl --from 1795365826921399093 --to 2026-11-23T07:00:00Z
    """
    import uuid

    from triage.startup import collect_rarely, start_forkserver, worker_count

    collect_rarely()  # first: importing the pipeline allocates ~100,000 containers
    run_id = uuid.uuid4().hex
    _setup_logging(debug, log_format, run_id)
    with _errors(debug):
        if since is not None and (from_ns is not None or to_ns is not None):
            raise click.UsageError("--since cannot be combined with --from/--to")
        from datetime import UTC, datetime

        from triage import config as config_module

        overrides = {}
        if sources:
            overrides["sources"] = list(sources)
        if query is not None:
            overrides["loki.query"] = query
        if loki_url is not None:
            overrides["loki.url"] = loki_url
        if state_path is not None:
            overrides["state.path"] = str(state_path)
        if digest_dir is not None:
            overrides["digest.dir"] = str(digest_dir)
        if llm_url is not None:
            overrides["llm.url"] = llm_url
        if no_llm:
            overrides["llm.mode"] = "off"
        cfg = config_module.load(config_file, os.environ, overrides)
        if worker_count(cfg.run.workers) > 1:
            start_forkserver()  # its imports overlap the pipeline's, next
        from triage import pipeline
        from triage.errors import Interrupted, ExitCode
        from triage.records import Schedule

        channels = tuple(c.strip() for c in notify.split(",") if c.strip()) if notify else None
        if prime and since is None and from_ns is None:
            from triage.timeparse import timedelta_to_ns

            since = timedelta_to_ns(cfg.run.prime_lookback)
        options = pipeline.RunOptions(
            schedule=Schedule(schedule), since_ns=since, from_ns=from_ns, to_ns=to_ns, dry_run=dry_run,
            no_llm=no_llm, refresh_summaries=refresh_summaries, prime=prime, notify=channels,
            wait_s=None if wait_ns is None else wait_ns / 1e9, report_json=report_json,
        )

        def terminate(signum, frame):
            raise Interrupted("SIGTERM", ExitCode.TERMINATED)

        previous = signal.signal(signal.SIGTERM, terminate)
        try:
            deps = pipeline.build_deps(cfg, dict(os.environ),
                                       progress=lambda text: click.echo(f"triage: {text}", err=True), notify=channels,
                                       schedule=schedule)
            deps.new_run_id = lambda: run_id
            deps.progress = _progress_printer(schedule)
            report = pipeline.run(cfg, deps, options, now=datetime.now(UTC))
        finally:
            signal.signal(signal.SIGTERM, previous)
        if report.digest_text is not None:
            click.echo(report.digest_text, nl=False)
        _print_outcome(report)
        sys.exit(report.exit_code)


def _progress_printer(schedule: str):
    """Stage-by-stage progress for a person at a terminal; never in CronJob logs."""
    if schedule != "manual" or not sys.stderr.isatty():
        return None
    return lambda text: click.echo(f"triage: {text}", err=True)


def _print_outcome(report) -> None:
    statuses: dict[str, int] = {}
    for entry in report.clusters:
        statuses[str(entry.finding.status)] = statuses.get(str(entry.finding.status), 0) + 1
    shown = ", ".join(f"{n} {s}" for s, n in statuses.items() if s != "ongoing" and n)
    where = report.digest_path or ("stdout (dry run)" if report.dry_run else "not written")
    click.echo(f"triage: {report.lines} lines, {len(report.clusters)} clusters"
               f"{f' ({shown})' if shown else ''} -> digest {where}", err=True)


@cli.command(epilog=EXIT_CODES_HELP)
@click.option("--format", "input_format", type=click.Choice(["lines", "jsonl"]), default="lines", show_default=True,
              help="lines: one message per input line; jsonl: file-source entries (labels take part in grouping).")
@click.option("--no-shape-cache", is_flag=True,
              help="Process every line in full, even one that differs from an earlier line only in its digits "
                   "(same keys, slower: for benchmarking the miner itself).")
@common_options
def cluster(input_format, no_shape_cache, config_file, state_path, debug, log_format):
    """Read entries on stdin, print exactly one cluster key per entry, in order.

    The benchmark contract: same extraction, redaction, masking and grouping as `triage run`,
    no state, and nothing read but stdin and the flags (an explicit --config only).

    \b
    Example:
        printf 'disk 1 full\\ndisk 2 full\\n' | triage cluster
        triage cluster --format jsonl < entries.jsonl
    """
    _setup_logging(debug, log_format)
    with _errors(debug):
        from triage.clusterkeys import ClusterSettings, cluster_stream

        settings = ClusterSettings()
        if config_file is not None:
            from triage import config as config_module

            cfg = config_module.load(config_file, {}, {})
            settings = ClusterSettings.from_config(cfg)
        cluster_stream(sys.stdin.buffer, sys.stdout, input_format, settings, shape_cache=not no_shape_cache)


@cli.command(epilog="Exits 0 when every check passes, else 1.")
@click.option("--send-test", is_flag=True, help="Also post a test message to Slack and the webhook.")
@common_options
def doctor(send_test, config_file, state_path, debug, log_format):
    """Check every configured endpoint and file: Loki, llama-server, Pushgateway, OTLP, SMTP, Slack, state.

    \b
    Example:
        triage doctor
        triage doctor --config /etc/triage/triage.toml --send-test
    """
    _setup_logging(debug, log_format)
    with _errors(debug):
        from triage import config as config_module
        from triage.doctor import run_checks

        overrides = {"state.path": str(state_path)} if state_path else {}
        cfg = config_module.load(config_file, os.environ, overrides)
        checks = run_checks(cfg, dict(os.environ), send_test=send_test)
        for check in checks:
            click.echo(f"{'OK  ' if check.ok else 'FAIL'}  {check.name:12s} {check.detail}")
        sys.exit(0 if all(check.ok for check in checks) else 1)


@cli.group("config")
def config_group() -> None:
    """Inspect the configuration.

    \b
    Example:
        triage config show
        TRIAGE_LOKI__URL=http://loki:3100 triage config show --config /etc/triage/triage.toml
    """


@config_group.command("show")
@common_options
def config_show(config_file, state_path, debug, log_format):
    """Print the effective configuration (file < environment < flags) as TOML; secrets show as ***.

    \b
    Example:
        triage config show
    """
    _setup_logging(debug, log_format)
    with _errors(debug):
        from triage import config as config_module

        overrides = {"state.path": str(state_path)} if state_path else {}
        cfg = config_module.load(config_file, os.environ, overrides)
        click.echo(config_module.render_toml(cfg), nl=False)


@cli.group()
def state() -> None:
    """Show, mute, unmute, prune and export what the state file knows.

    \b
    Example:
        triage state list --status new
        triage state show 1fc3d808ca5c
        triage state mute 1fc3d808ca5c --for 7d --reason "known, ticket OPS-12"
    """


def _open_state(config_file, state_path, *, write: bool):
    from triage import config as config_module
    from triage.state.db import StateStore

    cfg = config_module.load(config_file, os.environ)
    path = state_path or cfg.state.path
    if not path.exists():
        from triage.errors import UsageError

        raise UsageError(f"no state file at {path} (run triage first, or pass --state)")
    return StateStore.open(path) if write else StateStore.snapshot(path)


@contextlib.contextmanager
def _writable_state(config_file, state_path):
    """The state for a command that writes, under the run lock: one writer at a time (it exits 5
    while a run holds the lock, like `triage run` without --wait)."""
    from triage import config as config_module
    from triage.state.lock import RunLock

    cfg = config_module.load(config_file, os.environ)
    path = state_path or cfg.state.path
    if not path.exists():
        from triage.errors import UsageError

        raise UsageError(f"no state file at {path} (run triage first, or pass --state)")
    with RunLock(path, allow_network_fs=cfg.state.allow_network_fs) as lock:
        lock.acquire()
        store = _open_state(config_file, state_path, write=True)
        try:
            yield store
        finally:
            store.close()


def _cluster_line(row: dict) -> str:
    from triage.timeparse import format_ns

    muted = " muted" if row.get("muted_until_ns") else ""
    return (f"{row['fingerprint']}  {row['last_status'] or '-':9s}{muted}  total={row['total_count'] or 0}  "
            f"last={format_ns(row['last_seen_ns'])}  {json.dumps(json.loads(row['labels'] or '{}'))}  {row['template'][:100]}")


@state.command("list")
@click.option("--status", type=click.Choice(["new", "regressed", "spiking", "ongoing"]), help="Only this last status.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of text.")
@common_options
def state_list(status, as_json, config_file, state_path, debug, log_format):
    """List known clusters, most recently seen first.

    \b
    Example:
        triage state list --status spiking --json
    """
    _setup_logging(debug, log_format)
    with _errors(debug):
        store = _open_state(config_file, state_path, write=False)
        for row in store.list_clusters(status):
            click.echo(json.dumps(row) if as_json else _cluster_line(row))


@state.command("show")
@click.argument("fingerprint")
@common_options
def state_show(fingerprint, config_file, state_path, debug, log_format):
    """Everything the state holds on one cluster (an alias resolves to the cluster it merged into).

    \b
    Example:
        triage state show 1fc3d808ca5c
    """
    _setup_logging(debug, log_format)
    with _errors(debug):
        from triage.errors import UsageError

        store = _open_state(config_file, state_path, write=False)
        row = store.cluster(store.resolve(fingerprint))
        if row is None:
            raise UsageError(f"no cluster {fingerprint} in the state")
        row["episodes"] = [dict(r) for r in store.db.query(
            "SELECT e.kind, e.opened_ns, l.channel, l.status, l.error FROM episodes e JOIN ledger l USING (episode_id) "
            "WHERE e.fingerprint = ? ORDER BY e.opened_ns", [row["fingerprint"]])]
        click.echo(json.dumps(row, indent=2, ensure_ascii=False))


@state.command("mute")
@click.argument("fingerprint")
@click.option("--for", "for_ns", type=DURATION, help="Mute for this long, e.g. 7d.")
@click.option("--until", "until_ns", type=TIME, help="Mute until this time (RFC3339).")
@click.option("--reason", help="Why (shown by state show).")
@common_options
def state_mute(fingerprint, for_ns, until_ns, reason, config_file, state_path, debug, log_format):
    """Stop reporting a cluster (it is still counted; a spike still shows).

    \b
    Example:
        triage state mute 1fc3d808ca5c --for 7d --reason "known, ticket OPS-12"
    """
    _setup_logging(debug, log_format)
    with _errors(debug):
        import time

        from triage.errors import UsageError

        if for_ns is not None and until_ns is not None:
            raise click.UsageError("--for and --until cannot be combined")
        until = until_ns if until_ns is not None else (time.time_ns() + for_ns if for_ns is not None else 2**62)
        with _writable_state(config_file, state_path) as store:
            if not store.set_mute(store.resolve(fingerprint), until, reason):
                raise UsageError(f"no cluster {fingerprint} in the state")
        click.echo(f"muted {fingerprint}")


@state.command("unmute")
@click.argument("fingerprint")
@common_options
def state_unmute(fingerprint, config_file, state_path, debug, log_format):
    """Report a muted cluster again.

    \b
    Example:
        triage state unmute 1fc3d808ca5c
    """
    _setup_logging(debug, log_format)
    with _errors(debug):
        from triage.errors import UsageError

        with _writable_state(config_file, state_path) as store:
            if not store.set_mute(store.resolve(fingerprint), None, None):
                raise UsageError(f"no cluster {fingerprint} in the state")
        click.echo(f"unmuted {fingerprint}")


@state.command("prune")
@click.option("--older-than", "older_ns", type=DURATION, required=True, help="e.g. 30d")
@common_options
def state_prune(older_ns, config_file, state_path, debug, log_format):
    """Delete counts, runs, episodes and clusters not seen for longer than the given age.

    \b
    Example:
        triage state prune --older-than 30d
    """
    _setup_logging(debug, log_format)
    with _errors(debug):
        import time

        with _writable_state(config_file, state_path) as store:
            removed = store.prune_older_than(time.time_ns() - older_ns)
        click.echo(", ".join(f"{n} {what}" for what, n in removed.items()) + " removed")


@state.command("export")
@click.option("--json", "as_json", is_flag=True, required=True, help="Export as JSON (the only format).")
@common_options
def state_export(as_json, config_file, state_path, debug, log_format):
    """Print the clusters, aliases, episodes, ledger, runs and summaries as one JSON document.

    \b
    Example:
        triage state export --json > state.json
    """
    _setup_logging(debug, log_format)
    with _errors(debug):
        store = _open_state(config_file, state_path, write=False)
        click.echo(json.dumps(store.export(), indent=2, ensure_ascii=False))


@cli.group()
def prompts() -> None:
    """List, show and render the prompts in prompts/ (llm.prompts_dir).

    \b
    Example:
        triage prompts list
        triage prompts show card
        triage prompts render card 1fc3d808ca5c
    """


def _registry(config_file):
    from triage import config as config_module
    from triage.summarize.prompts import PromptRegistry, default_prompts_dir

    cfg = config_module.load(config_file, os.environ)
    return cfg, PromptRegistry(cfg.llm.prompts_dir or default_prompts_dir())


@prompts.command("list")
@common_options
def prompts_list(config_file, state_path, debug, log_format):
    """Each prompt with its version (a hash of its content, includes and output schema).

    \b
    Example:
        triage prompts list
    """
    _setup_logging(debug, log_format)
    with _errors(debug):
        _, registry = _registry(config_file)
        for name in registry.names():
            prompt = registry.get(name)
            click.echo(f"{name}\t{prompt.version}\t{prompt.path}")


@prompts.command("show")
@click.argument("name")
@common_options
def prompts_show(name, config_file, state_path, debug, log_format):
    """Print a prompt's source.

    \b
    Example:
        triage prompts show card
    """
    _setup_logging(debug, log_format)
    with _errors(debug):
        _, registry = _registry(config_file)
        prompt = registry.get(name)
        click.echo(f"# {prompt.name} version {prompt.version} ({prompt.path})")
        click.echo(registry.source(name), nl=False)


@prompts.command("render")
@click.argument("name")
@click.argument("fingerprint")
@common_options
def prompts_render(name, fingerprint, config_file, state_path, debug, log_format):
    """Print the messages a prompt sends for one cluster of the state.

    \b
    Example:
        triage prompts render card 1fc3d808ca5c --state state/triage.db
    """
    _setup_logging(debug, log_format)
    with _errors(debug):
        from triage.errors import UsageError
        from triage.records import ClusterWindow, Finding, Status
        from triage.state.db import StateStore
        from triage.summarize.stage import render_context

        cfg, registry = _registry(config_file)
        store = StateStore.snapshot(state_path or cfg.state.path)
        row = store.cluster(fingerprint)
        store.close()
        if row is None:
            raise UsageError(f"no cluster {fingerprint} in {state_path or cfg.state.path}")
        cluster = ClusterWindow(fingerprint, row["template"], row["labels"], samples=row["samples"])
        status = Status(row["last_status"]) if row["last_status"] else Status.ONGOING
        finding = Finding(cluster, status, False, row["first_seen_ns"], row["last_seen_ns"])
        rendered = registry.render(name, **render_context(finding))
        click.echo(f"# {name} version {registry.get(name).version}, cluster {fingerprint}")
        click.echo("## system\n" + rendered.system + "\n## user\n" + rendered.user)


@cli.group("eval")
def eval_group() -> None:
    """Measure triage on labelled sets.

    \b
    Example:
        triage eval summaries
        triage eval summaries --llm-url http://heavy-node:8080 --json eval.json
    """


@eval_group.command("summaries")
@click.option("--set", "set_path", type=click.Path(path_type=Path, dir_okay=False),
              help="JSON Lines set of labelled clusters (default: eval/summaries.jsonl).")
@click.option("--llm-url", help="llama.cpp server to evaluate (default: llm.url, else the embedded one).")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), help="Also write results as JSON.")
@common_options
def eval_summaries(set_path, llm_url, json_path, config_file, state_path, debug, log_format):
    """Valid-JSON rate, cards naming the component and cause, latency and tokens/s.

    \b
    Example:
        triage eval summaries --set eval/summaries.jsonl
    """
    _setup_logging(debug, log_format)
    with _errors(debug):
        from triage import config as config_module
        from triage.errors import TriageError
        from triage.evaluate import DEFAULT_SET, evaluate, load_set
        from triage.summarize.llama import LlmError
        from triage.summarize.models import ModelError
        from triage.summarize.prompts import PromptRegistry, default_prompts_dir
        from triage.summarize.provider import LlmProvider

        overrides = {"llm.url": llm_url} if llm_url else {}
        cfg = config_module.load(config_file, os.environ, overrides)
        if cfg.llm.effective_mode() == "off":
            cfg = config_module.load(config_file, os.environ, {**overrides, "llm.mode": "auto"})
        cases = load_set(set_path or DEFAULT_SET)
        registry = PromptRegistry(cfg.llm.prompts_dir or default_prompts_dir())
        provider = LlmProvider(cfg.llm, dict(os.environ), progress=lambda text: click.echo(text, err=True))
        try:
            with provider.session() as session:
                report = evaluate(cases, session.client, session.model, registry, cfg.llm.answer_tokens)
        except (ModelError, LlmError) as err:
            raise TriageError(f"no LLM to evaluate: {err}") from None
        for case in report.cases:
            mark = "ok " if case.valid else "BAD"
            click.echo(f"{mark} {case.name:28s} component={'y' if case.names_component else 'n'} "
                       f"cause={'y' if case.names_cause else 'n'} {case.duration_s:5.1f}s  "
                       f"{case.title or case.error}")
        summary = report.summary()
        click.echo(json.dumps(summary, indent=2))
        if json_path:
            json_path.write_text(json.dumps({"summary": summary, "cases": [asdict(c) for c in report.cases]},
                                            indent=2) + "\n")


@contextlib.contextmanager
def _errors(debug: bool):
    """Every failure becomes one line on stderr and its documented exit code."""
    from triage.errors import ExitCode, TriageError

    try:
        yield
    except TriageError as err:
        if debug:
            logging.getLogger("triage").exception("failed")
        click.echo(f"triage: {err}", err=True)
        sys.exit(int(err.exit_code))
    except KeyboardInterrupt:
        click.echo("triage: interrupted", err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(int(ExitCode.OK))
    except (click.exceptions.Exit, click.ClickException, SystemExit):
        raise
    except Exception as err:
        if debug:
            raise
        click.echo(f"triage: unexpected error: {type(err).__name__}: {err} (rerun with --debug for a traceback)",
                   err=True)
        sys.exit(int(ExitCode.UNEXPECTED))


class _RunIdFilter(logging.Filter):
    """Puts the run id on every log line of a run, so that CronJob logs lead to the digest and trace."""

    def __init__(self, run_id: str):
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = self.run_id
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname.lower(),
                 "logger": record.name, "run_id": getattr(record, "run_id", None), "msg": record.getMessage()}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _setup_logging(debug: bool, log_format: str, run_id: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    elif run_id:
        handler.setFormatter(logging.Formatter("triage: %(levelname)s: [run %(run_id).8s] %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("triage: %(levelname)s: %(message)s"))
    if run_id:
        handler.addFilter(_RunIdFilter(run_id))
    root = logging.getLogger("triage")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    root.propagate = False


def main() -> None:
    from triage.startup import skip_final_collection

    try:
        cli(prog_name="triage")
    finally:
        skip_final_collection()
