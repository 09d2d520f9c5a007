"""The ``validate`` flow: one check task per series, the GX suite with Data Docs, a report."""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.validation import (
    check_series_task,
    gx_suite_task,
    mark_judged_task,
    publish_validation_report,
)
from tradeflow.config import load_settings
from tradeflow.market.store import open_store
from tradeflow.monitoring.push import flow_metrics, record_validation
from tradeflow.validation.run import plan_validation


class HardFailuresExceeded(RuntimeError):
    """More judged candles than validation.max_hard_failure_share allows are quarantined."""


@flow(name="validate", log_prints=True)
def validate(
    symbols: list[str] | None = None,
    timeframes: list[str] | None = None,
    window_days: float | None = None,
    config: str | None = None,
    now_ms: int | None = None,
    all_candles: bool = False,
    timerange: str | None = None,
) -> dict[str, object]:
    """Judge stored candles (by default those not judged before), apply each rule's policy,
    publish the report and Data Docs."""
    overrides: dict[str, object] = {}
    if symbols:
        overrides["symbols"] = symbols
    if timeframes:
        overrides["timeframes"] = timeframes
    settings = load_settings(config, overrides=overrides)
    plan = plan_validation(settings, window_days, now_ms, all_candles=all_candles,
                           timerange=timerange)
    store = open_store(settings)
    with flow_metrics(settings, "validate") as metrics:
        # One series at a time: DuckDB refuses a read-only and a read-write connection to one
        # file within a process, and the store opens one per call (reads and quarantine
        # writes).
        checks = [check_series_task(store, key, plan) for key in plan.keys]
        report = gx_suite_task(checks, plan)
        record_validation(metrics, report.as_dict())
        publish_validation_report(report)
        # Judged is judged, pass or fail: the failing candles are quarantined and a failed run
        # has alerted; the next run judges only what arrived since.
        mark_judged_task(store, checks)
        if report.exceeded:
            raise HardFailuresExceeded(report.headline())
    get_run_logger().info("%s; summary: %s", report.headline(), report.summary_page)
    return report.as_dict()
