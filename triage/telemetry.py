"""The job's own telemetry: Prometheus metrics pushed to a Pushgateway, OpenTelemetry traces over OTLP.

Everything is built per run and passed in (no global registry, no global tracer provider).
``Telemetry`` is the real thing; ``NullTelemetry`` does nothing, so no stage needs an ``if``.

Metrics go into a fresh CollectorRegistry and are pushed once when the run ends, failed runs
included, grouped by (job, schedule). A successful run PUTs the whole group; a failed one POSTs,
which replaces only the metrics it carries, so ``triage_last_success_timestamp_seconds`` from the
last success survives. A Pushgateway that is down or refuses is a warning, never a failed run.

Tracing is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is
set; the exporter (OTLP over HTTP/protobuf) reads the standard ``OTEL_*`` variables itself.
Spans are flushed before the run returns: a batch job that exits early loses its spans.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping

log = logging.getLogger(__name__)

PUSH_TIMEOUT_S = 5.0
LLM_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)


class NullTelemetry:
    trace_id: str | None = None
    tracer = None
    push_warning: str | None = None

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        yield

    def check_pushgateway(self) -> str | None:
        return None

    def count_loki_requests(self, by_status: Mapping[str, int]) -> None:
        pass

    def observe_llm(self, stats) -> None:
        pass

    def read_llamacpp_metrics(self, text: str | None) -> None:
        pass

    def finish(self, report, *, success: bool, push: bool = True) -> None:
        pass


class Telemetry(NullTelemetry):
    def __init__(self, *, schedule: str, pushgateway_url: str | None, job: str, environ: Mapping[str, str],
                 push_timeout_s: float = PUSH_TIMEOUT_S, clock=time.time):
        from prometheus_client import CollectorRegistry, Gauge, Histogram

        self.schedule = schedule
        self.pushgateway_url = pushgateway_url.rstrip("/") if pushgateway_url else None
        self.job = job
        self.push_timeout_s = push_timeout_s
        self._clock = clock
        self._started = time.perf_counter()
        self.stage_s: dict[str, float] = {}
        self.registry = CollectorRegistry()
        r = self.registry
        self.g = {
            "run_duration": Gauge("triage_run_duration_seconds", "Wall time of the run.", registry=r),
            "stage_duration": Gauge("triage_stage_duration_seconds", "Wall time of each stage.", ["stage"], registry=r),
            "exit_code": Gauge("triage_run_exit_code", "Exit code of the run (0 ok).", registry=r),
            "last_run": Gauge("triage_last_run_timestamp_seconds", "When the run ended.", registry=r),
            "lines": Gauge("triage_lines", "Entries read in the window, per source.", ["source"], registry=r),
            "source_up": Gauge("triage_source_up", "1 when the source delivered its whole window.", ["source"], registry=r),
            "loki_requests": Gauge("triage_loki_requests", "Loki HTTP requests of the run, by status.", ["status"], registry=r),
            "clusters": Gauge("triage_clusters", "Clusters seen in the window, by status.", ["status"], registry=r),
            "summaries": Gauge("triage_llm_summaries", "Cards by summary outcome.", ["outcome"], registry=r),
            "tokens": Gauge("triage_llm_tokens", "LLM tokens used by the run.", ["kind"], registry=r),
            "tps": Gauge("triage_llm_tokens_per_second", "LLM throughput reported by the server.", ["kind"], registry=r),
            "deliveries": Gauge("triage_deliveries", "Deliveries by channel and outcome.", ["channel", "outcome"], registry=r),
        }
        self.llm_latency = Histogram("triage_llm_request_duration_seconds", "Duration of LLM calls.",
                                     buckets=LLM_BUCKETS, registry=r)
        self.loki_request_count: dict[str, int] = {}
        self.llamacpp_metrics: dict[str, tuple[str, float]] = {}  # name -> (type, value)
        self.push_warning = None
        self._tracing = _TracingSetup.from_environ(environ)
        self.tracer = self._tracing.tracer if self._tracing else None
        self._root = None
        self._root_cm = None
        if self.tracer is not None:
            self._root_cm = self.tracer.start_as_current_span("triage.run", attributes={"triage.schedule": schedule})
            self._root = self._root_cm.__enter__()
            self.trace_id = f"{self._root.get_span_context().trace_id:032x}"

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        span_cm = self.tracer.start_as_current_span(f"triage.{name}") if self.tracer else contextlib.nullcontext()
        with span_cm as span:
            try:
                yield
            except BaseException as err:
                if span is not None:
                    _record_error(span, err)
                raise
            finally:
                self.stage_s[name] = self.stage_s.get(name, 0.0) + time.perf_counter() - started

    def check_pushgateway(self) -> str | None:
        """A quick look before the digest is written, so that its footer can say metrics will be missing."""
        if not self.pushgateway_url:
            return None
        import requests

        try:
            response = requests.get(f"{self.pushgateway_url}/-/ready", timeout=min(2.0, self.push_timeout_s))
            if response.status_code == 200:
                return None
            self.push_warning = f"Pushgateway {self.pushgateway_url} not ready (HTTP {response.status_code})"
        except requests.RequestException as err:
            self.push_warning = f"Pushgateway {self.pushgateway_url} unreachable ({type(err).__name__})"
        return self.push_warning

    def count_loki_requests(self, by_status: Mapping[str, int]) -> None:
        for status, count in by_status.items():
            self.loki_request_count[status] = self.loki_request_count.get(status, 0) + count

    def read_llamacpp_metrics(self, text: str | None) -> None:
        """llama-server's own /metrics (``llamacpp:*``), carried into the pushed group as triage_llamacpp_*,
        keeping each family's type: its counters stay counters."""
        from prometheus_client.parser import text_string_to_metric_families

        try:
            families = list(text_string_to_metric_families(text or ""))
        except ValueError as err:
            log.warning("could not read llama-server metrics: %s", err)
            return
        for family in families:
            if not family.name.startswith("llamacpp:") or not family.samples:
                continue
            value = family.samples[0].value
            if value == value:  # NaN: the server has nothing to say yet
                self.llamacpp_metrics[family.name.split(":", 1)[1]] = (family.type, value)

    def finish(self, report, *, success: bool, push: bool = True) -> None:
        try:
            if push:
                self._fill(report, success)
                self._push(success)
        finally:
            self._end_trace(report)

    # ------------------------------------------------------------------ internals

    def _fill(self, report, success: bool) -> None:
        from prometheus_client import Counter, Gauge

        g = self.g
        now = self._clock()
        g["run_duration"].set(time.perf_counter() - self._started)
        for stage, seconds in self.stage_s.items():
            g["stage_duration"].labels(stage).set(seconds)
        g["exit_code"].set(report.exit_code)
        g["last_run"].set(now)
        if success:
            # Registered only on success: a failed run's POST then carries no value for it, and the
            # Pushgateway keeps the one from the last success.
            Gauge("triage_last_success_timestamp_seconds", "When the last successful run ended.",
                  registry=self.registry).set(now)
        for source in report.sources:
            g["lines"].labels(source.name).set(source.lines)
            g["source_up"].labels(source.name).set(1 if source.ok else 0)
        for status, count in self.loki_request_count.items():
            g["loki_requests"].labels(status).set(count)
        for status in ("new", "regressed", "spiking", "ongoing"):
            g["clusters"].labels(status).set(sum(1 for c in report.clusters if str(c.finding.status) == status))
        outcomes = {"llm": 0, "cache": 0, "fallback": 0, "budget": 0, "disabled": 0}
        for entry in report.clusters:
            if entry.summary:
                outcomes[entry.summary["source"]] = outcomes.get(entry.summary["source"], 0) + 1
        for outcome, count in outcomes.items():
            g["summaries"].labels(outcome).set(count)
        g["tokens"].labels("prompt").set(report.llm.get("prompt_tokens", 0))
        g["tokens"].labels("completion").set(report.llm.get("completion_tokens", 0))
        for delivery in report.deliveries:
            g["deliveries"].labels(delivery["channel"], "ok" if delivery["ok"] else "failed").set(1)
        for name, (kind, value) in self.llamacpp_metrics.items():
            documentation = f"llama-server metric llamacpp:{name}, read after the LLM stage."
            if kind == "counter":
                Counter(f"triage_llamacpp_{name}", documentation, registry=self.registry).inc(value)
            else:
                Gauge(f"triage_llamacpp_{name}", documentation, registry=self.registry).set(value)

    def observe_llm(self, stats) -> None:
        for seconds in stats.durations_s:
            self.llm_latency.observe(seconds)
        if stats.predicted_per_second:
            self.g["tps"].labels("completion").set(sum(stats.predicted_per_second) / len(stats.predicted_per_second))
        if stats.prompt_per_second:
            self.g["tps"].labels("prompt").set(sum(stats.prompt_per_second) / len(stats.prompt_per_second))

    def _push(self, success: bool) -> None:
        if not self.pushgateway_url:
            return
        from prometheus_client import push_to_gateway, pushadd_to_gateway

        push = push_to_gateway if success else pushadd_to_gateway
        try:
            push(self.pushgateway_url, job=self.job, registry=self.registry, grouping_key={"schedule": self.schedule},
                 timeout=self.push_timeout_s)
        except Exception as err:  # a monitoring outage must never fail the job
            self.push_warning = f"could not push metrics to {self.pushgateway_url}: {type(err).__name__}: {err}"[:300]
            log.warning("%s", self.push_warning)

    def _end_trace(self, report) -> None:
        if self._tracing is None:
            return
        try:
            if self._root is not None:
                self._root.set_attribute("triage.run_id", report.run_id)
                self._root.set_attribute("triage.exit_code", report.exit_code)
                self._root.set_attribute("triage.lines", report.lines)
                if report.error:
                    from opentelemetry.trace import Status, StatusCode

                    self._root.set_status(Status(StatusCode.ERROR, report.error))
                self._root_cm.__exit__(None, None, None)
        finally:
            self._tracing.shutdown()


def _record_error(span, err: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.record_exception(err)
    span.set_status(Status(StatusCode.ERROR, f"{type(err).__name__}: {err}"[:200]))


class _TracingSetup:
    def __init__(self, provider, tracer):
        self.provider = provider
        self.tracer = tracer

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> _TracingSetup | None:
        if not (environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
            return None
        if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
            return None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from triage import __version__

        resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME", "triage"),
                                    "service.version": __version__})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return cls(provider, provider.get_tracer("triage", __version__))

    def shutdown(self) -> None:
        try:
            self.provider.force_flush(timeout_millis=10_000)
        finally:
            self.provider.shutdown()
