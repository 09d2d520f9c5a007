"""Prefect tasks over the market store and the exchange: thin wrappers of plain functions."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed, wait

from tradeflow.config import BackfillSettings
from tradeflow.market.backfill import (
    SeriesFailed,
    SeriesReport,
    Window,
    backfill_series,
    coverage_markdown,
)
from tradeflow.market.fanout import SeriesJob, dask_cluster_kwargs, run_job
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
    """Submit ``job_task(job)`` for every job to the flow's task runner, never more than
    ``limit`` unfinished at once; returns the futures, in job order, all finished.

    A task runner spanning a cluster would otherwise start every series at once; the
    exchange's rate limit is what bounds a backfill, not the number of workers.
    """
    futures: list[PrefectFuture[Any]] = []
    running: set[PrefectFuture[Any]] = set()
    for job in jobs:
        while len(running) >= limit:
            running.discard(next(as_completed(list(running))))
        future = job_task.submit(job)
        futures.append(future)
        running.add(future)
    wait(futures)
    return futures


def dask_task_runner(backfill: BackfillSettings) -> Any:
    """A prefect-dask ``DaskTaskRunner``: the running cluster at ``dask_address``, else a
    temporary local cluster of ``dask_workers`` processes for the length of the flow run."""
    from prefect_dask import DaskTaskRunner

    if backfill.dask_address:
        return DaskTaskRunner(address=backfill.dask_address)
    return DaskTaskRunner(cluster_kwargs=dask_cluster_kwargs(backfill))
