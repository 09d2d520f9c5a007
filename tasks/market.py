"""Prefect tasks over the market store and the exchange: thin wrappers of plain functions."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from tradeflow.config import BackfillSettings
from tradeflow.market.backfill import (
    SeriesFailed,
    SeriesReport,
    Window,
    backfill_series,
    coverage_markdown,
    run_bounded,
)
from tradeflow.market.backfill_plan import BackfillPlan, SeriesJob
from tradeflow.market.backfill_run import dask_cluster_kwargs, run_job
from tradeflow.market.store import MarketStore, SeriesKey


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only failures a retry can help: network, rate limits, timeouts."""
    exc = state.data
    return isinstance(exc, SeriesFailed) and exc.retryable


@task(name="backfill-series", task_run_name="backfill {key}", retries=2,
      retry_delay_seconds=[5, 30], retry_condition_fn=_transient, cache_policy=NO_CACHE)
async def backfill_series_task(client: Any, store: MarketStore, key: SeriesKey, window: Window,
                               now_ms: int, page_limit: int) -> SeriesReport:
    """Bring one (symbol, timeframe) series up to date."""
    return await backfill_series(client, store, key, window, now_ms, page_limit=page_limit)


async def series_report_task(client: Any, store: MarketStore, plan: BackfillPlan,
                             key: SeriesKey) -> SeriesReport:
    """:func:`backfill_series_task` of one planned series; its report, failed or not."""
    state = await backfill_series_task(client, store, key, plan.window, plan.now_ms,
                                       plan.page_limit, return_state=True)
    result = await state.result(raise_on_failure=False)
    return result.report if isinstance(result, SeriesFailed) else result


@task(name="backfill-series-job", task_run_name="backfill {job}", retries=2,
      retry_delay_seconds=[5, 30], retry_condition_fn=_transient, cache_policy=NO_CACHE)
def backfill_job_task(job: SeriesJob) -> SeriesReport:
    """Bring one series up to date in whatever process or host the task runner chose."""
    report = run_job(job)
    get_run_logger().info("%s: %d candles, %d missing, on %s pid %d", job.key, report.count,
                          report.missing, socket.gethostname(), os.getpid())
    return report


@task(name="publish-coverage", cache_policy=NO_CACHE)
def publish_coverage(reports: list[SeriesReport], store_path: str) -> str:
    """Publish the coverage table as a Prefect markdown artifact."""
    table = coverage_markdown(reports)
    failed = [r for r in reports if r.status != "ok"]
    head = f"**{len(reports) - len(failed)} of {len(reports)} series complete** in `{store_path}`"
    create_markdown_artifact(markdown=f"{head}\n\n{table}\n", key="backfill-coverage",
                             description="Candle coverage per series after backfill")
    return table


def submit_bounded(job_task: Any, jobs: Sequence[Any], limit: int) -> list[PrefectFuture[Any]]:
    """Submit ``job_task(job)`` for every job to the flow's task runner through the one
    bounded runner (never more than ``limit`` unfinished); the futures, in job order, all
    finished. Called from a synchronous flow, which has no event loop of its own."""

    async def submit(job: Any) -> PrefectFuture[Any]:
        future = job_task.submit(job)
        await asyncio.to_thread(future.wait)
        return future

    return asyncio.run(run_bounded(jobs, submit, limit))


def dask_task_runner(backfill: BackfillSettings) -> Any:
    """A prefect-dask ``DaskTaskRunner``: the running cluster at ``dask_address``, else a
    temporary local cluster of ``dask_workers`` processes for the length of the flow run."""
    from prefect_dask import DaskTaskRunner

    if backfill.dask_address:
        return DaskTaskRunner(address=backfill.dask_address)
    return DaskTaskRunner(cluster_kwargs=dask_cluster_kwargs(backfill))


@task(name="compact-store", cache_policy=NO_CACHE)
def compact_store_task(store: MarketStore) -> dict[str, int]:
    """Merge the DuckLake store's small files (:meth:`MarketStore.compact`)."""
    counts = store.compact()
    get_run_logger().info("compacted %s: %d data files before, %d after", store.location,
                          counts["files_before"], counts["files_after"])
    return counts
