"""The ``backfill`` flow: one task per (symbol, timeframe) series, bounded concurrency.

The series, window and bounds come from the backfill plan; the one bounded runner runs them.
``backfill.task_runner`` picks where a series runs. ``local``: as a task in this flow run's
event loop, all sharing one rate-limited exchange client. ``dask``: the ``backfill-fanout``
subflow runs one self-contained task per series on a DaskTaskRunner (other processes or
hosts), each with its share of the request rate.
"""

from __future__ import annotations

import asyncio
from functools import partial

from prefect import flow, get_run_logger

from tasks.market import (
    backfill_job_task,
    dask_task_runner,
    publish_coverage,
    series_report_task,
    submit_bounded,
)
from tradeflow.config import Settings, load_settings
from tradeflow.exchange.ccxt_client import ExchangeClient
from tradeflow.exchange.checks import check_against_exchange
from tradeflow.market.backfill import SeriesReport, run_bounded
from tradeflow.market.backfill_plan import (
    BackfillRequest,
    SeriesJob,
    check_request,
    plan_backfill,
    plan_with_own_client,
)
from tradeflow.market.backfill_run import outcome_report
from tradeflow.market.store import open_store
from tradeflow.monitoring.push import flow_metrics, record_backfill


class BackfillFailed(RuntimeError):
    """Some series could not be backfilled; the others were."""


@flow(name="backfill", log_prints=True)
async def backfill(
    symbols: list[str] | None = None,
    timeframes: list[str] | None = None,
    days: float | None = None,
    since: str | None = None,
    timerange: str | None = None,
    config: str | None = None,
    recheck_unfillable: bool = False,
) -> list[dict[str, object]]:
    """Fetch missing candles for every series; publish the coverage table.

    ``recheck_unfillable`` forgets the gaps recorded as unfillable inside the window first,
    so the exchange is asked for them again.
    """
    overrides: dict[str, object] = {}
    if symbols:
        overrides["symbols"] = symbols
    if timeframes:
        overrides["timeframes"] = timeframes
    settings = load_settings(config, overrides=overrides)
    check_against_exchange(settings)
    request = BackfillRequest(days, since, timerange, recheck_unfillable)
    check_request(request)
    with flow_metrics(settings, "backfill") as metrics:
        if settings.backfill.task_runner == "dask":
            reports = await _fanned_out(settings, request)
        else:
            reports = await _in_one_loop(settings, request)
        record_backfill(metrics, reports)
        publish_coverage(reports, settings.store_path)
        failed = [r for r in reports if r.status != "ok"]
        if failed:
            names = ", ".join(f"{r.key.symbol} {r.key.timeframe} ({r.error})" for r in failed)
            raise BackfillFailed(f"{len(failed)} of {len(reports)} series failed: {names}")
    get_run_logger().info("%d series complete", len(reports))
    return [{"series": str(r.key), "count": r.count, "missing": r.missing,
             "unfillable": r.unfillable} for r in reports]


async def _in_one_loop(settings: Settings, request: BackfillRequest) -> list[SeriesReport]:
    store = open_store(settings)
    async with ExchangeClient(settings.exchange) as client:
        plan = await plan_backfill(settings, request, client, store, get_run_logger().info)
        one = partial(series_report_task, client, store, plan)
        return await run_bounded(plan.keys, one, plan.concurrency)


async def _fanned_out(settings: Settings, request: BackfillRequest) -> list[SeriesReport]:
    plan = await plan_with_own_client(settings, request, get_run_logger().info)
    fanout = backfill_fanout.with_options(task_runner=dask_task_runner(settings.backfill))
    # The subflow blocks while it waits for the cluster; keep this flow's event loop free.
    return await asyncio.to_thread(fanout, list(plan.jobs), plan.concurrency)


@flow(name="backfill-fanout", validate_parameters=False)
def backfill_fanout(jobs: list[SeriesJob], concurrency: int) -> list[SeriesReport]:
    """Backfill each series as its own task on this flow's task runner, a few at once."""
    futures = submit_bounded(backfill_job_task, jobs, concurrency)
    return [outcome_report(job.key, future.result(raise_on_failure=False))
            for job, future in zip(jobs, futures, strict=True)]
