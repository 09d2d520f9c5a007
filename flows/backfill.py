"""The ``backfill`` flow: one task per (symbol, timeframe) series, bounded concurrency.

``backfill.task_runner`` picks how the series run. ``local``: all in this flow run's event
loop, sharing one rate-limited exchange client. ``dask``: the ``backfill-fanout`` subflow
runs one self-contained task per series on a DaskTaskRunner (other processes or hosts).
"""

from __future__ import annotations

import asyncio

from prefect import flow, get_run_logger

from tasks.market import (
    backfill_job_task,
    backfill_series_task,
    dask_task_runner,
    publish_coverage,
    submit_bounded,
)
from tradeflow.config import Settings, load_settings
from tradeflow.exchange.ccxt_client import ExchangeClient
from tradeflow.exchange.checks import check_against_exchange
from tradeflow.market.backfill import SeriesFailed, SeriesReport
from tradeflow.market.fanout import SeriesJob, outcome_report, plan_fanout
from tradeflow.market.service import (
    BackfillRequest,
    check_request,
    exchange_now,
    open_store,
    prepare_window,
    series_keys,
)


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
    if settings.backfill.task_runner == "dask":
        reports = await _fanned_out(settings, request)
    else:
        reports = await _in_one_loop(settings, request)
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
    sem = asyncio.Semaphore(settings.backfill.concurrency)
    async with ExchangeClient(settings.exchange) as client:
        now_ms = await exchange_now(client, settings)
        window = prepare_window(request, settings, now_ms, store, get_run_logger().info)

        async def one(key):  # noqa: ANN001, ANN202
            async with sem:
                state = await backfill_series_task(client, store, key, window, now_ms,
                                                   settings.backfill.page_limit,
                                                   return_state=True)
            result = await state.result(raise_on_failure=False)
            return result.report if isinstance(result, SeriesFailed) else result

        return list(await asyncio.gather(*(one(k) for k in series_keys(settings))))


async def _fanned_out(settings: Settings, request: BackfillRequest) -> list[SeriesReport]:
    jobs = await plan_fanout(settings, request, get_run_logger().info)
    fanout = backfill_fanout.with_options(task_runner=dask_task_runner(settings.backfill))
    # The subflow blocks while it waits for the cluster; keep this flow's event loop free.
    return await asyncio.to_thread(fanout, jobs, settings.backfill.concurrency)


@flow(name="backfill-fanout", validate_parameters=False)
def backfill_fanout(jobs: list[SeriesJob], concurrency: int) -> list[SeriesReport]:
    """Backfill each series as its own task on this flow's task runner, a few at once."""
    futures = submit_bounded(backfill_job_task, jobs, concurrency)
    return [outcome_report(job.key, future.result(raise_on_failure=False))
            for job, future in zip(jobs, futures, strict=True)]
