"""Prefect tasks of the validate flow: thin wrappers of tradeflow.validation.run."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tradeflow.market.store import MarketStore, SeriesKey
from tradeflow.validation.report import ValidationReport
from tradeflow.validation.run import (
    SeriesCheck,
    ValidationPlan,
    build_report,
    check_series,
    mark_judged_series,
    run_gx,
)


@task(name="check-series", task_run_name="check {key}", cache_policy=NO_CACHE)
def check_series_task(store: MarketStore, key: SeriesKey, plan: ValidationPlan) -> SeriesCheck:
    """Judge one series' candles by every rule and apply each rule's policy."""
    return check_series(store, key, plan)


@task(name="gx-suite", cache_policy=NO_CACHE)
def gx_suite_task(checks: list[SeriesCheck], plan: ValidationPlan) -> ValidationReport:
    """Run the Great Expectations checkpoints, build Data Docs, merge into one report."""
    return build_report(checks, run_gx(checks, plan), plan)


@task(name="publish-validation-report", cache_policy=NO_CACHE)
def publish_validation_report(report: ValidationReport) -> str:
    """Publish pass/fail counts per series and rule as a Prefect markdown artifact."""
    markdown = report.markdown()
    create_markdown_artifact(markdown=markdown, key="candle-validation",
                             description="Candle validation: rules per series, Data Docs link")
    return markdown


@task(name="mark-judged", cache_policy=NO_CACHE)
def mark_judged_task(store: MarketStore, checks: list[SeriesCheck]) -> int:
    """Move each judged series' watermark, so the next run judges only newer candles."""
    return mark_judged_series(store, checks)
