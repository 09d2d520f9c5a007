"""The ``validate`` flow: one check task per series, the GX suite with Data Docs, a report."""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.validation import check_series_task, gx_suite_task, publish_validation_report
from tradeflow.config import load_settings
from tradeflow.market.store import open_store
from tradeflow.validation.run import plan_validation


class HardFailuresExceeded(RuntimeError):
    """More candles than validation.max_hard_failure_share allows break hard rules."""


@flow(name="validate", log_prints=True)
def validate(
    symbols: list[str] | None = None,
    timeframes: list[str] | None = None,
    window_days: float | None = None,
    config: str | None = None,
    now_ms: int | None = None,
) -> dict[str, object]:
    """Check stored candles, quarantine hard failures, publish the report and Data Docs."""
    overrides: dict[str, object] = {}
    if symbols:
        overrides["symbols"] = symbols
    if timeframes:
        overrides["timeframes"] = timeframes
    settings = load_settings(config, overrides=overrides)
    plan = plan_validation(settings, window_days, now_ms)
    store = open_store(settings)
    # One series at a time: DuckDB refuses a read-only and a read-write connection to one
    # file within a process, and the store opens one per call (reads and quarantine writes).
    checks = [check_series_task(store, key, plan) for key in plan.keys]
    report = gx_suite_task(checks, plan)
    publish_validation_report(report)
    if report.exceeded:
        raise HardFailuresExceeded(report.headline())
    get_run_logger().info("%s; summary: %s", report.headline(), report.summary_page)
    return report.as_dict()
