"""Flow runs are batch jobs: their figures go to a Prometheus Pushgateway, once per run.

A flow opens :func:`flow_metrics`, records its results (plain dicts, as the flows return
them) and, when the block ends, pass or fail, the whole batch replaces the flow's group
``job="tradeflow_<flow>"`` on the Pushgateway with its duration, success and time. Nothing is
pushed when ``monitoring.pushgateway_url`` is unset, and a Pushgateway that does not answer is
a logged warning: monitoring never fails a flow run.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from tradeflow.config import Settings

log = logging.getLogger(__name__)


def job_name(flow: str) -> str:
    """The Pushgateway group (Prometheus ``job`` label) of a flow: ``tradeflow_<flow>``."""
    return "tradeflow_" + flow.replace("-", "_")


class FlowMetrics:
    """One flow run's gauges in a registry of their own, pushed as one batch."""

    def __init__(self, flow: str) -> None:
        self.flow = flow
        self.registry = CollectorRegistry()
        self._gauges: dict[str, Gauge] = {}

    def set(self, name: str, help_text: str, value: Any, **labels: str) -> None:
        """Set gauge ``tradeflow_<name>`` (with a ``flow`` label and ``labels``) to ``value``.

        A value that is not a number is logged and skipped: metrics never fail a flow run."""
        full = f"tradeflow_{name}"
        try:
            number = float(value)
        except (TypeError, ValueError):
            log.warning("metric %s of %s skipped: %r is not a number", full, self.flow, value)
            return
        gauge = self._gauges.get(full)
        if gauge is None:
            gauge = Gauge(full, help_text, ["flow", *labels], registry=self.registry)
            self._gauges[full] = gauge
        gauge.labels(flow=self.flow, **labels).set(number)

    def finish(self, success: bool, duration_s: float, now: float) -> None:
        self.set("flow_success", "1 when the flow run completed, 0 when it failed",
                 1.0 if success else 0.0)
        self.set("flow_duration_seconds", "wall time of the flow run", duration_s)
        self.set("flow_last_run_timestamp_seconds", "when the flow run ended (unix time)", now)

    def push(self, url: str, timeout: float = 5.0) -> bool:
        """Replace the flow's group on the Pushgateway at ``url``; False (logged) on failure."""
        try:
            push_to_gateway(url, job=job_name(self.flow), registry=self.registry,
                            timeout=timeout)
        except OSError as exc:
            log.warning("metrics of %s not pushed to %s: %s", self.flow, url, exc)
            return False
        return True

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """(name, sorted labels) -> value of every sample (for tests and logs)."""
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for metric in self.registry.collect() for s in metric.samples}


@contextmanager
def flow_metrics(settings: Settings, flow: str) -> Iterator[FlowMetrics]:
    """Collect a flow run's metrics; push them (pass or fail) when the block ends."""
    metrics = FlowMetrics(flow)
    started = time.monotonic()
    success = False
    try:
        yield metrics
        success = True
    finally:
        metrics.finish(success, time.monotonic() - started, time.time())
        url = settings.monitoring.pushgateway_url
        if url:
            metrics.push(url)


def record_backfill(metrics: FlowMetrics, reports: Iterable[Any]) -> None:
    """Per series (``SeriesReport``): candles stored, still missing, unfillable; and failures."""
    failed = 0
    for r in reports:
        labels = {"symbol": r.key.symbol, "timeframe": r.key.timeframe}
        metrics.set("backfill_candles_stored", "candles written by the run", r.stored, **labels)
        metrics.set("backfill_candles_missing", "grid candles still missing", r.missing,
                    **labels)
        metrics.set("backfill_candles_unfillable", "grid candles in unfillable gaps",
                    r.unfillable, **labels)
        metrics.set("backfill_requests", "exchange pages requested", r.pages, **labels)
        failed += r.status != "ok"
    metrics.set("backfill_series_failed", "series the run could not backfill", failed)


def record_validation(metrics: FlowMetrics, report: Mapping[str, Any]) -> None:
    """The validation report's figures (``ValidationReport.as_dict()``)."""
    metrics.set("validation_candles_judged", "candles judged by the run", report["candles"])
    metrics.set("validation_quarantined_candles", "judged candles quarantined",
                report["quarantine_candles"])
    metrics.set("validation_quarantine_share", "share of judged candles quarantined",
                report["quarantine_share"])
    metrics.set("validation_max_quarantine_share", "the profile's allowed quarantined share",
                report["max_hard_failure_share"])
    by_rule: dict[tuple[str, str], int] = defaultdict(int)
    for rule in report["rules"]:
        by_rule[(rule["rule"], rule["policy"])] += int(rule["failed"])
    for (rule, policy), failed in sorted(by_rule.items()):
        metrics.set("validation_failures", "values failing a rule, summed over series", failed,
                    rule=rule, policy=policy)


def record_training(metrics: FlowMetrics, result: Mapping[str, Any]) -> None:
    """The train flow's result: out-of-sample AUC and Sharpe, trades, registered version."""
    model = str(result["model"])
    metrics.set("training_auc", "out-of-sample AUC of the new version", result["auc"],
                model=model)
    metrics.set("training_sharpe", "out-of-sample Sharpe after fees", result["sharpe"],
                model=model)
    metrics.set("training_trades", "out-of-sample trades", result["trades"], model=model)
    metrics.set("training_model_version", "registered version", float(result["version"]),
                model=model)


def record_promotion(metrics: FlowMetrics, result: Mapping[str, Any]) -> None:
    """The promote flow's decision: 1 when the challenger became champion."""
    model = str(result["model"])
    metrics.set("promotion_promoted", "1 when the challenger was promoted",
                1.0 if result["decision"] == "promoted" else 0.0, model=model)
    metrics.set("promotion_challenger_version", "version that competed",
                float(result["challenger"] or 0), model=model)
